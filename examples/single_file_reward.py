"""A reward in one file, used without packaging it.

Load it by path; nothing to install:

    grpo-core score --plugin-file examples/single_file_reward.py \
        --plugins xml,concise --dataset arithmetic:test --gold-format --limit 20

    GRPO_CORE_PLUGIN_FILES=examples/single_file_reward.py grpo-core rewards

The file is imported as a module named after its stem (``single_file_reward``)
with its folder appended to ``sys.path``, so its functions pickle by
reference and also work as ``cpu_bound`` rewards. When the reward has proved
itself, ``grpo-core new-plugin concise`` turns it into a package.
"""

from __future__ import annotations

from typing import Any

from grpo_core import hookimpl
from grpo_core.kit import completion_text, last_tag_block

#: reasoning longer than this many words earns nothing
MAX_WORDS = 60


def concise(completions: list[Any], **kwargs: Any) -> list[float | None]:
    """Up to 0.5 for short reasoning: 0.5 at one word, falling to 0 at MAX_WORDS words.

    None when the reply has no reasoning block (the format rewards judge that).

    >>> concise(["<reasoning>6 * 7 = 42</reasoning><answer>42</answer>", "42"])
    [0.4661016949152542, None]
    """
    scores: list[float | None] = []
    for completion in completions:
        reasoning = last_tag_block(completion_text(completion)[-20_000:], "reasoning")
        if reasoning is None:
            scores.append(None)
            continue
        words = len(reasoning.split())
        scores.append(max(0.0, 0.5 * (MAX_WORDS - words) / (MAX_WORDS - 1)) if words else 0.0)
    return scores


@hookimpl
def register_rewards(register):
    register(concise, default_weight=0.5, timeout=2.0)
