"""Supervised warm-up on the dataset's reference solutions, before GRPO.

The reference workflow's "hybrid" training: a short SFT pass teaches the
reply format (and some of the task) so that GRPO's rewards have variance to
learn from from the first step.
"""

from __future__ import annotations

from grpo_core.errors import PreflightError


def sft_dataset(dataset):
    if "solution" not in dataset.column_names:
        raise PreflightError(
            "SFT warm-up needs reference solutions, and this dataset has no `solution` column; "
            "drop --sft-warmup-steps or use a dataset adapter that provides solutions (gsm8k, arithmetic)."
        )
    return dataset.map(
        lambda r: {"prompt": r["prompt"], "completion": [{"role": "assistant", "content": r["solution"]}]},
        remove_columns=[c for c in dataset.column_names if c not in ("prompt",)],
    )


def run_sft(model, tokenizer, dataset, *, steps: int, learning_rate: float, output_dir: str, grpo_kwargs: dict, seed: int, echo=print):
    """Train ``model`` in place for ``steps`` SFT steps; returns the final loss."""
    from trl import SFTConfig, SFTTrainer  # deferred: heavy (trl)

    from grpo_core.train.callbacks import drop_default_printer  # deferred: imports transformers at module top

    data = sft_dataset(dataset)
    share = {k: grpo_kwargs[k] for k in ("use_cpu", "bf16", "fp16") if k in grpo_kwargs}
    args = SFTConfig(
        output_dir=output_dir,
        max_steps=steps,
        learning_rate=learning_rate,
        per_device_train_batch_size=int(grpo_kwargs.get("per_device_train_batch_size", 8)),
        lr_scheduler_type="constant_with_warmup",
        warmup_steps=max(1, steps // 10),
        logging_steps=max(1, steps // 10),
        save_strategy="no",
        report_to="none",
        seed=seed,
        disable_tqdm=True,
        gradient_checkpointing=False,
        **share,
    )
    trainer = SFTTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer)

    drop_default_printer(trainer)
    echo(f"SFT warm-up: {steps} steps at lr {learning_rate:g} on {len(data)} reference solutions")
    out = trainer.train()
    echo(f"SFT warm-up done: loss {out.training_loss:.4f}")
    return out.training_loss
