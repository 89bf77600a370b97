from __future__ import annotations

import json
import subprocess
import sys

import grpo_core
from grpo_rewards_code import rewards


def test_entry_point_registers_everything_with_provenance():
    regs = {"verifiers": grpo_core.get_verifiers(), "rewards": grpo_core.get_rewards(), "datasets": grpo_core.get_datasets()}
    want = {"verifiers": {"python_tests"}, "rewards": {"code_tests", "code_format"}, "datasets": {"humaneval", "mbpp", "tiny_functions"}}
    for kind, names in want.items():
        for n in names:
            item = regs[kind][n]
            assert item.provenance.distribution == "grpo-rewards-code", (kind, n)
            assert item.provenance.version == "0.1.0"


def test_code_tests_declares_its_options_with_the_function_defaults():
    spec = grpo_core.get_reward("code_tests")
    declared = getattr(spec, "options", None) or spec.extra.get("options")
    assert declared == rewards.CODE_TESTS_OPTIONS
    import inspect

    params = inspect.signature(rewards.code_tests).parameters
    assert {k: params[k].default for k in declared} == declared
    assert not spec.cpu_bound and spec.timeout >= declared["budget"] + declared["timeout"]


def test_import_is_light_and_starts_no_sandbox():
    code = (
        "import sys, json; import grpo_rewards_code.plugin; import grpo_core;"
        "grpo_core.get_verifiers(); grpo_core.get_rewards(); grpo_core.get_datasets();"
        "from grpo_rewards_code import sandbox;"
        "print(json.dumps([[m for m in ('torch','datasets','transformers') if m in sys.modules], sandbox._chosen]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [[], None]
    assert "sandbox isolation" not in out.stderr


def test_isolation_is_announced_once_on_first_use():
    code = "from grpo_rewards_code import sandbox; sandbox.execute('x = 1'); sandbox.execute('x = 2'); print(sandbox.isolation())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    layer = out.stdout.strip()
    assert layer in ("bwrap", "namespaces", "userns", "rlimits")
    lines = [ln for ln in out.stderr.splitlines() if ln.startswith("grpo-rewards-code:")]
    assert len(lines) == 1, out.stderr
    assert (f"sandbox isolation: {layer}" in lines[0]) or (layer == "rlimits" and "WARNING" in lines[0])


def test_forced_rlimits_is_loud():
    env = {"GRPO_CODE_SANDBOX": "rlimits", "PATH": "/usr/bin:/bin"}
    code = "from grpo_rewards_code import sandbox; sandbox.execute('x = 1')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    assert "WARNING: code runs with rlimits only" in out.stderr and "network" in out.stderr


def test_unknown_isolation_names_the_valid_ones():
    env = {"GRPO_CODE_SANDBOX": "docker", "PATH": "/usr/bin:/bin"}
    code = "from grpo_rewards_code import sandbox; sandbox.execute('x = 1')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode != 0
    assert "bwrap, namespaces, userns, rlimits" in out.stderr


def test_sandbox_benchmark_runs_on_a_small_sample(tmp_path):
    """benchmarks/code_sandbox.py imports what it needs and writes every part (as docs/benchmarks.md shows it)."""
    from pathlib import Path

    script = Path(__file__).resolve().parents[3] / "benchmarks" / "code_sandbox.py"
    out = tmp_path / "code_sandbox.json"
    res = subprocess.run([sys.executable, str(script), "--n", "3", "--reps", "1", "--layers", "rlimits", "--out", str(out)],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    data = json.loads(out.read_text())
    methods = {(r["workload"], r["method"]) for r in data["throughput"]}
    assert ("mbpp", "sandbox_pool[rlimits]") in methods and ("trivial", "naive_serial") in methods
    assert all(r["passed"] == r["n"] == 3 and r["cpu_ms_per_exec"] > 0 for r in data["throughput"])
    assert data["reward_stage"]["completions"] == 64 and data["reward_stage"]["code_tests_mean"] == 1.0
    assert 0 < data["reward_stage"]["share_of_step"] < 1
