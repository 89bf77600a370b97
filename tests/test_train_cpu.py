"""A real `grpo-core run` on a tiny locally built model, on CPU.

One short run (with a reward that raises on some samples) is shared by the
tests below; a second run resumes it. Together they take ~30 s on 2 cores.
"""

from __future__ import annotations

import json
import os
import signal
import sys

import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

import toy_plugin  # noqa: E402  (tests/ is on sys.path)
from tiny_models import build_tiny_qwen2  # noqa: E402

from grpo_core import hookimpl  # noqa: E402
from grpo_core.config.settings import build_config  # noqa: E402
from grpo_core.errors import ConfigError, PreflightError  # noqa: E402
from grpo_core.testing.pytest_plugin import throwaway_registrations  # noqa: E402

RUN_FLAGS = {
    "dataset": "toy:train",
    "plugins": "short_reward,flaky_reward:0.5,xml",
    "num_generations": 4,
    "per_device_train_batch_size": 8,
    "max_completion_length": 12,
    "learning_rate": 5e-3,
    "eval_limit": 0,
    "lora.r": 4,
    "save_steps": 2,
    "threads": 1,
    "probe": 0,  # these tests are about other things; the probe has its own (tests/test_learning_signal.py)
}


def flaky_reward(completions, **kwargs):
    """Raises on unformatted completions of odd length (the gold smoke test never trips it)."""
    out = []
    for c in completions:
        text = c[0]["content"] if isinstance(c, list) else c
        if "<reasoning>" not in text and len(text) % 2:
            raise RuntimeError("flaky reward exploded")
        out.append(1.0)
    return out


class FlakyPlugin:
    __name__ = "flaky"

    @hookimpl
    def register_rewards(self, register):
        register(flaky_reward)


@pytest.fixture(scope="module")
def plugins_registered():
    with toy_plugin.registered_with("flaky", FlakyPlugin()):
        yield


@pytest.fixture
def grpo_register(plugins_registered):
    """The kit's throwaway registrations, on top of this module's toy plugins (not the suite's hermetic reset)."""
    yield from throwaway_registrations()


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return str(build_tiny_qwen2(tmp_path_factory.mktemp("model") / "tiny"))


@pytest.fixture(scope="module")
def first_run(plugins_registered, tiny_model, tmp_path_factory):
    from grpo_core.train import run

    out = tmp_path_factory.mktemp("run")
    cfg = build_config(flags={**RUN_FLAGS, "model": tiny_model, "output_dir": str(out), "max_steps": 2})
    info = run(cfg, echo=lambda s: None)
    return out, info


def test_run_finishes_and_saves_adapter(first_run):
    out, info = first_run
    assert info["status"] == "finished"
    assert info["global_step"] == 2
    assert (out / "adapter" / "adapter_model.safetensors").is_file()
    assert (out / "adapter" / "run.json").is_file()
    assert "Training provenance" in (out / "adapter" / "README.md").read_text()


def test_lora_weights_changed(first_run):
    from safetensors.torch import load_file

    out, _ = first_run
    weights = load_file(str(out / "adapter" / "adapter_model.safetensors"))
    lora_b = {k: v for k, v in weights.items() if "lora_B" in k}
    assert lora_b, "the adapter has no LoRA B matrices"
    # LoRA B starts at zero: any non-zero entry means GRPO updated it
    changed = [k for k, v in lora_b.items() if v.abs().sum() > 0]
    assert len(changed) == len(lora_b), f"unchanged LoRA B: {sorted(set(lora_b) - set(changed))[:3]}"


def test_per_reward_metrics_logged(first_run):
    out, _ = first_run
    history = json.loads((out / "log_history.json").read_text())
    steps = [h for h in history if "reward" in h]
    assert len(steps) == 2
    for name in ("short_reward", "flaky_reward", "xml"):
        for key in ("mean", "std", "errors", "timeouts", "none_frac", "latency_ms"):
            assert f"rewards/{name}/{key}" in steps[0], f"rewards/{name}/{key} missing"
    assert "engine/reward_ms" in steps[0]
    assert "completions/clipped_ratio" in steps[0]


def test_step_phase_times_logged(first_run):
    out, _ = first_run
    steps = [h for h in json.loads((out / "log_history.json").read_text()) if "reward" in h]
    for h in steps:
        for phase in ("step", "generate", "sync", "old_logps", "rewards", "prepare", "train"):
            assert f"time/{phase}_s" in h, f"time/{phase}_s missing"
        # the parts nest: generation and rewards are inside the batch preparation, which is inside the step
        assert 0 < h["time/generate_s"] <= h["time/prepare_s"] <= h["time/step_s"]
        assert 0 < h["time/rewards_s"] <= h["time/prepare_s"]
        assert h["time/train_s"] > 0
        assert abs(h["time/prepare_s"] + h["time/train_s"] - h["time/step_s"]) < 1e-6


def test_raising_reward_is_isolated(first_run):
    out, info = first_run
    totals = info["reward_totals"]
    # the tiny model writes plenty of 'a's: some samples failed, the run went on
    assert totals["flaky_reward"]["errors"] > 0
    assert totals["flaky_reward"]["errors"] < totals["flaky_reward"]["samples"] or totals["short_reward"]["errors"] == 0
    assert totals["short_reward"]["errors"] == 0


def test_run_json_is_complete(first_run):
    out, _ = first_run
    info = json.loads((out / "run.json").read_text())
    for key in ("config", "grpo_config", "rewards", "dataset", "libraries", "git_revision", "backend", "status", "global_step"):
        assert key in info, key
    assert info["dataset"]["content_hash"] and info["dataset"]["rows"] == 32
    assert {r["name"]: r["weight"] for r in info["rewards"]} == {"short_reward": 1.0, "flaky_reward": 0.5, "xml": 1.0}
    builtin = next(r for r in info["rewards"] if r["name"] == "xml")
    assert builtin["distribution"] == "grpo-core" and builtin["version"]
    assert info["libraries"]["trl"] and info["libraries"]["torch"]
    assert info["config"]["lora"]["r"] == 4


def test_resume_continues_step_count(first_run, tiny_model):
    from grpo_core.train import run

    out, _ = first_run
    cfg = build_config(flags={**RUN_FLAGS, "model": tiny_model, "output_dir": str(out), "max_steps": 4})
    lines: list[str] = []
    info = run(cfg, resume=True, echo=lines.append)
    assert any("resuming from" in ln and "checkpoint-2" in ln for ln in lines)
    assert info["global_step"] == 4
    history = json.loads((out / "log_history.json").read_text())
    assert [h["step"] for h in history if "reward" in h][-2:] == [3, 4]


def test_resume_without_checkpoint_is_a_clear_error(plugins_registered, tiny_model, tmp_path):
    from grpo_core.train import run

    cfg = build_config(flags={**RUN_FLAGS, "model": tiny_model, "output_dir": str(tmp_path / "empty"), "max_steps": 2})
    with pytest.raises(ConfigError, match="no checkpoint"):
        run(cfg, resume=True, echo=lambda s: None)


def test_sigterm_saves_checkpoint_and_adapter(grpo_register, tiny_model, tmp_path):
    """A reward that sends SIGTERM mid-run: the step finishes, a checkpoint and the adapter are written."""
    from grpo_core.train import run

    calls = {"n": 0}

    def term_on_second_batch(completions, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:  # call 1 is the pre-flight smoke test, call 3 is step 2
            os.kill(os.getpid(), signal.SIGTERM)
        return [0.0 for _ in completions]

    class TermPlugin:
        __name__ = "term"

        @hookimpl
        def register_rewards(self, register):
            register(term_on_second_batch, name="term_reward")

    grpo_register(TermPlugin(), name="term")
    flags = {**RUN_FLAGS, "plugins": "short_reward,term_reward", "model": tiny_model, "output_dir": str(tmp_path), "max_steps": 50}
    info = run(build_config(flags=flags), echo=lambda s: None)
    assert info["status"] == "interrupted"
    assert info["global_step"] == 2
    assert (tmp_path / "checkpoint-2").is_dir()
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()


def test_dry_run_stops_before_model(plugins_registered, tiny_model, tmp_path):
    from grpo_core.train import run

    lines: list[str] = []
    info = run(build_config(flags={**RUN_FLAGS, "model": tiny_model, "output_dir": str(tmp_path)}), dry_run=True, echo=lines.append)
    assert info["status"] == "dry-run"
    text = "\n".join(lines)
    assert "first prompt as the model will see it" in text and "<|im_start|>assistant" in text
    assert "2 prompt(s) x 4 generations" in text
    assert "rewards on gold-formatted answers" in text
    assert not (tmp_path / "adapter").exists()


@pytest.mark.parametrize(
    "flags, match",
    [
        ({"num_generations": 3}, "not a multiple of num_generations=3"),
        ({"max_prompt_length": 5, "overlong_prompts": "error"}, "longer than max_prompt_length"),
        # 3 rows, but 4 steps per generation round x 2 prompts each = 8 distinct prompts per round: TRL would train 0 steps
        ({"limit": 3, "steps_per_generation": 4}, "3 training row\\(s\\) left .* 8 distinct prompts"),
    ],
)
def test_preflight_refuses_impossible_settings(plugins_registered, tiny_model, tmp_path, flags, match):
    from grpo_core.train import run

    cfg = build_config(flags={**RUN_FLAGS, "model": tiny_model, "output_dir": str(tmp_path), **flags})
    with pytest.raises(PreflightError, match=match):
        run(cfg, dry_run=True, echo=lambda s: None)


def test_missing_required_column_fails_preflight(grpo_register, tiny_model, tmp_path):
    from grpo_core.train import run

    def needs_solution_steps(completions, steps, **kw):
        return [0.0] * len(completions)

    class NeedsPlugin:
        __name__ = "needs"

        @hookimpl
        def register_rewards(self, register):
            register(needs_solution_steps, requires=("steps",))

    grpo_register(NeedsPlugin(), name="needs")
    cfg = build_config(flags={**RUN_FLAGS, "plugins": "needs_solution_steps", "model": tiny_model, "output_dir": str(tmp_path)})
    with pytest.raises(PreflightError, match=r"needs column\(s\) \['steps'\]"):
        run(cfg, dry_run=True, echo=lambda s: None)


def test_unknown_grpo_setting_lists_close_names(plugins_registered, tiny_model, tmp_path):
    # refused as the settings are built, before a run starts
    with pytest.raises(ConfigError, match="--set: unknown setting 'num_generation'.* Did you mean num_generations"):
        build_config(flags={**RUN_FLAGS, "model": tiny_model, "output_dir": str(tmp_path)}, sets=["num_generation=4"])


def test_presets_carry_the_reference_settings():
    from grpo_core.config.presets import get_preset

    q = get_preset("seed-qwen2.5-3b")
    g = q["grpo"]
    assert q["model"] == "Qwen/Qwen2.5-3B-Instruct" and q["load_in_4bit"] and q["lora"]["r"] == 64
    assert len(q["lora"]["target_modules"]) == 7 and q["gpu_memory_utilization"] == 0.5
    assert (g["learning_rate"], g["lr_scheduler_type"], g["warmup_steps"], g["optim"]) == (5e-6, "cosine", 0.1, "adamw_8bit")
    assert (g["num_generations"], g["max_completion_length"], g["max_grad_norm"], g["max_steps"]) == (8, 200, 0.1, 250)
    assert q["plugins"] == "xml,soft_format,strict_format,int,correctness"
    ll = get_preset("seed-llama3.2-3b")
    assert ll["chat_template"] == "llama-3.1" and not ll["load_in_4bit"]
    assert ll["grpo"]["max_completion_length"] == 1536 and ll["plugins"] == "exact_format,graded_correctness"
    # the speed preset changes how the run is executed, not what each step trains on
    f = get_preset("fast-qwen2.5-3b")
    assert f["backend"] == "trl" and f["use_vllm"] and f["fast_vllm_sync"] and f["grpo"]["steps_per_generation"] == 8
    same = {k: v for k, v in f["grpo"].items() if k != "steps_per_generation"}
    assert same == g and f["plugins"] == q["plugins"] and f["lora"] == q["lora"] and f["model"] == q["model"]


def test_speed_preset_passes_preflight_with_its_batch_arithmetic(plugins_registered, tiny_model, tmp_path):
    from grpo_core.train import run

    cfg = build_config(preset="fast-qwen2.5-3b", flags={"model": tiny_model, "output_dir": str(tmp_path), "dataset": "toy:train",
                                                         "eval_dataset": "toy:test",  # pre-flight looks the eval dataset up (gsm8k is a plugin's)
                                                         "plugins": "xml", "backend": "trl"}, sets=["max_prompt_length=null"])
    lines: list[str] = []
    info = run(cfg, dry_run=True, echo=lines.append)
    assert info["status"] == "dry-run"
    assert "8 prompt(s) x 8 generations = 64 completions per generation round" in "\n".join(lines)
    assert "8 optimizer step(s) per round" in "\n".join(lines)


@pytest.mark.parametrize("policy", ["drop", "truncate"])
def test_overlong_prompts_are_dropped_or_truncated(plugins_registered, tiny_model, tmp_path, policy):
    from grpo_core.train import run

    flags = {**RUN_FLAGS, "model": tiny_model, "output_dir": str(tmp_path), "max_prompt_length": 43, "overlong_prompts": policy}
    lines: list[str] = []
    info = run(build_config(flags=flags), dry_run=True, echo=lines.append)
    text = "\n".join(lines)
    assert "longer than max_prompt_length=43" in text
    if policy == "drop":
        assert 0 < info["dataset"]["rows"] < 32
    else:
        assert info["dataset"]["rows"] == 32 and "cut to fit" in text


def test_think_tag_opened_by_template_is_warned(plugins_registered, tiny_model, tmp_path):
    from grpo_core.train import run

    template = tmp_path / "think.jinja"
    template.write_text(
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n<think>{% endif %}"
    )
    flags = {**RUN_FLAGS, "model": tiny_model, "output_dir": str(tmp_path / "o"), "chat_template": str(template)}
    info = run(build_config(flags=flags), dry_run=True, echo=lambda s: None)
    assert any("already opens '<think>'" in w for w in info["preflight"]["warnings"])


def test_progress_callback_warns_on_dead_signal_clipping_and_degeneracy():
    import io

    from grpo_core.train.callbacks import ProgressCallback

    class State:
        global_step, max_steps, is_world_process_zero = 0, 10, True

    out = io.StringIO()
    cb = ProgressCallback(["xml"], stream=out, zero_variance_patience=3)
    for step in range(1, 4):
        State.global_step = step
        cb.on_log(None, State, None, logs={"reward": 0.0, "reward_std": 0.0, "rewards/xml/mean": 0.0, "frac_reward_zero_std": 1.0,
                                           "completions/clipped_ratio": 0.9, "completions/degenerate_frac": 0.8})
    text = out.getvalue()
    assert "step 3/10" in text and "xml 0.000" in text and "clipped 0.90" in text
    assert len(cb.warnings) == 3  # zero variance (after 3 steps), clipping, degeneracy — each once
    assert text.count("zero reward variance") == 1 and text.count("hit max_completion_length") == 1


def test_progress_callback_warns_when_vllm_samples_from_other_weights():
    import io

    from grpo_core.train.callbacks import ProgressCallback

    class State:
        global_step, max_steps, is_world_process_zero = 1, 10, True

    out = io.StringIO()
    cb = ProgressCallback(["xml"], stream=out)
    cb.on_log(None, State, None, logs={"reward": 1.0, "sampling/sampling_logp_difference/mean": 0.03})  # bf16 noise
    assert cb.warnings == []
    cb.on_log(None, State, None, logs={"reward": 1.0, "sampling/sampling_logp_difference/mean": 1.7})
    assert len(cb.warnings) == 1 and "1.70 nats per token" in out.getvalue() and "fast_vllm_sync" in out.getvalue()


def test_only_the_main_process_writes_run_json(plugins_registered, tiny_model, tmp_path, monkeypatch):
    """Under `accelerate launch` every rank runs the same code; files come from rank 0 only."""
    from grpo_core.train import run

    monkeypatch.setenv("RANK", "1")
    info = run(build_config(flags={**RUN_FLAGS, "model": tiny_model, "output_dir": str(tmp_path)}), dry_run=True, echo=lambda s: None)
    assert info["status"] == "dry-run" and not (tmp_path / "run.json").exists()


@pytest.mark.parametrize("on", [True, False])
def test_rounds_over_several_steps_keep_groups_whole_and_trim_padding(plugins_registered, tiny_model, tmp_path, monkeypatch, capsys, on):
    import grpo_core.train.batching as batching
    from grpo_core.train import run

    calls = {"group": [], "trim": 0}
    real_group, real_trim = batching.grouped_shuffle, batching.trimmed_logps

    def group(size, fallback):
        shuffle = real_group(size, fallback)

        def counted(seq_dict):
            calls["group"].append(size)
            return shuffle(seq_dict)

        return counted

    def trim(*a, **k):
        calls["trim"] += 1
        return real_trim(*a, **k)

    monkeypatch.setattr(batching, "grouped_shuffle", group)
    monkeypatch.setattr(batching, "trimmed_logps", trim)
    flags = {**RUN_FLAGS, "model": tiny_model, "output_dir": str(tmp_path), "max_steps": 2, "trim_padding": on, "group_steps": on}
    info = run(build_config(flags=flags, sets=["steps_per_generation=2"]), echo=lambda s: None)
    assert info["status"] == "finished" and info["global_step"] == 2
    out = capsys.readouterr().out
    assert "step 1/2 | reward" in out and "step 2/2 | on the last generation round | " in out  # every step has a line
    if on:
        # one generation round (4 prompts x 4 completions) for two steps, cut into whole groups of 4;
        # trimmed passes: the round's old log-probs, then one training pass per step
        assert calls["group"] == [4] and calls["trim"] == 3
    else:
        assert calls == {"group": [], "trim": 0}


def _fake_gpu(monkeypatch, total_gib: int):
    """The runner sizes vLLM only with a GPU and a colocated engine; fake both (nothing loads in a dry run)."""
    from grpo_core.train.backends.trl import TrlBackend
    from grpo_core.train.memory_plan import GIB

    class Props:
        total_memory = total_gib * GIB

    monkeypatch.setattr(TrlBackend, "colocated_vllm", lambda self, cfg: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: Props)


def test_preflight_sizes_vllm_and_fits_the_trl_engine_length(plugins_registered, tiny_model, tmp_path, monkeypatch):
    from grpo_core.train import run

    _fake_gpu(monkeypatch, 24)
    flags = {**RUN_FLAGS, "model": tiny_model, "output_dir": str(tmp_path), "backend": "trl"}
    lines: list[str] = []
    info = run(build_config(flags=flags, sets=["max_seq_length=16"]), dry_run=True, echo=lines.append)
    facts = info["preflight"]["facts"]["vllm_memory"]
    longest = info["preflight"]["facts"]["prompt_tokens"]["max"]
    # 16 tokens cannot hold the longest prompt + 12 completion tokens: the trl engine grows to fit, in 128-token blocks
    assert facts["max_model_len"] >= longest + 12 + 64 and facts["max_model_len"] % 128 == 0
    assert info["grpo_config"]["vllm_max_model_length"] == facts["max_model_len"]
    assert facts["gpu_total_gib"] == 24.0 and facts["weights_gib"] < 0.01
    assert any(ln.strip().startswith("vLLM memory: 0.5 x 24.0 GiB = 12.0 GiB") for ln in lines)
    # a length the user set is kept
    info = run(build_config(flags=flags, sets=["vllm_max_model_length=4096"]), dry_run=True, echo=lambda s: None)
    assert info["grpo_config"]["vllm_max_model_length"] == 4096


def test_an_impossible_vllm_fraction_stops_the_run_before_loading(plugins_registered, tiny_model, tmp_path, monkeypatch):
    from grpo_core.train import run

    _fake_gpu(monkeypatch, 24)
    flags = {**RUN_FLAGS, "model": tiny_model, "output_dir": str(tmp_path), "backend": "trl", "gpu_memory_utilization": 1e-9}
    with pytest.raises(PreflightError, match="vLLM would fail after loading"):
        run(build_config(flags=flags), dry_run=True, echo=lambda s: None)


def test_auto_fraction_is_chosen_by_preflight_and_given_to_the_trl_backend(plugins_registered, tiny_model, tmp_path, monkeypatch):
    import trl

    from grpo_core.train import run

    _fake_gpu(monkeypatch, 24)
    flags = {**RUN_FLAGS, "model": tiny_model, "output_dir": str(tmp_path), "backend": "trl", "gpu_memory_utilization": "auto"}
    lines: list[str] = []
    info = run(build_config(flags=flags, sets=["use_vllm=true"]), dry_run=True, echo=lines.append)
    facts = info["preflight"]["facts"]["vllm_memory"]
    # the tiny model's weights and KV cache are a few MiB: the 1 GiB engine allowance of 24 GiB (0.042) -> 0.05
    assert 0.041 < facts["comfortable_fraction"] < 0.042 and facts["fraction"] == 0.05 and facts["fraction_auto"] is True
    assert info["config"]["gpu_memory_utilization"] == 0.05  # run.json records the number that ran, not "auto"
    assert any(ln.strip().startswith("vLLM memory: 0.05 x 24.0 GiB = 1.2 GiB") and "0.05 chosen automatically" in ln for ln in lines)

    # past pre-flight: the trl backend hands TRL the chosen number (stopped where GRPOConfig would be built)
    class Stop(Exception):
        pass

    class StopAtGRPOConfig(trl.GRPOConfig):  # still GRPOConfig's fields for the config check
        def __init__(self, **kwargs):
            raise Stop(kwargs)

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(trl, "GRPOConfig", StopAtGRPOConfig)
    with pytest.raises(Stop) as stopped:
        run(build_config(flags=flags, sets=["use_vllm=true"]), echo=lambda s: None)
    assert stopped.value.args[0]["vllm_gpu_memory_utilization"] == 0.05
    recorded = json.loads((tmp_path / "run.json").read_text())
    assert recorded["grpo_config"]["vllm_gpu_memory_utilization"] == 0.05 and recorded["config"]["gpu_memory_utilization"] == 0.05


def test_auto_fraction_that_cannot_be_sized_asks_for_a_number(plugins_registered, tiny_model, tmp_path, monkeypatch):
    import grpo_core.train.memory_plan as memory_plan
    from grpo_core.train import run

    _fake_gpu(monkeypatch, 24)

    def exotic(cfg):
        raise ValueError("config.json lacks 'intermediate_size'; cannot size the model")

    monkeypatch.setattr(memory_plan.Shapes, "from_config", staticmethod(exotic))
    flags = {**RUN_FLAGS, "model": tiny_model, "output_dir": str(tmp_path), "backend": "trl"}
    with pytest.raises(PreflightError, match=r"auto: vLLM's memory cannot be sized .*lacks 'intermediate_size'.*pass a number instead"):
        run(build_config(flags={**flags, "gpu_memory_utilization": "auto"}), dry_run=True, echo=lambda s: None)
    lines: list[str] = []  # a number is used unsized, as before
    info = run(build_config(flags=flags), dry_run=True, echo=lines.append)
    assert info["preflight"]["facts"]["vllm_memory"]["fraction"] == 0.5 and any("vLLM memory: not sized" in ln for ln in lines)


def test_auto_fraction_without_a_vllm_engine_changes_nothing(plugins_registered, tiny_model, tmp_path):
    from grpo_core.train import run

    # on CPU there is no engine to size: auto is left as it is and no backend reads it
    flags = {**RUN_FLAGS, "model": tiny_model, "output_dir": str(tmp_path), "max_steps": 1, "gpu_memory_utilization": "auto"}
    info = run(build_config(flags=flags), echo=lambda s: None)
    assert info["status"] == "finished" and "vllm_memory" not in info["preflight"]["facts"]
    assert info["config"]["gpu_memory_utilization"] == "auto" and "vllm_gpu_memory_utilization" not in info["grpo_config"]


def test_an_unresolved_auto_fraction_reaches_no_engine():
    from grpo_core.train.backends import engine_fraction

    auto = build_config(sets=["gpu_memory_utilization=auto"])
    assert engine_fraction(build_config(), in_process=True) == 0.5
    assert engine_fraction(auto, in_process=False) is None  # trl server mode, Unsloth without fast_inference
    with pytest.raises(ConfigError, match="sized by pre-flight before the model loads.*pass a number"):
        engine_fraction(auto, in_process=True)


def test_trace_step_profiles_one_step_and_writes_its_summary(plugins_registered, tiny_model, tmp_path, capsys):
    from grpo_core.train import run

    flags = {**RUN_FLAGS, "model": tiny_model, "output_dir": str(tmp_path), "max_steps": 2, "trace_step": 2}
    info = run(build_config(flags=flags), echo=print)
    assert info["status"] == "finished"
    trace = json.loads((tmp_path / "trace-step-2.json").read_text())
    assert trace["step"] == 2 and trace["ranked_by"] == "self_cpu_ms" and trace["wall_ms"] > 0
    names = [r["name"] for r in trace["top"]]
    assert any(n.startswith("aten::") for n in names)  # the model's own operations, not just Python
    assert trace["top"][0]["self_cpu_ms"] >= trace["top"][-1]["self_cpu_ms"]
    assert "trace of step 2:" in capsys.readouterr().out
    assert not (tmp_path / "trace-step-1.json").exists()


class LengthsDataset(toy_plugin.ToyDataset):
    """Sums whose questions grow with a padding phrase, lengths in a scrambled order."""

    name = "lengths"

    def rows(self, split, **options):
        for i in range(16):
            words = "very " * ((i * 5) % 16)
            yield {"question": f"What is a {words}small sum, {i} + 1?", "answer": str(i + 1), "id": f"{split}-{i}", "solution": toy_plugin.format_xml(f"{i} + 1", i + 1)}


class LengthsPlugin:
    __name__ = "lengths_plugin"

    @hookimpl
    def register_datasets(self, register):
        register(LengthsDataset())


@pytest.mark.parametrize("on", [True, False])
def test_longest_first_puts_the_longest_prompts_in_the_first_round(grpo_register, tiny_model, tmp_path, monkeypatch, on):
    import grpo_core.train.trl_glue as glue
    from grpo_core.train import run

    seen: list[list[str]] = []
    real_make = glue.EngineRewardFuncs._make

    def make(self, index, name):
        reward = real_make(self, index, name)

        def recording(prompts=None, completions=None, **kwargs):
            if index == 0:
                seen.append([p[-1]["content"] for p in prompts])
            return reward(prompts=prompts, completions=completions, **kwargs)

        recording.__name__ = name
        return recording

    monkeypatch.setattr(glue.EngineRewardFuncs, "_make", make)
    grpo_register(LengthsPlugin(), name="lengths_plugin")
    lines: list[str] = []
    flags = {**RUN_FLAGS, "dataset": "lengths:train", "plugins": "short_reward", "model": tiny_model, "output_dir": str(tmp_path), "max_steps": 1, "longest_first": on}
    info = run(build_config(flags=flags), echo=lines.append)
    assert info["status"] == "finished" and info["global_step"] == 1
    questions = [row["question"] for row in LengthsDataset().rows("train")]
    longest = sorted(questions, key=len)[-2:]  # 8 completions / 4 generations: 2 prompts a round
    first_round = seen[0]
    assert len(first_round) == 8 and all(first_round.count(q) == 4 for q in set(first_round))
    assert (sorted(set(first_round)) == sorted(longest)) is on
    assert any(line.startswith("longest_first: the first generation round holds the 2 longest prompts") for line in lines) is on


def capped(completions, cap=3, **kwargs):
    return [min(len(toy_plugin.completion_text(c)), cap) / 10 for c in completions]


class SizedToy(toy_plugin.ToyDataset):
    """The toy sums, as many rows as the ``count`` option says."""

    name = "sized_toy"

    def rows(self, split, count="32"):
        yield from list(super().rows(split))[: int(count)]


class OptionsPlugin:
    __name__ = "optioned"

    @hookimpl
    def register_rewards(self, register):
        register(capped, options={"cap": 3})

    @hookimpl
    def register_datasets(self, register):
        register(SizedToy())


def test_reward_and_dataset_options_reach_the_run_and_run_json(grpo_register, tiny_model, tmp_path):
    from grpo_core.train import run

    grpo_register(OptionsPlugin(), name="optioned")
    flags = {**RUN_FLAGS, "model": tiny_model, "output_dir": str(tmp_path), "dataset": "sized_toy:train", "plugins": "capped,xml",
             "reward_options": {"capped": {"cap": "7"}}, "dataset_options": {"count": "12"}}
    lines: list[str] = []
    info = run(build_config(flags=flags), dry_run=True, echo=lines.append)
    assert info["dataset"]["rows"] == 12
    assert [r["options"] for r in info["rewards"]] == [{"cap": 7}, {}]
    assert info["config"]["reward_options"] == {"capped": {"cap": "7"}} and info["config"]["dataset_options"] == {"count": "12"}
    assert "capped×1 (optioned (in-process); cap=7)" in "\n".join(lines)
    with pytest.raises(PreflightError, match=r"dataset 'sized_toy' takes no option 'size'; its options: count"):
        run(build_config(flags={**flags, "dataset_options": {"size": "3"}}), dry_run=True, echo=lambda s: None)
