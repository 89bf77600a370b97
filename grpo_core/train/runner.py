"""``grpo-core run``, step by step: rewards, data, pre-flight, model, SFT, GRPO, save, evaluate, report."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

from grpo_core.config.settings import AUTO_FRACTION, RunConfig
from grpo_core.config.trl_fields import grpo_defaults
from grpo_core.errors import ConfigError, PreflightError
from grpo_core.evaluation.report import EvalPlan, write_report
from grpo_core.kit.chat_templates import apply_template
from grpo_core.kit.datasets import content_hash, parse_dataset_spec
from grpo_core.plugins.lookup import get_dataset
from grpo_core.rewards.engine import RewardEngine
from grpo_core.rewards.selection import options_text
from grpo_core.run_folder import RunInfo, is_main_process, reward_records, write_adapter_card
from grpo_core.runtime.hardware import import_unsloth_first, resolve_model
from grpo_core.train import preflight
from grpo_core.train.backends import choose_backend, colocated_vllm, load_policy
from grpo_core.train.memory_plan import gpu_total_bytes
from grpo_core.train.preflight import prompt_lengths
from grpo_core.train.sft import run_sft
from grpo_core.train.trl_glue import EngineRewardFuncs, make_trainer_class
from grpo_core.train.vllm_engine import extra_engine_kwargs
from grpo_core.train.vllm_sync import install_fast_sync


def default_grpo_kwargs(cfg: RunConfig) -> dict[str, Any]:
    """GRPOConfig's values unless the run sets them: grpo-core's documented defaults (docs/config.md)."""
    return {"output_dir": cfg.output_dir, "seed": cfg.seed, **grpo_defaults()}


def last_checkpoint(output_dir: str) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint  # deferred: heavy (transformers)

    return get_last_checkpoint(output_dir) if os.path.isdir(output_dir) else None


def run(cfg: RunConfig, *, dry_run: bool = False, resume: bool = False, echo: Callable[[str], None] = print) -> dict:
    t_start = time.monotonic()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if not is_main_process():
        echo = _silent  # every rank runs this function; one of them talks
    cfg.validate(check_grpo_fields=False)
    backend, why = choose_backend(cfg)
    echo(f"backend: {backend} ({why})")
    if backend == "unsloth":
        import_unsloth_first()
    cfg.validate(check_grpo_fields=True)
    if cfg.threads:
        import torch  # deferred: heavy (torch)

        torch.set_num_threads(cfg.threads)
    model_path = resolve_model(cfg.model)
    _quiet_libraries()
    out_dir = Path(cfg.output_dir)

    # 1. rewards, before anything is loaded
    engine = RewardEngine.from_selection(cfg.reward_selection, on_error=cfg.on_reward_error)
    echo("rewards: " + ", ".join(f"{r.name}×{r.weight:g} ({r.spec.provenance.describe()}{options_text(r.spec.options)})" for r in engine.rewards))

    # 2. data

    ds_name, split = parse_dataset_spec(cfg.dataset)
    adapter = get_dataset(ds_name)
    preflight.check_dataset_options(adapter, cfg.dataset_options)
    dataset = adapter.load(split, system_prompt=cfg.system_prompt, limit=cfg.limit, **cfg.dataset_options)
    if len(dataset) == 0:
        raise PreflightError(f"dataset {cfg.dataset!r} loaded no rows.")
    echo(f"dataset: {ds_name}:{split or adapter.splits[0]} ({len(dataset)} rows, verifier {adapter.verifier!r})")

    # 3. pre-flight (tokenizer only; the model is not loaded yet)
    from transformers import AutoTokenizer  # deferred: heavy (transformers)

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    apply_template(tokenizer, cfg.chat_template)
    grpo_kwargs = {**default_grpo_kwargs(cfg), **cfg.grpo}
    if world > 1:
        # LoRA touches every adapted layer in every forward pass: DDP's search for unused parameters
        # is a wasted traversal of the graph each step (and a warning on every rank)
        grpo_kwargs.setdefault("ddp_find_unused_parameters", False)
    echo("pre-flight:")
    vllm_setup = None
    if colocated_vllm(cfg, backend):
        trl_len = grpo_kwargs.get("vllm_max_model_length") if backend == "trl" else None
        vllm_setup = preflight.VllmSetup(
            model_path, cfg.gpu_memory_utilization, gpu_total_bytes(), cfg.load_in_4bit, max_model_len=trl_len or cfg.max_seq_length, grow_to_fit=backend == "trl" and trl_len is None,
        )
    dataset, pre = preflight.run_all(dataset, tokenizer, engine, cfg, grpo_kwargs, world, echo=echo, vllm=vllm_setup)
    if vllm_setup is not None and cfg.gpu_memory_utilization == AUTO_FRACTION:
        # the number pre-flight chose is the one every later reader sees: the backends, run.json
        cfg = dataclasses.replace(cfg, gpu_memory_utilization=pre.facts["vllm_memory"]["fraction"])
    if vllm_setup is not None and backend == "trl":
        # TRL leaves vLLM's model length at the config's (32k tokens for Qwen2.5), and vLLM will not start
        # without KV room for one such sequence (1.1 GiB at 3B). max_seq_length, as on the Unsloth
        # backend, raised to fit the longest prompt and completion.
        grpo_kwargs.setdefault("vllm_max_model_length", pre.facts["vllm_memory"]["max_model_len"])
    engine.reset_stats()  # the smoke test's calls are not training metrics
    if resume and not last_checkpoint(cfg.output_dir):
        raise ConfigError(f"--resume: no checkpoint found in {cfg.output_dir!r}; run without --resume to start fresh.")
    info = RunInfo(out_dir)
    info.update(
        status="dry-run" if dry_run else "loading",
        model=cfg.model or "bundled:tiny-reasoner",
        model_path=model_path,
        backend=backend,
        backend_reason=why,
        config=cfg.to_dict(),
        grpo_config=grpo_kwargs,
        rewards=reward_records(engine),
        world_size=world,
        dataset={
            "spec": cfg.dataset,
            "adapter": adapter.name if hasattr(adapter, "name") else ds_name,
            "rows": len(dataset),
            "content_hash": content_hash(dataset.to_list()),
        },
        preflight={"facts": pre.facts, "warnings": pre.warnings},
    )
    if dry_run:
        echo(f"dry run: pre-flight passed; wrote {info.path}")
        return info.data

    # 4. model
    policy = load_policy(cfg, backend, model_path)
    apply_template(policy.tokenizer, cfg.chat_template)
    for k, v in policy.grpo_overrides.items():
        grpo_kwargs.setdefault(k, v)
    info.update(status="running", grpo_config=grpo_kwargs)


    evals = EvalPlan.from_config(cfg, adapter, ds_name, echo)
    if evals and not resume and info.enabled:
        evals.run("before", policy.model, policy.tokenizer)

    model = policy.model
    peft_config = policy.peft_config
    # 5. SFT warm-up
    if cfg.sft_warmup_steps and not resume:
        if peft_config is not None:
            from peft import get_peft_model  # deferred: heavy (peft)

            model = get_peft_model(model, peft_config)
            peft_config = None
        info.update(sft={"steps": cfg.sft_warmup_steps, "loss": run_sft(
            model, policy.tokenizer, dataset, steps=cfg.sft_warmup_steps, learning_rate=cfg.sft_learning_rate,
            output_dir=str(out_dir / "sft"), grpo_kwargs=grpo_kwargs, seed=cfg.seed, echo=echo)})

    # 6. GRPO
    from trl import GRPOConfig  # deferred: heavy (trl)

    from grpo_core.train.callbacks import (  # deferred: imports transformers at module top
        GracefulStop,
        ProgressCallback,
        drop_default_printer,
    )
    from grpo_core.train.phases import PhaseClock  # deferred: imports torch/trl at module top
    rewards = EngineRewardFuncs(engine)
    args = GRPOConfig(**grpo_kwargs, reward_weights=[r.weight for r in engine.rewards])
    progress = ProgressCallback(engine.names, zero_variance_patience=cfg.zero_variance_patience,
                                reported_keys=engine.progress_keys())
    stop = GracefulStop()
    clock = PhaseClock(sync_cuda=cfg.profile).install()
    on_trl = backend == "trl"
    Trainer = make_trainer_class(policy.trainer_base, trim_padding=on_trl and cfg.trim_padding, group_steps=on_trl and cfg.group_steps,
                                 first_round_lengths=_longest_first_lengths(cfg, dataset, policy.tokenizer, resume, echo), echo=echo)
    if cfg.vllm_engine_kwargs and not on_trl:
        echo("vllm_engine_kwargs: ignored on the unsloth backend (Unsloth starts its own engine with fast_inference)")
    callbacks = [progress, stop, clock]
    if cfg.trace_step:
        from grpo_core.train.step_trace import StepTracer  # deferred: imports torch at module top

        callbacks.append(StepTracer(cfg.trace_step, out_dir, echo=echo))
    with extra_engine_kwargs(cfg.vllm_engine_kwargs if on_trl else None, echo=echo):
        trainer = Trainer(
            model=model,
            reward_funcs=rewards.funcs(),
            args=args,
            train_dataset=dataset,
            processing_class=policy.tokenizer,
            peft_config=peft_config,
            callbacks=callbacks,
        )
    trainer._grpo_core_rewards = rewards
    trainer._grpo_core_clock = clock
    if on_trl and getattr(trainer, "use_vllm", False):
        why_not = install_fast_sync(trainer) if cfg.fast_vllm_sync else "fast_vllm_sync is off"
        echo("vLLM weight sync: " + ("grpo-core's (changed LoRA layers only, merged out of place, one load call)" if why_not is None else f"TRL's ({why_not})"))
    drop_default_printer(trainer)
    ckpt = last_checkpoint(cfg.output_dir) if resume else None
    if ckpt:
        echo(f"resuming from {ckpt}")
    echo(f"training: {args.max_steps} steps")
    stop.install()
    status = "finished"
    try:
        trainer.train(resume_from_checkpoint=ckpt)
        if stop.requested:
            status = "interrupted"
    except KeyboardInterrupt:
        status = "aborted"
    except Exception:
        info.update(status="failed", global_step=trainer.state.global_step)
        raise
    finally:
        stop.uninstall()
        clock.uninstall()
        engine.close()

    # 7. save, always — an interrupted run keeps what it learned
    adapter_dir = out_dir / "adapter"
    trainer.save_model(str(adapter_dir))  # every rank: sharded setups gather here; only the main process writes
    if info.enabled:
        policy.tokenizer.save_pretrained(str(adapter_dir))
    info.update(
        status=status,
        global_step=trainer.state.global_step,
        adapter_dir=str(adapter_dir),
        train_seconds=round(time.monotonic() - t_start, 1),
        warnings=pre.warnings + progress.warnings,
        reward_totals={k: vars(v) for k, v in engine.totals.items()},
        reward_metrics=engine.reported_totals(),
    )
    if info.enabled:
        write_adapter_card(adapter_dir, info)
    echo(f"saved adapter to {adapter_dir} ({status} at step {trainer.state.global_step})")
    if info.enabled:
        (out_dir / "log_history.json").write_text(json.dumps(trainer.state.log_history, indent=1))

    # 8. evaluate and report
    if evals and status == "finished" and info.enabled:
        evals.run("after", trainer.model, policy.tokenizer)
        info.update(evaluation=evals.summary())
    if cfg.report and info.enabled:
        path = write_report(out_dir, info.data, progress.history, evals)
        echo(f"report: {path}")
    info.update(total_seconds=round(time.monotonic() - t_start, 1))
    if status == "aborted":
        print("grpo-core: aborted; the adapter so far was saved. Resume from the last checkpoint with --resume.", file=sys.stderr)
    return info.data


def _longest_first_lengths(cfg: RunConfig, dataset, tokenizer, resume: bool, echo) -> list[int] | None:
    """The training prompts' token counts when ``longest_first`` is on (None: TRL's order as it is).
    The sampler says, when training starts, which prompts the first round holds."""
    if not cfg.longest_first:
        return None

    if resume:
        # the first round has already run; the swap stays, so the resumed epoch has the interrupted run's
        # order and the batches the trainer skips are the ones it trained (not a second, different order)
        echo("longest_first: the first generation round has already run; its order is kept so the resumed epoch matches")
    return prompt_lengths(tokenizer, dataset["prompt"])


def _silent(_line: str) -> None:
    pass


def _quiet_libraries() -> None:
    """Our progress line replaces the libraries' bars and raw log dicts; no usage telemetry."""
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    import datasets  # deferred: heavy (datasets, pyarrow)
    import transformers  # deferred: heavy (transformers)

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
