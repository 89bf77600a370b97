"""The grpo-core entry point (``[project.entry-points.grpo_core] judge``).

Imports nothing heavy: the ``openai`` client (no torch) and the standard library.
Each reward declares its options from its keyword-only parameters, so the
declared defaults and the function's defaults are one list.

Neither reward declares a registration ``timeout=``. grpo-core runs a sync
reward that declares one in a worker process, where the reward's
``reward_metrics`` (calls, cache hits, abstentions) would be counted and never
reach the run's logs or run.json. The judge needs no such backstop: its client
bounds every request by the ``timeout`` option, retries ``retries`` times and
then abstains (``None``), and the engine's default limit for a reward call
(``GRPO_CORE_REWARD_TIMEOUT``, 60 s) still stops a batch that overruns.
"""

from __future__ import annotations

from grpo_core import hookimpl

from .rewards import declared_options, judge_pairwise, judge_score


@hookimpl
def register_rewards(register):
    register(judge_score, name="judge_score", default_weight=1.0, options=declared_options(judge_score))
    register(judge_pairwise, name="judge_pairwise", requires=("answer",), default_weight=1.0,
             options=declared_options(judge_pairwise))
