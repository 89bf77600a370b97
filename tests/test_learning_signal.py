"""Learning signal on CPU: the rollout probe, dynamic sampling, the mismatch correction's wiring,
the three-point evaluation, and the plain-words diagnosis."""

from __future__ import annotations

import json
from collections import defaultdict
from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

import toy_plugin  # noqa: E402  (tests/ is on sys.path)
from tiny_models import build_tiny_qwen2  # noqa: E402

from grpo_core import hookimpl  # noqa: E402
from grpo_core.config.settings import build_config  # noqa: E402
from grpo_core.errors import ConfigError, PreflightError  # noqa: E402
from grpo_core.kit.extraction import completion_text  # noqa: E402
from grpo_core.train import dynamic_sampling, is_correction, probe  # noqa: E402
from grpo_core.train.diagnosis import Diagnosis  # noqa: E402

FLAGS = {
    "dataset": "toy:train",
    "num_generations": 4,
    "per_device_train_batch_size": 8,
    "max_completion_length": 12,
    "learning_rate": 5e-3,
    "eval_limit": 0,
    "lora.r": 4,
    "threads": 1,
    "report": False,
}


def zero_reward(completions, **kwargs):
    """The issue's zero-signal case: nothing the model writes ever scores."""
    return [0.0 for _ in completions]


def odd_parity(completions, answer, **kwargs):
    """Ties on every even-answer prompt (always 0); 0 or 1 by completion length on the others."""
    return [0.0 if int(a) % 2 == 0 else float(len(completion_text(c)) % 2) for c, a in zip(completions, answer)]


class SignalPlugin:
    __name__ = "signal_plugin"

    @hookimpl
    def register_rewards(self, register):
        register(zero_reward)
        register(odd_parity, requires=("answer",))


@pytest.fixture(scope="module")
def plugins_registered():
    with toy_plugin.registered_with("signal_plugin", SignalPlugin()):
        yield


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return str(build_tiny_qwen2(tmp_path_factory.mktemp("model") / "tiny"))


# --- the probe ----------------------------------------------------------------------------------

def test_probe_summary_counts_ties_lengths_and_nones():
    values = {"a": [1.0, 1.0, 0.0, 1.0, None, None], "b": [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]}
    r = probe.summarize(["x"] * 6, [3, 5, 12, 12, 4, 2], [False, False, True, True, False, False], values, {"a": 1.0, "b": 2.0},
                        num_generations=2, max_completion_length=12)
    assert r.prompts == 3
    assert r.tied_share == pytest.approx(2 / 3)  # (1,1) and (None,None) tie; (0,1) does not
    assert r.rewards["a"]["none_share"] == pytest.approx(2 / 6) and r.rewards["a"]["mean"] == pytest.approx(0.75)
    assert r.cut_share == pytest.approx(2 / 6) and r.lengths["max"] == 12 and r.lengths["min"] == 2
    assert len(r.examples) == 3 and r.examples[0]["reward"] >= r.examples[-1]["reward"]


def test_probe_stop_message_names_the_fixes():
    r = probe.summarize(["x"] * 4, [8] * 4, [True] * 4, {"a": [0.0] * 4}, {"a": 1.0}, num_generations=2, max_completion_length=8)
    msg = probe.stop_message(r, 0.9, sft_done=False)
    for fix in ("--sft-warmup-steps", "--max-completion-length", "flexible correctness", "system prompt", "--force"):
        assert fix in msg
    assert "100% of 2 prompt groups tie" in msg and "every reward is 0" in msg
    assert probe.stop_message(r, 1.0, sft_done=False) is None  # at the threshold: no stop


def test_probe_default_is_on_except_for_the_bundled_model():
    assert probe.resolve_prompts(None, bundled=True) == 0
    assert probe.resolve_prompts(None, bundled=False) == probe.DEFAULT_PROMPTS
    assert probe.resolve_prompts(3, bundled=True) == 3


def test_probe_stops_a_zero_signal_run_before_training(plugins_registered, tiny_model, tmp_path):
    from grpo_core.train import run

    lines = []
    cfg = build_config(flags={**FLAGS, "plugins": "zero_reward", "model": tiny_model, "output_dir": str(tmp_path), "max_steps": 2, "probe": 2})
    with pytest.raises(PreflightError, match="no learning signal") as err:
        run(cfg, echo=lines.append)
    assert "--sft-warmup-steps" in str(err.value)
    info = json.loads((tmp_path / "run.json").read_text())
    assert info["status"] == "stopped by the rollout probe"
    assert info["probe"]["stopped"] and info["probe"]["tied_share"] == 1.0
    assert not (tmp_path / "adapter").exists()  # nothing trained
    assert any("rollout probe: 2 prompts x 4 completions" in ln for ln in lines)


def test_force_trains_past_the_probe(plugins_registered, tiny_model, tmp_path):
    from grpo_core.train import run

    cfg = build_config(flags={**FLAGS, "plugins": "zero_reward", "model": tiny_model, "output_dir": str(tmp_path), "max_steps": 1,
                              "probe": 2, "force": True})
    info = run(cfg, echo=lambda s: None)
    assert info["status"] == "finished" and info["probe"]["forced"] and not info["probe"]["stopped"]


# --- dynamic sampling ---------------------------------------------------------------------------

def _loss_inputs(monkeypatch):
    """Record every batch that reaches TRL's loss."""
    from trl import GRPOTrainer

    seen = []
    original = GRPOTrainer._compute_loss

    def spy(self, model, inputs):
        seen.append({k: inputs[k].detach().clone() for k in ("completion_mask", "advantages")})
        return original(self, model, inputs)

    monkeypatch.setattr(GRPOTrainer, "_compute_loss", spy)
    return seen


@pytest.mark.parametrize("on", [True, False])
def test_dynamic_sampling_keeps_tied_groups_out_of_the_loss(plugins_registered, tiny_model, tmp_path, monkeypatch, on):
    from grpo_core.train import run

    seen = _loss_inputs(monkeypatch)
    cfg = build_config(flags={**FLAGS, "plugins": "odd_parity", "model": tiny_model, "output_dir": str(tmp_path), "max_steps": 4,
                              "probe": 0, "dynamic_sampling": on, "logging_steps": 1},
                       sets=["dynamic_sampling_max_rounds=8"])
    info = run(cfg, echo=lambda s: None)
    assert info["status"] == "finished" and seen
    # binary rewards: a row of a group that does not tie always has a non-zero advantage
    in_loss_without_signal = sum(int(((b["completion_mask"].sum(1) > 0) & (b["advantages"].abs() < 1e-6)).sum()) for b in seen)
    history = json.loads((tmp_path / "log_history.json").read_text())
    dropped = sum(h.get("dynamic_sampling/dropped_groups", 0) for h in history)
    if on:
        assert in_loss_without_signal == 0
        assert dropped > 0  # there were tied groups to drop (every even-answer prompt ties)
        assert any(h.get("dynamic_sampling/refilled_groups", 0) > 0 for h in history)
    else:
        assert in_loss_without_signal > 0  # the same run without it trains on tied groups
        assert not any("dynamic_sampling/dropped_groups" in h for h in history)


def test_concat_pads_prompts_left_and_completions_right():
    a = {"prompt_ids": torch.tensor([[5, 6]]), "prompt_mask": torch.tensor([[1, 1]]), "completion_ids": torch.tensor([[7]]),
         "completion_mask": torch.tensor([[1]]), "advantages": torch.tensor([0.5])}
    b = {"prompt_ids": torch.tensor([[1, 2, 3]]), "prompt_mask": torch.tensor([[1, 1, 1]]), "completion_ids": torch.tensor([[8, 9, 4]]),
         "completion_mask": torch.tensor([[1, 1, 0]]), "advantages": torch.tensor([-0.5])}
    out = dynamic_sampling.concat_batches([a, b], pad_token_id=0)
    assert out["prompt_ids"].tolist() == [[0, 5, 6], [1, 2, 3]] and out["prompt_mask"].tolist() == [[0, 1, 1], [1, 1, 1]]
    assert out["completion_ids"].tolist() == [[7, 0, 0], [8, 9, 4]] and out["completion_mask"].tolist() == [[1, 0, 0], [1, 1, 0]]
    assert int(dynamic_sampling.loss_tokens(out)) == 3


def test_concat_keeps_one_batch_wide_value_and_refuses_two():
    part = {"completion_ids": torch.tensor([[1]]), "completion_mask": torch.tensor([[1]]), "extra_setting": 3}
    assert dynamic_sampling.concat_batches([part, dict(part)], pad_token_id=0)["extra_setting"] == 3
    with pytest.raises(ConfigError, match="'extra_setting' differ"):
        dynamic_sampling.concat_batches([part, {**part, "extra_setting": 4}], pad_token_id=0)


def test_tied_groups_ignore_unscorable_rows():
    nan = float("nan")
    rewards = torch.tensor([[1.0, 0.0], [1.0, 0.0], [nan, nan], [0.0, 1.0], [0.0, 2.0], [0.0, 1.0]])
    # weighted: [1, 1 | nan, 1 | 2, 1] with weights (1, 1)... and with the second weighted x0.5
    assert dynamic_sampling.tied_groups(rewards, torch.tensor([1.0, 1.0]), 2) == [True, True, False]
    assert dynamic_sampling.tied_groups(rewards, torch.tensor([1.0, 0.0]), 2) == [True, True, True]


class _Process:
    """One process of a simulated two-process run, as DynamicSampling.fill sees its trainer."""

    def __init__(self, index: int, dataset: list[dict], processes: int = 2) -> None:
        self.num_generations = 2
        self.accelerator = SimpleNamespace(num_processes=processes, process_index=index, gather=lambda t: t * processes)
        self.processing_class = SimpleNamespace(pad_token_id=0)
        self.reward_weights = torch.tensor([1.0])
        self.train_dataset = dataset
        self._metrics = defaultdict(lambda: defaultdict(list))


def _fill_as_process(index: int, dataset: list[dict], first_round: list[dict]) -> tuple[dict, dict, int]:
    """What process ``index`` trains on. Every round's rewards are every process's (as TRL gathers them): a
    prompt whose id is a multiple of 3 ties, the others score 0 and 1 within their group."""
    sampler = dynamic_sampling.DynamicSampling(max_rounds=4, seed=0)
    round_rows = {"all": first_round}
    draw = sampler.draw

    def drawn(data, groups, group):
        round_rows["all"] = draw(data, groups, group)  # every process's rows of the extra round
        return round_rows["all"]

    sampler.draw = drawn
    calls = []

    def generate(rows):
        everyone = round_rows["all"]
        sampler.last_rewards = torch.tensor([[0.0 if r["id"] % 3 == 0 else float(i % 2)] for i, r in enumerate(everyone)])
        calls.append(len(rows))
        return {"prompt_ids": torch.tensor([[r["id"]] for r in rows]), "prompt_mask": torch.ones(len(rows), 1, dtype=torch.long),
                "completion_ids": torch.ones(len(rows), 2, dtype=torch.long), "completion_mask": torch.ones(len(rows), 2, dtype=torch.long),
                "advantages": torch.zeros(len(rows))}

    trainer = _Process(index, dataset)
    mine = len(first_round) // 2
    out = sampler.fill(trainer, first_round[index * mine:(index + 1) * mine], generate)
    return out, {k: v for k, v in trainer._metrics["train"].items()}, len(calls)


def test_dynamic_sampling_on_two_processes_takes_the_same_decisions_and_keeps_groups_whole():
    dataset = [{"id": i} for i in range(30)]
    # process 0 starts with two tied groups (ids 3 and 6), process 1 with none: only process 0 is short
    first = [dataset[i] for i in (3, 3, 6, 6, 1, 1, 2, 2)]
    results = [_fill_as_process(p, dataset, first) for p in (0, 1)]
    (out0, metrics0, calls0), (out1, metrics1, calls1) = results
    assert metrics0 == metrics1 and calls0 == calls1 > 1  # both ran the same extra rounds: their gathers line up
    assert metrics0["dynamic_sampling/dropped_groups"] == [2.0] and metrics0["dynamic_sampling/refilled_groups"] == [2.0]
    assert out1["prompt_ids"].flatten().tolist() == [1, 1, 2, 2]  # process 1 kept its own groups
    for out in (out0, out1):
        ids = out["prompt_ids"].flatten().tolist()
        assert len(ids) == 4 and ids[0::2] == ids[1::2]  # whole groups, as many as each process started with
        trained = out["completion_mask"].sum(1) > 0
        assert not any(i % 3 == 0 for i, t in zip(ids, trained.tolist()) if t)  # no tied group reaches the loss


def test_dynamic_sampling_needs_whole_groups_on_each_process():
    sampler = dynamic_sampling.DynamicSampling(max_rounds=1)
    trainer = _Process(0, [{"id": 1}], processes=2)
    trainer.num_generations = 4

    def generate(rows):
        return {"completion_ids": torch.ones(len(rows), 1, dtype=torch.long), "completion_mask": torch.ones(len(rows), 1, dtype=torch.long),
                "advantages": torch.zeros(len(rows))}

    with pytest.raises(ConfigError, match="multiple of num_generations"):
        sampler.fill(trainer, [{"id": 1}] * 2, generate)


# --- the mismatch correction --------------------------------------------------------------------

def test_mismatch_correction_settings():
    cfg = build_config(flags={"model": "x/y"})
    assert is_correction.correction_kwargs(cfg) == {"vllm_importance_sampling_correction": True,
                                                    "vllm_importance_sampling_mode": "token_truncate", "vllm_importance_sampling_clip_max": 3.0}
    off = build_config(flags={"model": "x/y"}, sets=["mismatch_correction=off"])
    assert is_correction.correction_kwargs(off) == {"vllm_importance_sampling_correction": False}
    own = build_config(flags={"model": "x/y"}, sets=["vllm_importance_sampling_mode=sequence_mask"])
    assert "vllm_importance_sampling_mode" not in is_correction.correction_kwargs(own)  # TRL's own field wins
    with pytest.raises(ConfigError, match="token_truncate, token_mask"):
        build_config(flags={"model": "x/y"}, sets=["mismatch_correction=clip"]).validate(check_grpo_fields=False)


def test_restore_switches_a_patched_trainers_correction_back_on():
    args = SimpleNamespace(vllm_importance_sampling_correction=True, vllm_importance_sampling_mode="token_truncate", vllm_importance_sampling_clip_max=3.0)
    trainer = SimpleNamespace(use_vllm=True, vllm_importance_sampling_correction=False, vllm_importance_sampling_mode="sequence_mask",
                              vllm_importance_sampling_clip_max=3.0)
    assert is_correction.restore_on_trainer(trainer, args) is True
    assert trainer.vllm_importance_sampling_correction and trainer.vllm_importance_sampling_mode == "token_truncate"
    assert "token_truncate" in is_correction.describe(trainer, args)
    assert is_correction.restore_on_trainer(trainer, args) is False  # already as asked
    cpu = SimpleNamespace(use_vllm=False, vllm_importance_sampling_correction=True)
    assert "inert" in is_correction.describe(cpu, args)


def test_the_unsloth_backend_restores_the_correction_its_config_switched_off():
    from grpo_core.train.backends.unsloth import UnslothBackend

    args = SimpleNamespace(vllm_importance_sampling_correction=True, vllm_importance_sampling_mode="token_truncate", vllm_importance_sampling_clip_max=3.0)
    trainer = SimpleNamespace(args=args, use_vllm=True, vllm_importance_sampling_correction=False)
    lines = []
    UnslothBackend().trainer_built(trainer, build_config(flags={"model": "x/y"}), lines.append)
    assert trainer.vllm_importance_sampling_correction is True and any("restored" in ln for ln in lines)


def test_mismatch_metrics_are_logged_by_the_shared_generation_hook():
    from grpo_core.train.generation_batch import with_generation_hooks

    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    batch = {"completion_mask": mask, "old_per_token_logps": torch.tensor([[-1.0, -2.0, 0.0], [-0.5, 0.0, 0.0]]),
             "sampling_per_token_logps": torch.tensor([[-1.1, -2.0, -9.0], [-0.2, 0.0, 0.0]]),
             "importance_sampling_ratio": torch.tensor([[0.9, 1.0, 1.0], [3.0, 1.0, 1.0]])}

    class Base:  # stands for TRL's GRPOTrainer or Unsloth's patched copy
        __name__ = "GRPOTrainer"
        model = SimpleNamespace(training=True)
        vllm_importance_sampling_clip_max = 3.0

        def __init__(self):
            self._metrics = {"train": defaultdict(list)}

        def _generate_and_score_completions(self, inputs):
            return batch

    trainer = with_generation_hooks(Base)()
    assert trainer._generate_and_score_completions([]) is batch
    m = trainer._metrics["train"]
    assert m["mismatch/logp_diff_mean"] == [pytest.approx((0.1 + 0.0 + 0.3) / 3)]
    assert m["mismatch/logp_diff_max"] == [pytest.approx(0.3)]
    assert m["mismatch/is_weight_mean"] == [pytest.approx((0.9 + 1.0 + 3.0) / 3)] and m["mismatch/is_weight_clipped"] == [pytest.approx(1 / 3)]
    assert is_correction.mismatch_metrics({"completion_mask": mask}) == {}  # HF generate: nothing to compare


def test_run_passes_the_correction_to_trl(plugins_registered, tiny_model, tmp_path):
    from grpo_core.train import run

    info = run(build_config(flags={**FLAGS, "plugins": "odd_parity", "model": tiny_model, "output_dir": str(tmp_path), "probe": 0}),
               dry_run=True, echo=lambda s: None)
    g = info["grpo_config"]
    assert g["vllm_importance_sampling_correction"] is True and g["vllm_importance_sampling_mode"] == "token_truncate"


# --- three-point evaluation ---------------------------------------------------------------------

def test_three_point_evaluation_in_run_json_and_report(plugins_registered, tiny_model, tmp_path):
    from grpo_core.train import run

    cfg = build_config(flags={**FLAGS, "plugins": "odd_parity", "model": tiny_model, "output_dir": str(tmp_path), "max_steps": 1, "probe": 0,
                              "sft_warmup_steps": 1, "eval_limit": 2, "report": True})
    info = run(cfg, echo=lambda s: None)
    ev = info["evaluation"]
    assert [s for s in ("before", "after_sft", "after") if s in ev] == ["before", "after_sft", "after"]
    for stage in ("before", "after_sft", "after"):
        assert 0.0 <= ev[stage]["accuracy_strict"] <= ev[stage]["accuracy_flexible"] <= 1.0
    assert set(ev["gains"]) == {"total", "sft", "grpo"}
    assert ev["gains"]["grpo"]["accuracy_flexible"] == pytest.approx(ev["after"]["accuracy_flexible"] - ev["after_sft"]["accuracy_flexible"])
    report = (tmp_path / "report.md").read_text()
    assert "| after SFT warm-up |" in report and "GRPO's own gain" in report and "accuracy (flexible)" in report


def test_strict_and_flexible_accuracy():
    from grpo_core import get_verifier
    from grpo_core.evaluation.metrics import score_completions

    rows = [{"id": i, "answer": "18"} for i in range(3)]
    m = score_completions(rows, [["<answer>18</answer>"], ["so 9 + 9 makes\n#### 18"], ["<answer>17</answer>"]], get_verifier("arithmetic")).metrics
    assert m["accuracy_strict"] == pytest.approx(1 / 3) and m["accuracy_flexible"] == pytest.approx(2 / 3)


# --- diagnosis ----------------------------------------------------------------------------------

def _history(n=12, **series):
    return [{"step": i + 1, **{k: f(i) for k, f in series.items()}} for i in range(n)]


@pytest.mark.parametrize("kind,series", [
    ("format_not_task", {"rewards/xml/mean": lambda i: min(0.5, 0.05 * i), "rewards/correctness/mean": lambda i: 0.02}),
    ("length_to_cap", {"completions/clipped_ratio": lambda i: 0.05 * i, "completions/mean_length": lambda i: 50 + 10 * i}),
    ("entropy_collapse", {"entropy": lambda i: 1.0 if i < 5 else 0.05}),
    ("mismatch_growing", {"mismatch/logp_diff_mean": lambda i: 0.01 if i < 5 else 0.1}),
])
def test_diagnosis_names_what_the_curves_mean(kind, series):
    d = Diagnosis(["xml", "correctness"])
    found = d.update(_history(**series))
    assert [f.kind for f in found] == [kind] and "Try:" in found[0].message
    assert d.update(_history(**series)) == []  # said once


def test_diagnosis_is_quiet_on_a_healthy_run():
    healthy = _history(**{"rewards/xml/mean": lambda i: 0.05 * i, "rewards/correctness/mean": lambda i: 0.04 * i, "entropy": lambda i: 0.8,
                          "completions/clipped_ratio": lambda i: 0.02, "mismatch/logp_diff_mean": lambda i: 0.01})
    assert Diagnosis(["xml", "correctness"]).update(healthy) == []
    assert Diagnosis(["xml", "correctness"]).update(healthy[:6]) == []  # too few steps to judge


# --- the rollout log ----------------------------------------------------------------------------

def test_rollout_log_appends_the_latest_gathered_round(tmp_path):
    from collections import deque

    from grpo_core.train.rollout_log import RolloutLog

    logs = {"prompt": deque(["old", "p", "p"], maxlen=3), "completion": deque(["x", "a", "b"], maxlen=3),
            "rewards": {"r": deque([0.0, 1.0, float("nan")], maxlen=3)}, "advantages": deque([0.0, 0.7, -0.7], maxlen=3)}
    trainer = SimpleNamespace(_logs=logs, reward_func_names=["r"], state=SimpleNamespace(global_step=4))
    RolloutLog(tmp_path).append(trainer, rows=2, round_=1)
    RolloutLog(tmp_path, enabled=False).append(trainer, rows=2, round_=1)  # another process: writes nothing
    lines = [json.loads(line) for line in (tmp_path / "rollouts.jsonl").read_text().splitlines()]
    assert lines == [{"step": 5, "round": 1, "row": 0, "prompt": "p", "completion": "a", "rewards": {"r": 1.0}, "advantage": 0.7},
                     {"step": 5, "round": 1, "row": 1, "prompt": "p", "completion": "b", "rewards": {"r": None}, "advantage": -0.7}]
    with pytest.raises(RuntimeError, match="turn log_rollouts off"):
        RolloutLog(tmp_path).append(trainer, rows=4, round_=0)
