"""Listing plugins and rewards never imports the ML stack.

``grpo-core plugins`` must stay fast, and Unsloth (which must be imported
before trl) must never be imported by accident. Each check runs in a fresh
interpreter and prints what ended up in ``sys.modules``. The demo plugin is
installed for these runs, so a plugin that follows the contract is covered too.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import env_with

HEAVY = ("torch", "transformers", "trl", "unsloth", "vllm", "datasets", "peft", "accelerate")

WRAPPER = """
import json, sys
{body}
print("\\n@@MODULES@@" + json.dumps(sorted(sys.modules)))
"""


def _modules_after(body: str, env: dict) -> tuple[set[str], subprocess.CompletedProcess]:
    import os

    full = {k: v for k, v in os.environ.items() if k != "GRPO_CORE_LOAD_PLUGINS"}
    full.update(env)
    res = subprocess.run([sys.executable, "-c", WRAPPER.format(body=body)], capture_output=True, text=True, env=full, timeout=60)
    assert "@@MODULES@@" in res.stdout, res.stdout + res.stderr
    return set(json.loads(res.stdout.rsplit("@@MODULES@@", 1)[1])), res


def _heavy(mods: set[str]) -> list[str]:
    return sorted(m for m in mods if m.split(".")[0] in HEAVY)


CLI_CALL = """
from grpo_core.cli import main
code = main({args!r})
print("@@EXIT@@", code)
"""


@pytest.mark.parametrize(
    "args",
    [
        ["plugins"],
        ["plugins", "--all"],
        ["rewards"],
        ["rewards", "--json"],
        ["verifiers"],
        ["datasets"],
        ["--help"],
        ["--version"],
        ["run", "--plugins", "xml:nan", "--dry-run"],  # a bad selection is refused before anything loads
        ["run", "--plugins", "no_such_reward", "--dry-run"],
    ],
    ids=lambda a: " ".join(a),
)
def test_cli_listings_import_nothing_heavy(demo_plugin_installed, args):
    mods, res = _modules_after(CLI_CALL.format(args=args), env_with(demo_plugin_installed))
    assert "@@EXIT@@" in res.stdout
    assert "grpo_core_demo_plugin" in mods  # the installed plugin really was loaded
    assert _heavy(mods) == [], f"`grpo-core {' '.join(args)}` imported {_heavy(mods)}"


def test_python_api_imports_nothing_heavy(demo_plugin_installed):
    body = """
import grpo_core
rewards = grpo_core.get_rewards()
assert "demo_reward" in rewards and "xml" in rewards, sorted(rewards)
grpo_core.get_reward("xml")(["<reasoning>a</reasoning><answer>b</answer>"])
grpo_core.get_verifier("arithmetic").check(gold="3", response="<answer>3</answer>")
grpo_core.get_dataset("arithmetic")
grpo_core.get_plugins(all=True)
grpo_core.get_verifiers(); grpo_core.get_datasets()
"""
    mods, res = _modules_after(body, env_with(demo_plugin_installed))
    assert res.returncode == 0, res.stderr
    assert _heavy(mods) == []


def test_the_check_sees_a_heavy_import(demo_plugin_installed):
    """The checker itself works: a plugin that imports a heavy module at import time is caught."""
    mods, _ = _modules_after("import grpo_core, json.decoder, datasets", env_with(demo_plugin_installed))
    assert "datasets" in _heavy(mods)


def test_console_script_importtime(demo_plugin_installed):
    """The real console entry (``python -m grpo_core``) under -X importtime."""
    res = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "grpo_core", "rewards"],
        capture_output=True,
        text=True,
        env={**env_with(demo_plugin_installed)},
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    imported = {ln.rsplit("|", 1)[-1].strip() for ln in res.stderr.splitlines() if ln.startswith("import time:")}
    # (-X importtime logs `import` statements only, not importlib.import_module, which is how
    # entry points are loaded: the plugin module itself is not listed, what it imports is.)
    assert "grpo_core.cli" in imported and "grpo_core.plugins" in imported, res.stderr[-3000:]
    assert "demo_reward" in res.stdout
    assert _heavy(imported) == []
