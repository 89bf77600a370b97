"""The GPU benchmark's report path runs on CPU against the committed raw results."""

import importlib.util
from argparse import Namespace
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_grpo_step_report_reads_committed_results(tmp_path, capsys):
    mod = _grpo_step()
    files = sorted(str(p) for p in (ROOT / "benchmarks" / "results").glob("grpo_step-*.json"))
    assert files, "no committed grpo_step results"
    png = tmp_path / "chart.png"
    mod.report(files, png=png)
    out = capsys.readouterr().out
    assert png.stat().st_size > 1000
    rows = [ln for ln in out.splitlines() if ln.startswith("| qwen2.5")]
    assert any("| grpo_core |" in r for r in rows) and any("| trl_vllm |" in r for r in rows)


def _grpo_step():
    spec = importlib.util.spec_from_file_location("grpo_step", ROOT / "benchmarks" / "grpo_step.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_grpo_step_repeats_rotate_the_path_order():
    # a path run first in every pass would carry any warm-up drift alone (session 3 saw raw TRL,
    # run first, ~20% slower than grpo-core doing the same work with its levers off)
    mod = _grpo_step()
    paths = mod.parse_paths("a,b[x=1],c")
    order = [(rep, p) for rep, p, _ in mod.rotations(paths, 3)]
    assert order == [(0, "a"), (0, "b"), (0, "c"), (1, "b"), (1, "c"), (1, "a"), (2, "c"), (2, "a"), (2, "b")]
    assert [p for _, p, _ in mod.rotations(paths, 1)] == ["a", "b", "c"]
    assert mod.row_name({"path": "b", "settings": {"x": 1}, "repeat": 1}) == "b[x=1] #2"
    assert mod.row_name({"path": "b", "settings": {"x": 1}, "repeat": 0}) == "b[x=1]"
    r = {"path": "grpo_core_trl", "settings": {"steps_per_generation": 4, "trim_padding": False, "plugins": "xml,int,correctness"}}
    assert mod.chart_name(r) == "grpo_core_trl[spg=4, trim=off, 3 rewards]"



def test_grpo_step_chart_labels_name_memory_and_failed_starts():
    mod = _grpo_step()
    levers_off = {"path": "grpo_core_trl", "settings": {"steps_per_generation": 8, "fast_vllm_sync": False, "trim_padding": False,
                                                        "group_steps": False, "plugins": "xml,int"}}
    assert mod.chart_name(levers_off) == "grpo_core_trl[levers off, spg=8, 2 rewards]"
    ok = {"path": "trl_vllm", "settings": {}, "mean_step_s": 1.2404, "peak_allocated_gib": 16.71, "vllm_fraction": 0.06}
    assert mod.bar_note(ok) == "1.24 s, 16.7 GiB @ 0.06"
    failed = {"path": "trl_vllm", "settings": {}, "failed": True, "vllm_fraction": 0.05}
    assert mod.bar_note(failed) == "did not start at fraction 0.05"
    # a miss of the fraction search is hidden once the same path ran at a larger fraction; a path that never ran is shown
    assert mod._tried_elsewhere(failed, [failed, ok]) and not mod._tried_elsewhere(failed, [failed])

def test_verifier_benchmark_runs_on_a_small_sample(tmp_path):
    """The script imports what it needs from the plugin and writes every section (it once broke silently)."""
    import json
    import subprocess
    import sys

    out = tmp_path / "verifiers.json"
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "verifiers.py"), "--limit", "130", "--out", str(out)],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    data = json.loads(out.read_text())
    for part in ("gsm8k", "math500"):
        assert {"ours", "math_verify", "reward_batch_64", "agreement"} <= set(data[part])
        assert {"p50_ms", "p99_ms", "mean_ms"} <= set(data[part]["ours"]) and data[part]["ours"]["items"] == 130
    table = data["accuracy"]["table"]
    assert table["all"]["ours"]["cases"] == table["all"]["math_verify"]["cases"] == 130
    assert {"accuracy", "false_positives", "false_negatives", "max_call_s"} <= set(table["all"]["ours"])


def test_the_labelled_verifier_cases_cite_their_sources():
    """benchmarks/data/verifier_cases.jsonl: every case sourced and categorised, at least a third unequal."""
    import json

    cases = [json.loads(line) for line in (ROOT / "benchmarks" / "data" / "verifier_cases.jsonl").read_text().splitlines()]
    assert len(cases) >= 300 and len({c["id"] for c in cases}) == len(cases)
    for c in cases:
        assert c["source"] and c["category"] and c["verifier"] in {"gsm8k", "math", "aime", "mcq"}, c["id"]
        assert c["kind"] in {"response", "answer"} and isinstance(c["equal"], bool), c["id"]
    assert sum(not c["equal"] for c in cases) >= len(cases) / 3
    assert {"grader_tests", "answer_keys", "whole_responses", "multilingual", "equivalences", "mcq"} <= {c["category"] for c in cases}


def test_grpo_step_skips_fractions_that_cannot_hold_the_weights(tmp_path, monkeypatch, capsys):
    """Each try of a vLLM path loads a model; a fraction below the weights is skipped without one."""
    import json
    import sys

    mod = _grpo_step()
    monkeypatch.setattr(mod, "gpu_total_bytes", lambda: 100 * 2**20)  # a 100 MiB "GPU"
    monkeypatch.setattr(mod.subprocess, "run", lambda *a, **k: (_ for _ in ()).throw(AssertionError("no worker may start")))
    out = tmp_path / "r.json"
    monkeypatch.setattr(sys, "argv", ["grpo_step.py", "--shape", "small", "--model-dir", str(tmp_path / "models"), "--tokenizer", "bytes",
                                      "--paths", "trl_vllm", "--fractions", "0.01,0.02", "--out", str(out)])
    mod.main()
    rows = json.loads(out.read_text())["results"]
    assert [r["vllm_fraction"] for r in rows] == [0.01, 0.02] and all(r["failed"] for r in rows)
    assert "cannot hold the weights" in capsys.readouterr().out


def test_grpo_step_reports_each_row_against_raw_trl_at_the_same_steps_per_generation():
    mod = _grpo_step()
    results = [
        {"path": "trl_vllm", "settings": {"steps_per_generation": 8}, "mean_step_s": 0.6, "repeat": 0, "phases_s": {"train_s": 0.4}},
        {"path": "grpo_core_trl", "settings": {"steps_per_generation": 8, "optim": "adamw_torch_fused"}, "mean_step_s": 0.3, "repeat": 0},
        {"path": "trl_vllm", "settings": {}, "mean_step_s": 1.2, "repeat": 0},
        {"path": "grpo_core_trl", "settings": {"skip_old_logps_pass": True}, "mean_step_s": 0.8, "repeat": 0},
        {"path": "grpo_core", "settings": {"steps_per_generation": 4}, "mean_step_s": 0.9, "repeat": 0},
        {"path": "grpo_core", "settings": {}, "failed": True, "repeat": 0},
    ]
    lines = mod.speedups(results)
    assert len(lines) == 5
    assert "2.00x raw trl_vllm at spg 8" in lines[1] and "1.50x raw trl_vllm at spg 1" in lines[3]
    assert "no raw trl_vllm row at spg 4" in lines[4]


def test_a_raw_path_setting_overrides_the_reference_config(tmp_path):
    mod = _grpo_step()
    a = Namespace(optim="adamw_8bit", prompts=1, max_tokens=16, steps=2)
    args = mod._grpo_args(a, str(tmp_path), optim="adamw_torch", gradient_checkpointing=False)
    assert (args.optim, args.gradient_checkpointing, args.max_grad_norm) == ("adamw_torch", False, 0.1)


def test_train_pass_variants_name_grpo_config_fields():
    spec = importlib.util.spec_from_file_location("train_pass", ROOT / "benchmarks" / "train_pass.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.parse_variant("ref") == {}
    assert mod.parse_variant("recompute=false,optim=adamw_torch_fused,liger=true") == {
        "gradient_checkpointing": False, "optim": "adamw_torch_fused", "use_liger_kernel": True}
    with pytest.raises(SystemExit, match="keys recompute, optim, liger"):
        mod.parse_variant("checkpointing=false")
