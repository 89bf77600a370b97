"""The docs cannot drift from the code: hooks, the tutorial, the CLI reference, the contract."""

from __future__ import annotations

import importlib.util
import re
import runpy
import subprocess
import sys
import types
from pathlib import Path

import click
import click.testing
import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
HOOKS_MD = DOCS / "plugins" / "hooks.md"


def headings(text: str, level: str = "##") -> list[str]:
    return [ln[len(level) + 1 :].strip() for ln in text.splitlines() if ln.startswith(level + " ")]


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, re.S)


def test_every_hook_is_documented_with_its_exact_signature():
    from grpo_core.plugins import pm

    documented = set(headings(HOOKS_MD.read_text()))
    for name in [n for n in dir(pm.hook) if not n.startswith("_")]:
        caller = getattr(pm.hook, name)
        if caller.spec is None:
            continue
        signature = f"{name}({', '.join(caller.spec.argnames)})"
        assert signature in documented, f"docs/plugins/hooks.md needs a section headed '## {signature}'"
        documented.discard(signature)
    assert not documented, f"docs/plugins/hooks.md documents hooks that do not exist: {sorted(documented)}"


def test_hook_examples_work(grpo_register):
    """Each example in hooks.md is a working plugin."""
    from grpo_core import get_dataset, get_reward, get_verifier

    blocks = python_blocks(HOOKS_MD.read_text())
    examples = [b for b in blocks if "@hookimpl" in b and "..." not in b]
    assert len(examples) == 4
    group = click.Group("grpo-core")
    for i, code in enumerate(examples):
        module = types.ModuleType(f"hooks_md_example_{i}")
        exec(compile(code, f"docs/plugins/hooks.md[{i}]", "exec"), module.__dict__)
        if hasattr(module, "register_commands"):
            module.register_commands(cli=group)
        else:
            grpo_register(module, name=f"hooks-md-{i}")
    assert get_reward("has_answer_tag")(["<answer>1</answer>", "1"]) == [0.1, 0.0]
    assert get_verifier("case_insensitive").check(gold="Paris", response="<answer>PARIS</answer>").equal
    assert get_dataset("doubles").load("train", limit=3)["answer"] == ["2", "4", "6"]
    assert click.testing.CliRunner().invoke(group, ["hello-plugin", "you"]).output == "hello you\n"


def test_tutorial_code_is_the_tested_code():
    mod = runpy.run_path(str(ROOT / "scripts" / "sync_doc_blocks.py"), run_name="sync_doc_blocks")
    problems = [p for d in mod["DOCS"] for p in mod["sync"](ROOT / d, True)]
    assert not problems, "\n".join(problems) + "\nrun: python scripts/sync_doc_blocks.py"
    tutorial = (DOCS / "plugins" / "tutorial.md").read_text()
    assert len(re.findall(r"<!-- block: \S+ from tests/test_tutorial.py -->", tutorial)) == 5


def test_cli_reference_is_current():
    res = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_cli_docs.py"), "--check"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_config_reference_lists_every_setting_and_preset():
    import dataclasses

    from grpo_core.config.settings import RunConfig
    from grpo_core.config.presets import PRESETS

    text = (DOCS / "config.md").read_text()
    for f in dataclasses.fields(RunConfig):
        assert f"| `{f.name}` |" in text, f"docs/config.md lacks {f.name}; run: python scripts/gen_cli_docs.py"
    for name in PRESETS:
        assert f"### `{name}`" in text


def test_cli_reference_covers_every_command():
    from grpo_core.cli import cli, register_commands

    register_commands()
    text = (DOCS / "cli.md").read_text()
    core = [n for n, c in cli.commands.items() if c.callback.__module__.startswith("grpo_core.")]
    for name in core:
        assert f"## grpo-core {name}\n" in text, f"docs/cli.md lacks {name}; run: python scripts/gen_cli_docs.py"


def test_reward_contract_lists_what_trl_passes_and_every_metric_key():
    contract = (DOCS / "plugins" / "reward-contract.md").read_text()
    # read TRL's source without importing it
    source = Path(importlib.util.find_spec("trl.trainer.grpo_trainer").origin).read_text()
    body = source[source.index("def _calculate_rewards") :]
    body = body[: body.index("\n    def ", 10)]
    passed = set(re.findall(r'\breward_kwargs\["(\w+)"\] = ', body)) | set(re.findall(r"(\w+)=\1(?:_list)?,", body))
    assert {"trainer_state", "log_extra", "log_metric", "prompts", "completions", "completion_ids"} <= passed
    for kwarg in passed:
        assert f"| `{kwarg}` |" in contract, f"reward-contract.md does not describe the {kwarg!r} argument TRL passes"

    from grpo_core.rewards.engine import RewardEngine
    from grpo_core.plugins.registry import Provenance, make_reward_spec

    spec = make_reward_spec(lambda completions, **kw: [1.0] * len(completions), "NAME", Provenance("t", None, None), {})
    engine = RewardEngine([(spec, 1.0)])
    engine.score(["a"])
    for key in engine.pop_metrics():
        assert f"`{key}`" in contract, f"reward-contract.md does not list the metric key {key!r}"
    for key in ("rewards/NAME/mean", "rewards/NAME/std"):
        assert f"`{key}`" in contract


@pytest.mark.parametrize("doc", sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")))
def test_relative_links_resolve(doc):
    path = DOCS / doc
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", path.read_text()):
        assert (path.parent / target).exists(), f"{doc} links to {target}, which does not exist"


def test_author_kit_page_documents_every_kit_name_and_its_example_runs():
    import grpo_core
    import grpo_core.kit

    page = (DOCS / "plugins" / "author-kit.md").read_text()
    table = set(re.findall(r"^\| `(\w+)` \|", page, re.M))
    assert table == set(grpo_core.kit.__all__), f"author-kit.md's table and grpo_core.kit.__all__ differ: {table ^ set(grpo_core.kit.__all__)}"
    for name in grpo_core.kit.__all__:
        assert getattr(grpo_core.kit, name).__doc__ or not callable(getattr(grpo_core.kit, name)), f"grpo_core.kit.{name} has no docstring"
    for name in re.findall(r"^- `grpo_core`: (.*?);$", page, re.M | re.S)[0].replace("\n", " ").split("`")[1::2]:
        assert hasattr(grpo_core, name), f"author-kit.md says grpo_core exports {name!r}"
    for block in python_blocks(page):
        exec(compile(block, "author-kit.md", "exec"), {})
