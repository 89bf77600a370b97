"""`grpo-core new-plugin`: the package it writes installs, passes its own tests and is listed."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest

from grpo_core.errors import GrpoCoreError
from grpo_core.scaffold import Names, scaffold


def _run(*args, cwd=None, timeout=180):
    env = {k: v for k, v in os.environ.items() if k not in ("GRPO_CORE_LOAD_PLUGINS", "PYTEST_ADDOPTS")}
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=timeout)


def test_new_plugin_installs_passes_its_tests_and_is_listed(tmp_path):
    from click.testing import CliRunner

    from grpo_core.cli import cli, register_commands

    register_commands()
    tag = uuid.uuid4().hex[:6]
    made = {kind: f"kit{kind[0]}{tag}" for kind in ("reward", "verifier", "dataset")}
    for kind, name in made.items():
        res = CliRunner().invoke(cli, ["new-plugin", name, "--kind", kind, "--dir", str(tmp_path)])
        assert res.exit_code == 0, res.output
        assert f"grpo-{kind}s-{name}" in res.output and "pip install -e ." in res.output
    dists = [f"grpo-{kind}s-{name}" for kind, name in made.items()]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(dists)
    try:
        editable = [a for d in dists for a in ("-e", str(tmp_path / d))]
        res = _run("-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", *editable)
        assert res.returncode == 0, res.stdout + res.stderr
        res = _run("-m", "pytest", "-q", "-p", "no:cacheprovider", *dists, cwd=tmp_path)
        assert res.returncode == 0, res.stdout + res.stderr
        assert "18 passed" in res.stdout, res.stdout
        listing = _run("-m", "grpo_core", "rewards")
        assert listing.returncode == 0, listing.stderr
        (line,) = [ln for ln in listing.stdout.splitlines() if ln.split()[:1] == [made["reward"]]]
        assert f"grpo-rewards-{made['reward']} 0.1.0" in line
        others = _run("-c", "import grpo_core as g; print(sorted(g.get_verifiers()), sorted(g.get_datasets()))")
        assert made["verifier"] in others.stdout and made["dataset"] in others.stdout, others.stdout + others.stderr
    finally:
        res = _run("-m", "pip", "uninstall", "-q", "-y", *dists)
    assert res.returncode == 0, res.stderr


def test_scaffold_files_and_names(tmp_path):
    s = scaffold("brevity-bonus", kind="reward", directory=tmp_path)
    assert (s.names.distribution, s.names.module, s.names.name) == ("grpo-rewards-brevity-bonus", "grpo_rewards_brevity_bonus", "brevity_bonus")
    assert sorted(str(p.relative_to(s.root)) for p in s.files) == [
        "README.md", "grpo_rewards_brevity_bonus.py", "pyproject.toml", "tests/test_grpo_rewards_brevity_bonus.py"]
    pyproject = (s.root / "pyproject.toml").read_text()
    assert '[project.entry-points.grpo_core]\nbrevity_bonus = "grpo_rewards_brevity_bonus"' in pyproject
    module = (s.root / "grpo_rewards_brevity_bonus.py").read_text()
    assert "def brevity_bonus(completions: list[Any], answer: list[str] | None = None, **kwargs: Any) -> list[float | None]:" in module
    assert "{{" not in module + pyproject + (s.root / "README.md").read_text()
    with pytest.raises(GrpoCoreError, match="already exists"):
        scaffold("brevity-bonus", kind="reward", directory=tmp_path)


@pytest.mark.parametrize(
    "name, kind, expected",
    [
        ("sympy", "verifier", ("grpo-verifiers-sympy", "grpo_verifiers_sympy", "sympy")),
        ("grpo-datasets-gsm8k", "dataset", ("grpo-datasets-gsm8k", "grpo_datasets_gsm8k", "gsm8k")),
        ("grpo-math", "reward", ("grpo-math", "grpo_math", "math")),
        ("My_Reward", "reward", ("grpo-rewards-my-reward", "grpo_rewards_my_reward", "my_reward")),
    ],
)
def test_names(name, kind, expected):
    n = Names.from_name(name, kind)
    assert (n.distribution, n.module, n.name) == expected


@pytest.mark.parametrize("bad", ["", "9lives", "a b", "grpo-rewards-", "x/y"])
def test_bad_names_are_refused(bad):
    with pytest.raises(GrpoCoreError, match="not usable|nothing after the prefix"):
        Names.from_name(bad, "reward")
