"""Answer extraction shared by rewards and verifiers.

All helpers are linear-time scans (``str.rfind`` and a brace counter), so they
are safe on huge or adversarial completions.
"""

from __future__ import annotations

import re
from typing import Any

MAX_ANSWER_CHARS = 1000  # answers longer than this are not parsed (see user-pains §3)


def completion_text(completion: Any) -> str:
    """The text of a completion, whether TRL passes a string or chat messages.

    Chat completions arrive as ``[{"role": "assistant", "content": ...}]``;
    the assistant contents are joined. Anything else is ``str()``-ed.
    """
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        if "content" not in completion and isinstance(completion.get("text"), str):
            return completion["text"]  # a content part: {"type": "text", "text": ...}
        c = completion.get("content", "") or ""
        return c if isinstance(c, str) else completion_text(c)
    if isinstance(completion, (list, tuple)):
        parts = []
        for m in completion:
            if isinstance(m, dict):
                if m.get("role", "assistant") == "assistant":
                    parts.append(completion_text(m))
            else:
                parts.append(completion_text(m))
        return "".join(parts)
    if completion is None:
        return ""
    return str(completion)


def last_tag_block(text: str, tag: str = "answer") -> str | None:
    """The content of the last complete ``<tag>…</tag>`` block, stripped."""
    close = f"</{tag}>"
    end = text.rfind(close)
    if end < 0:
        return None
    start = text.rfind(f"<{tag}>", 0, end)
    if start < 0:
        return None
    return text[start + len(tag) + 2 : end].strip()


def last_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{…}`` (or ``\\fbox{…}``), braces balanced."""
    best = -1
    for marker in ("\\boxed", "\\fbox"):
        best = max(best, text.rfind(marker))
    if best < 0:
        return None
    i = text.find("{", best)
    if i < 0:
        # "\boxed 5" form
        rest = text[best:].split(None, 1)
        return rest[1].split()[0].strip("$.") if len(rest) > 1 and rest[1].split() else None
    j = matching_brace(text, i)
    return text[i + 1 : j].strip() if j >= 0 else None


def matching_brace(text: str, i: int) -> int:
    """Index of the ``}`` closing the ``{`` at ``text[i]``, or -1 when it is never closed."""
    depth = 0
    for j in range(i, len(text)):
        ch = text[j]
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return j
    return -1


def extract_answer(text: str, *, fallback: bool = False) -> str | None:
    """Strict extraction: the last ``<answer>`` block, else the last ``\\boxed{}``.

    A ``\\boxed{}`` inside the answer block wins over the block's raw text.
    With ``fallback=True``, the text after "answer is" or ``####`` and then the
    last number in the text are tried too.
    """
    text = completion_text(text)
    block = last_tag_block(text)
    if block is not None:
        inner = last_boxed(block)
        ans = inner if inner is not None else block
    else:
        ans = last_boxed(text)
    if ans is None and fallback:
        ans = _fallback_answer(text)
    if ans is None:
        return None
    ans = ans.strip()
    if not ans or len(ans) > MAX_ANSWER_CHARS:
        return None
    return ans


def _fallback_answer(text: str) -> str | None:
    tail = text[-4000:]
    for marker in ("####", "answer is", "Answer:", "answer:"):
        k = tail.rfind(marker)
        if k >= 0:
            rest = tail[k + len(marker) :].strip().lstrip(":").strip()
            line = rest.splitlines()[0] if rest else ""
            line = line.strip().rstrip(".").strip("$* ")
            if line:
                return line
    nums = re.findall(r"-?\d[\d,]*(?:\.\d+)?", tail)
    return nums[-1] if nums else None
