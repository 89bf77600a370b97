"""The grpo-core entry point (``[project.entry-points.grpo_core] math``).

Imports nothing heavy: no torch, sympy, Math-Verify or datasets at import
time. The registered objects import those lazily when they are used.
"""

from __future__ import annotations

from grpo_core import hookimpl

from . import rewards
from .datasets import AimeAdapter, Gsm8kAdapter, Math500Adapter
from .choices import McqVerifier
from .verifiers import AimeVerifier, Gsm8kVerifier, MathVerifier


@hookimpl
def register_verifiers(register):
    register(Gsm8kVerifier())
    register(AimeVerifier())
    register(MathVerifier())
    register(McqVerifier())


@hookimpl
def register_rewards(register):
    register(
        rewards.correctness,
        name="correctness",
        requires=("answer",),
        default_weight=1.0,
        cpu_bound=True,
        options={"mode": "strict"},
    )
    register(
        rewards.correctness_flexible,
        name="correctness_flexible",
        requires=("answer",),
        default_weight=1.0,
        cpu_bound=True,
    )
    register(rewards.int_answer, name="int", requires=("answer",), default_weight=1.0, cpu_bound=True)
    register(
        rewards.graded_correctness,
        name="graded_correctness",
        requires=("answer",),
        default_weight=1.0,
        cpu_bound=True,
    )


@hookimpl
def register_datasets(register):
    register(Gsm8kAdapter())
    register(AimeAdapter())
    register(Math500Adapter())
