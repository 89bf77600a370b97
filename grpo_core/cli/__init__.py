"""The ``grpo-core`` command line: :mod:`~grpo_core.cli.group` (the group and its error handler),
one module per command, and :mod:`~grpo_core.cli.main` (adds them, then the plugins' commands)."""

from grpo_core.cli.main import cli, main, register_commands

__all__ = ["cli", "main", "register_commands"]
