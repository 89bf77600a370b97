"""Skipping the old-log-prob pass for rounds trained in one optimizer step (grpo_core.train.old_logps).

TRL's own path (a no-grad pass for the old log-probs, the importance-sampling ratio computed while
scoring) and grpo-core's (both taken from the training pass) are run on the same round of fixed
completions with fixed vLLM sampling log-probs, and must give the same loss, gradients, ratio and
metrics. vLLM is not needed: generation is replaced by the fixed round, and the trainer is told it
generated with vLLM (``use_vllm``), which is all TRL's scoring and loss consult.
"""

from __future__ import annotations

import copy

import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

from tiny_models import build_tiny_qwen2  # noqa: E402

from grpo_core.train.old_logps import importance_sampling_ratio  # noqa: E402
from grpo_core.train.trl_glue import make_trainer_class  # noqa: E402

COMPLETIONS = [[40, 41, 42, 43, 44, 45], [50, 51, 52], [60, 61, 62, 63, 64], [70, 71, 72, 73, 74, 75]]


def _reward(completions, **kw):
    return [float(len(str(c))) for c in completions]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return build_tiny_qwen2(tmp_path_factory.mktemp("m") / "tiny")


def _trainer(model_dir, tmp_path, skip: bool, **grpo):
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(model_dir)
    args = GRPOConfig(**{**dict(output_dir=str(tmp_path), per_device_train_batch_size=4, num_generations=4, max_completion_length=6,
                                use_cpu=True, bf16=False, report_to="none", logging_steps=1, max_steps=1, seed=0), **grpo})
    base = make_trainer_class(GRPOTrainer, skip_old_logps_pass=skip)
    trainer = base(model=model, reward_funcs=[_reward], args=args, processing_class=tok,
                   train_dataset=Dataset.from_list([{"prompt": [{"role": "user", "content": "Tom has 12 apples."}]}] * 4),
                   peft_config=LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"], task_type="CAUSAL_LM"))
    trainer.model.train()
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in trainer.model.named_parameters():  # LoRA B starts at zero: move it so the adapters matter
            if "lora_B" in name:
                p.normal_(0, 0.05, generator=gen)
    trainer.use_vllm = True  # what TRL's scoring and loss consult; generation is replaced below
    trainer.current_gradient_accumulation_steps = 1  # set by the training loop, which is not run here
    return trainer


def _fixed_round(trainer, logprob_shift: float):
    """Generation replaced by fixed completions whose vLLM log-probs are the policy's, shifted per token."""
    def generate_single_turn(prompt_ids, images, multimodal_fields, num_generations):
        logps = []
        for ids, completion in zip(prompt_ids, COMPLETIONS):
            full = torch.tensor([ids + completion])
            with torch.no_grad():
                logits = trainer.model(input_ids=full).logits[0, len(ids) - 1 : -1].float()
            lp = torch.log_softmax(logits, -1).gather(-1, torch.tensor(completion)[:, None]).squeeze(-1)
            logps.append([float(x) + logprob_shift * (1 + i % 3) for i, x in enumerate(lp)])
        return [list(c) for c in COMPLETIONS], logps

    trainer._generate_single_turn = generate_single_turn


def _loss_and_grads(trainer, batch):
    trainer.model.zero_grad()
    loss = trainer._compute_loss(trainer.model, batch)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in trainer.model.named_parameters() if p.requires_grad}
    return loss.detach(), grads


@pytest.mark.parametrize("mode,shift", [("sequence_mask", 0.02), ("token_truncate", 0.6), ("token_mask", 0.6), ("sequence_truncate", 0.3)])
def test_the_loss_gradients_ratio_and_metrics_are_trls(model_dir, tmp_path, mode, shift):
    results = []
    for skip in (False, True):
        trainer = _trainer(model_dir, tmp_path / str(skip), skip, vllm_importance_sampling_mode=mode, vllm_importance_sampling_clip_min=0.5 if "truncate" in mode else None)
        _fixed_round(trainer, shift)
        rows = [dict(r) for r in trainer.train_dataset]
        batch = trainer._generate_and_score_completions(rows)
        assert ("old_per_token_logps" in batch) is not skip
        loss, grads = _loss_and_grads(trainer, batch)
        metrics = {k: v[-1] for k, v in trainer._metrics["train"].items() if k.startswith("sampling/")}
        results.append((loss, grads, batch["importance_sampling_ratio"], metrics, trainer))
    (loss_trl, grads_trl, ratio_trl, metrics_trl, _), (loss, grads, ratio, metrics, skipping) = results
    assert skipping.grpo_core_skipped_passes == 1
    assert not torch.isnan(ratio).any()
    torch.testing.assert_close(ratio, ratio_trl, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(loss, loss_trl, rtol=1e-5, atol=1e-7)
    assert grads.keys() == grads_trl.keys() and len(grads) > 0
    for name in grads:
        torch.testing.assert_close(grads[name], grads_trl[name], rtol=1e-4, atol=1e-7)
    assert metrics.keys() == metrics_trl.keys() and len(metrics) == 5
    for key in metrics:
        assert metrics[key] == pytest.approx(metrics_trl[key], rel=1e-5, abs=1e-6), key
    assert all(len(skipping._metrics["train"][k]) == 1 for k in metrics)  # the placeholder's were dropped, the loss's logged


def test_a_round_over_several_optimizer_steps_keeps_trls_pass(model_dir, tmp_path):
    trainer = _trainer(model_dir, tmp_path, True, steps_per_generation=2, per_device_train_batch_size=2)
    _fixed_round(trainer, 0.1)
    batch = trainer._generate_and_score_completions([dict(r) for r in trainer.train_dataset])
    assert "old_per_token_logps" in batch  # the policy moves between the round's steps: TRL's pass runs
    assert trainer.grpo_core_skipped_passes == 0


def test_importance_sampling_ratio_modes():
    old = torch.tensor([[0.0, -1.0, -2.0], [-1.0, -1.0, 0.0]])
    sampling = torch.tensor([[-1.0, -1.0, -1.0], [-1.0, -1.5, float("nan")]])
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])  # masked and NaN tokens: no correction (ratio 1)
    e = torch.e
    torch.testing.assert_close(importance_sampling_ratio(old, sampling, mask, "token_truncate", None, 2.0),
                               torch.tensor([[2.0, 1.0, 1.0], [1.0, e ** 0.5, 1.0]]))
    torch.testing.assert_close(importance_sampling_ratio(old, sampling, mask, "token_mask", None, 2.0),
                               torch.tensor([[0.0, 1.0, 1.0], [1.0, e ** 0.5, 1.0]]))
    torch.testing.assert_close(importance_sampling_ratio(old, sampling, mask, "sequence_mask", None, 2.5), torch.tensor([[0.0], [e ** 0.5]]))
    torch.testing.assert_close(importance_sampling_ratio(old, sampling, mask, "sequence_truncate", 1.7, 2.5), torch.tensor([[2.5], [1.7]]))
    with pytest.raises(ValueError, match="valid: token_truncate"):
        importance_sampling_ratio(old, sampling, mask, "tokens", None, 3.0)


def test_the_trl_backend_builds_the_skipping_trainer_only_when_asked():
    from grpo_core.config.settings import build_config
    from grpo_core.train.backends import LoadedPolicy, get_backend
    from grpo_core.train.old_logps import SkipOldLogpsPass

    class Base:
        pass

    policy = LoadedPolicy("trl", model=None, tokenizer=None, peft_config=None, trainer_base=Base)

    def built(backend: str, *sets: str) -> type:
        return get_backend(backend).trainer_class(build_config(sets=list(sets)), policy, first_round_lengths=None, echo=print)

    assert issubclass(built("trl", "skip_old_logps_pass=true"), SkipOldLogpsPass)
    assert not issubclass(built("trl"), SkipOldLogpsPass)
    assert not issubclass(built("unsloth", "skip_old_logps_pass=true"), SkipOldLogpsPass)  # Unsloth's trainer is left as it is
