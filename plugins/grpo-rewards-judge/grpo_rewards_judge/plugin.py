"""The grpo-core entry point (``[project.entry-points.grpo_core] judge``).

Imports nothing heavy: the ``openai`` client (no torch) and the standard library.
Each reward declares its options from its keyword-only parameters, so the
declared defaults and the function's defaults are one list.
"""

from __future__ import annotations

from grpo_core import hookimpl

from .rewards import declared_options, judge_pairwise, judge_score


@hookimpl
def register_rewards(register):
    register(judge_score, name="judge_score", default_weight=1.0, options=declared_options(judge_score))
    register(judge_pairwise, name="judge_pairwise", requires=("answer",), default_weight=1.0,
             options=declared_options(judge_pairwise))
