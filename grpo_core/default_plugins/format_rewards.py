"""The format rewards of the reference GRPO workflow, hardened against gaming.

* ``xml``: partial credit, 0.25 for each of the reasoning and answer blocks
  that is present once, closed, non-empty, free of other format tags and not
  nested in the other block (up to 0.5; only 0.25 when the answer comes before
  the reasoning), minus 0.001 per character after ``</answer>`` (at most 0.25);
* ``soft_format``: 0.5 for one reasoning block then one answer block;
* ``strict_format``: 0.5 for exactly ``<reasoning>\\n…\\n</reasoning>\\n<answer>\\n…\\n</answer>``;
* ``exact_format``: 3.0 when the whole reply is one reasoning block followed by
  one answer block (the Llama-3.2 variant).

No reward pays for empty blocks, repeated blocks, nested or mismatched tags.
Completions may be plain strings or chat messages.
"""

from __future__ import annotations

from grpo_core import hookimpl
from grpo_core.kit import XmlReply, completion_text

TRAILING_PENALTY_PER_CHAR = 0.001
MAX_TRAILING_PENALTY = 0.25


def _replies(completions) -> list[XmlReply]:
    return [XmlReply.parse(completion_text(c)) for c in completions]


def _wrapped_in_newlines(s: str) -> bool:
    return len(s) > 2 and s[0] == "\n" and s[-1] == "\n" and s[1] != "\n" and s[-2] != "\n"


def xml_score(reply: XmlReply) -> float:
    """Partial credit for the tags, as in the reference ``count_xml``."""
    score = 0.0
    pairs = {}
    for name, other in (("reasoning", "answer"), ("answer", "reasoning")):
        opens, closes = reply.count(name, False), reply.count(name, True)
        if opens == 1 and closes == 1:
            o = next(t for t in reply.tags if t[0] == name and not t[1])
            c = next(t for t in reply.tags if t[0] == name and t[1])
            inner = reply.text[o[3] : c[2]]
            # nested inside the other block (an <other> before it and a </other> after it): no credit
            enclosed = any(t[0] == other and not t[1] and t[2] < o[2] for t in reply.tags) and any(
                t[0] == other and t[1] and t[2] > c[2] for t in reply.tags
            )
            if o[2] < c[2] and inner.strip() and not XmlReply.parse(inner).tags and not enclosed:
                pairs[name] = (o, c)
                score += 0.25
    if "reasoning" in pairs and "answer" in pairs and pairs["reasoning"][1][2] > pairs["answer"][0][2]:
        score -= 0.25  # answer before reasoning finishes: credit only one block
    if "answer" in pairs:
        trailing = reply.text[pairs["answer"][1][3] :].strip()
        score -= min(MAX_TRAILING_PENALTY, TRAILING_PENALTY_PER_CHAR * len(trailing))
    return score


def xml(completions, **kwargs) -> list[float]:
    """Partial credit per well-placed reasoning/answer tag, minus text after </answer>."""
    return [xml_score(r) for r in _replies(completions)]


def soft_format(completions, **kwargs) -> list[float]:
    """0.5 for one non-empty reasoning block followed by one non-empty answer block."""
    out = []
    for r in _replies(completions):
        out.append(0.5 if r.follows_format() else 0.0)
    return out


def strict_format(completions, **kwargs) -> list[float]:
    """0.5 for exactly <reasoning>\\n…\\n</reasoning>\\n<answer>\\n…\\n</answer>, nothing else."""
    out = []
    for r in _replies(completions):
        ok = (
            r.blocks_nonempty()
            and r.before == ""
            and _wrapped_in_newlines(r.reasoning)
            and r.between == "\n"
            and _wrapped_in_newlines(r.answer)
            and r.after in ("", "\n")
        )
        out.append(0.5 if ok else 0.0)
    return out


def exact_format(completions, **kwargs) -> list[float]:
    """3.0 when the whole reply is one reasoning block then one answer block (Llama variant)."""
    out = []
    for r in _replies(completions):
        ok = r.blocks_nonempty() and not r.before.strip() and not r.between.strip() and not r.after.strip()
        out.append(3.0 if ok else 0.0)
    return out


@hookimpl
def register_rewards(register):
    register(xml, default_weight=1.0)
    register(soft_format, default_weight=1.0)
    register(strict_format, default_weight=1.0)
    register(exact_format, default_weight=1.0)
