"""Rubrics: what the judge is told, and the messages it receives.

A rubric is plain text: the criteria, addressed to the judge. It is either one
of the built-ins in :data:`RUBRICS` (by name) or a path to a text file. It may
use ``{min}`` and ``{max}``, the ends of the score range. grpo-rewards-judge adds
the reply format (JSON, one key) and builds the user message from the prompt,
the completion and, where asked, the reference answer.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grpo_core import ConfigError
from grpo_core.kit import completion_text

RUBRICS: dict[str, str] = {
    "reasoning": (
        "You grade a response to a problem that needs reasoning. Judge whether each step is correct, "
        "whether the steps lead to the final answer, and whether the final answer answers the question. "
        "Give {min} to a response that is wrong or empty and {max} to one that is correct, complete and clear."
    ),
    "correctness": (
        "You grade a response against the reference answer. Judge only whether the response's final answer "
        "means the same as the reference answer; ignore style and length. "
        "Give {min} when it differs or is missing and {max} when it is the same."
    ),
    "helpfulness": (
        "You grade how well a response serves the person who asked: it answers the question that was asked, "
        "is accurate, and is no longer than it needs to be. "
        "Give {min} to an unhelpful response and {max} to an excellent one."
    ),
    "pairwise": (
        "You compare two responses, A and B, to the same question. Decide which one answers it better: "
        "correct before incomplete, complete before partial, clear before confusing. Ignore which one comes "
        "first and how long each is. Say tie only when neither is better."
    ),
}
SCORE_FORMAT = 'Reply with only a JSON object: {"score": N}, where N is an integer from {min} to {max}.'
WINNER_FORMAT = 'Reply with only a JSON object: {"winner": "A"}, {"winner": "B"} or {"winner": "tie"}.'
MAX_FIELD_CHARS = 12000  # a judge prompt holds at most this much of each prompt, completion and reference


def rubric_text(rubric: str) -> str:
    """The text of a built-in rubric, or of a rubric file; an unknown one is an error naming both kinds."""
    if rubric in RUBRICS:
        return RUBRICS[rubric]
    path = Path(rubric).expanduser()
    if path.is_file():
        text = path.read_text(encoding="utf-8").strip()
        if not text:
            raise ConfigError(f"rubric file {str(path)!r} is empty; write the judge's criteria in it.")
        return text
    raise ConfigError(
        f"rubric {rubric!r} is neither a built-in rubric ({', '.join(RUBRICS)}) nor an existing text file; "
        "pass one of those names or the path of a file holding the judge's criteria."
    )


def prompt_text(prompt: Any) -> str:
    """The question: the last user message of a chat prompt, or the prompt string itself."""
    if isinstance(prompt, (list, tuple)):
        users = [m for m in prompt if isinstance(m, dict) and m.get("role") == "user"]
        if users:
            return completion_text(users[-1].get("content", ""))
        return "\n".join(completion_text(m.get("content", "")) for m in prompt if isinstance(m, dict))
    return "" if prompt is None else completion_text(prompt)


def _clip(text: str) -> str:
    return text if len(text) <= MAX_FIELD_CHARS else text[:MAX_FIELD_CHARS] + "\n[... cut ...]"


def _fill(text: str, lo: float, hi: float) -> str:
    # plain replacement, not str.format: a rubric file may hold other braces (JSON examples)
    return text.replace("{min}", f"{lo:g}").replace("{max}", f"{hi:g}")


@dataclass(frozen=True)
class Judgment:
    """One request to the judge: its messages and the key it is cached under."""

    messages: tuple[dict, ...]
    key: str
    swapped: bool = False  #: pairwise only: the completion is B (the reference is A)


def cache_key(model: str, messages) -> str:
    """(model, rubric, prompt, completion, reference) as rendered: any change is a different judgment."""
    h = hashlib.sha256(model.encode("utf-8"))
    for m in messages:
        h.update(b"\x00" + m["role"].encode() + b"\x00" + m["content"].encode("utf-8"))
    return h.hexdigest()


def score_judgment(model: str, rubric: str, prompt: Any, completion: Any, lo: float, hi: float,
                   reference: Any = None) -> Judgment:
    system = _fill(rubric, lo, hi) + "\n\n" + _fill(SCORE_FORMAT, lo, hi)
    parts = [f"Question:\n{_clip(prompt_text(prompt))}"]
    if reference is not None:
        parts.append(f"Reference answer:\n{_clip(completion_text(reference))}")
    parts.append(f"Response:\n{_clip(completion_text(completion))}")
    messages = ({"role": "system", "content": system}, {"role": "user", "content": "\n\n".join(parts)})
    return Judgment(messages, cache_key(model, messages))


def pairwise_judgment(model: str, rubric: str, prompt: Any, completion: Any, reference: Any) -> Judgment:
    """The completion against the reference; which one is A is decided by a hash of the completion, so
    position bias evens out over a batch and the same completion is always asked the same way."""
    text = _clip(completion_text(completion))
    swapped = hashlib.sha256(text.encode("utf-8")).digest()[0] % 2 == 1
    a, b = (_clip(completion_text(reference)), text) if swapped else (text, _clip(completion_text(reference)))
    system = rubric + "\n\n" + WINNER_FORMAT
    user = f"Question:\n{_clip(prompt_text(prompt))}\n\nResponse A:\n{a}\n\nResponse B:\n{b}"
    messages = ({"role": "system", "content": system}, {"role": "user", "content": user})
    return Judgment(messages, cache_key(model, messages), swapped)
