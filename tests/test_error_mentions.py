"""Every command (`grpo-core CMD`) and flag (`--flag`) an error message names exists.

The messages are the strings inside ``raise`` statements, ``*Error(...)`` calls and variables named for a
message (msg, hint, fix, ...) in grpo_core/; UnknownNameError's pointer is checked for every kind it is
raised with.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import click
import pytest

import grpo_core
from grpo_core.cli.main import cli
from grpo_core.errors import UnknownNameError

PACKAGE = Path(grpo_core.__file__).parent
MESSAGE_NAMES = {"msg", "message", "hint", "fix", "why", "advice", "note"}
COMMAND = re.compile(r"grpo-core ([a-z][a-z-]*)")
FLAG = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*)")
#: "grpo-core WORD" in prose, not a command ("a grpo-core setting", "reinstall grpo-core or ..."); a new one fails
#: the test until it is added here or written as a command that exists
PROSE = {"setting", "hook", "keeps", "or"}
#: flags of other programs that messages name on purpose
FOREIGN_FLAGS = {"--porcelain", "--upgrade", "--index-url", "--no-deps", "--user", "--break-system-packages", "--force-reinstall"}


def _strings(node: ast.AST) -> list[str]:
    """The literal text of every string under ``node`` (f-strings: their literal parts, joined)."""
    out = []
    for sub in ast.walk(node):
        if isinstance(sub, ast.JoinedStr):
            out.append("{}".join(v.value for v in sub.values if isinstance(v, ast.Constant) and isinstance(v.value, str)))
        elif isinstance(sub, ast.Constant) and isinstance(sub.value, str):
            out.append(sub.value)
    return out


def error_messages() -> list[tuple[str, str]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            parts: list[ast.AST] = []
            if isinstance(node, ast.Raise) and node.exc is not None:
                parts = [node.exc]
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id.endswith(("Error", "Exception")):
                parts = node.args
            elif isinstance(node, (ast.Assign, ast.AugAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if any(isinstance(t, ast.Name) and t.id in MESSAGE_NAMES for t in targets):
                    parts = [node.value]
            for part in parts:
                found += [(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}", s) for s in _strings(part)]
    return found


def _flags_of(command: click.Command) -> set[str]:
    return {opt for param in command.params for opt in (*param.opts, *param.secondary_opts) if opt.startswith("--")}


def test_the_scan_finds_messages():
    messages = [text for _, text in error_messages()]
    assert any("--resume" in m for m in messages) and any("grpo-core score" in m for m in messages)


def test_commands_and_flags_named_in_error_messages_exist():
    commands = set(cli.commands)
    flags = {"--help", "--version"} | set().union(*(_flags_of(c) for c in cli.commands.values()))
    wrong = []
    for where, text in error_messages():
        for cmd in COMMAND.findall(text):
            if cmd not in commands | PROSE:
                wrong.append(f"{where}: `grpo-core {cmd}` in {text[:80]!r}")
        for flag in FLAG.findall(text):
            if flag not in flags | FOREIGN_FLAGS:
                wrong.append(f"{where}: {flag} in {text[:80]!r}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("kind", ["reward", "verifier", "dataset", "preset", "chat template", "backend", "engine"])
def test_unknown_name_errors_point_at_commands_that_exist(kind):
    for cmd in COMMAND.findall(str(UnknownNameError(kind, "nope", ["a"]))):
        assert cmd in cli.commands, f"UnknownNameError({kind!r}) names `grpo-core {cmd}`"


def test_presets_command_lists_the_presets():
    from click.testing import CliRunner

    from grpo_core.config.presets import PRESETS

    out = CliRunner().invoke(cli, ["presets"]).output
    assert [line.split(":")[0].split(" ")[0] for line in out.splitlines()] == list(PRESETS)
    assert '"dataset"' in CliRunner().invoke(cli, ["presets", "tiny-cpu"]).output
