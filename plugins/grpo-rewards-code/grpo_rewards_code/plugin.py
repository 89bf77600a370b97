"""The grpo-core entry point (``[project.entry-points.grpo_core] code``).

Imports nothing heavy and starts nothing: the sandbox picks (and announces)
its isolation layer the first time code runs.
"""

from __future__ import annotations

from grpo_core import hookimpl

from . import rewards
from .datasets import HumanEvalAdapter, MbppAdapter, TinyFunctionsAdapter
from .verifiers import PythonTestsVerifier

#: the longest a batch of code_tests may take: its budget option plus one run's limit
CODE_TESTS_TIMEOUT = rewards.CODE_TESTS_OPTIONS["budget"] + 2 * rewards.CODE_TESTS_OPTIONS["timeout"]


@hookimpl
def register_verifiers(register):
    register(PythonTestsVerifier())


@hookimpl
def register_rewards(register):
    # Not cpu_bound: the work happens in sandboxed processes that the reward starts, bounds and
    # kills itself, many at once; in the core's worker pool they would nest inside worker processes.
    register(
        rewards.code_tests,
        name="code_tests",
        requires=("answer",),
        default_weight=1.0,
        timeout=CODE_TESTS_TIMEOUT,
        options=dict(rewards.CODE_TESTS_OPTIONS),
    )
    register(rewards.code_format, name="code_format", default_weight=0.5)


@hookimpl
def register_datasets(register):
    register(HumanEvalAdapter())
    register(MbppAdapter())
    register(TinyFunctionsAdapter())
