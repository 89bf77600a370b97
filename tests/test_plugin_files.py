"""Single-file plugins: GRPO_CORE_PLUGIN_FILES and load_plugin_file."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from grpo_core.errors import GrpoCoreError
from grpo_core.plugins import FILES_ENV, load_plugin_file, pm

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "single_file_reward.py"

REWARD_FILE = '''
from grpo_core import hookimpl


def {name}(completions, **kwargs):
    return [{value}] * len(completions)


@hookimpl
def register_rewards(register):
    register({name}, cpu_bound={cpu_bound})
'''


def write_plugin(folder: Path, stem: str, name: str, value: float = 1.0, cpu_bound: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}.py"
    path.write_text(REWARD_FILE.format(name=name, value=value, cpu_bound=cpu_bound))
    return path


@pytest.fixture
def forget_modules():
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name.startswith("pf_"):
            del sys.modules[name]


def test_example_file_registers_its_reward_with_file_provenance(plugin_state):
    from grpo_core import get_reward

    assert load_plugin_file(EXAMPLE) == "single_file_reward"
    spec = get_reward("concise")
    assert spec.provenance.describe() == f"single_file_reward (file {EXAMPLE})"
    assert (spec.default_weight, spec.timeout) == (0.5, 2.0)
    assert load_plugin_file(str(EXAMPLE)) == "single_file_reward"  # loading twice is a no-op


def test_env_var_loads_files_and_cpu_bound_rewards_run_in_workers(plugin_state, tmp_path, monkeypatch, forget_modules):
    from grpo_core.rewards.engine import RewardEngine

    a = write_plugin(tmp_path / "a", "pf_alpha", "alpha", 0.25, cpu_bound=True)
    b = write_plugin(tmp_path / "b", "pf_beta", "beta", 0.75)
    monkeypatch.setenv(FILES_ENV, f"{a}{__import__('os').pathsep}{b}")
    regs = plugin_state("")  # GRPO_CORE_LOAD_PLUGINS='' does not stop explicit files
    assert {"alpha", "beta"} <= set(regs.rewards.names())
    result = RewardEngine.from_selection("alpha,beta").score(["x", "y"])
    assert result.values == {"alpha": [0.25, 0.25], "beta": [0.75, 0.75]}  # alpha ran in worker processes


def test_same_stem_twice_is_refused(plugin_state, tmp_path, forget_modules):
    load_plugin_file(write_plugin(tmp_path / "one", "pf_same", "first"))
    with pytest.raises(GrpoCoreError, match=r"the name 'pf_same' is already taken by .*one/pf_same.py; rename the file"):
        load_plugin_file(write_plugin(tmp_path / "two", "pf_same", "second"))


def test_stem_of_an_existing_module_is_refused(plugin_state, tmp_path):
    with pytest.raises(GrpoCoreError, match="the module name 'json' already belongs to .*; rename the file"):
        load_plugin_file(write_plugin(tmp_path, "json", "shadow"))
    assert pm.get_plugin("json") is None and str(tmp_path) not in sys.path


@pytest.mark.parametrize(
    "filename, text, message",
    [
        ("missing.py", None, "is not an existing .py file"),
        ("pf-dash.py", "", "its stem must be a Python identifier; rename it (e.g. pf_dash.py)"),
        ("pf_broken.py", "import no_such_module_xyz\n", "failed to import: ModuleNotFoundError"),
    ],
)
def test_bad_files_are_refused_with_the_fix(plugin_state, tmp_path, forget_modules, filename, text, message):
    path = tmp_path / filename
    if text is not None:
        path.write_text(text)
    with pytest.raises(GrpoCoreError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_plugin_file(path)


def test_a_broken_file_in_the_env_var_is_reported_not_fatal(plugin_state, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(FILES_ENV, str(tmp_path / "nope.py"))
    regs = plugin_state("")
    assert "xml" in regs.rewards.names()
    assert any("is not an existing .py file" in e for e in regs.errors.values())
    assert f"{FILES_ENV}:" in capsys.readouterr().err
