"""Fenced code blocks in a reply: find the last one, judge its form.

Linear scans over the text (``str.find`` from fence to fence), so huge or
adversarial replies cost no more than reading them.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

FENCE = "```"
#: fence tags read as Python (an untagged fence counts too)
PYTHON_TAGS = ("python", "py", "python3")


@dataclass(frozen=True)
class CodeBlock:
    tag: str
    code: str
    closed: bool


def code_blocks(text: str) -> list[CodeBlock]:
    """Every fenced block, in order; an unclosed last fence runs to the end (``closed=False``)."""
    out: list[CodeBlock] = []
    pos = 0
    while True:
        start = text.find(FENCE, pos)
        if start < 0:
            return out
        line_end = text.find("\n", start)
        if line_end < 0:
            out.append(CodeBlock(text[start + 3 :].strip().lower(), "", False))
            return out
        tag = text[start + 3 : line_end].strip().lower()
        end = text.find(FENCE, line_end + 1)
        if end < 0:
            out.append(CodeBlock(tag, text[line_end + 1 :], False))
            return out
        out.append(CodeBlock(tag, text[line_end + 1 : end], True))
        pos = end + 3


def is_python(block: CodeBlock) -> bool:
    return block.tag in PYTHON_TAGS or block.tag == ""


def last_python_block(text: str) -> str | None:
    """The code of the last closed Python (or untagged) fenced block, or None."""
    for block in reversed(code_blocks(text)):
        if block.closed and is_python(block):
            return block.code
    return None


def format_score(text: str) -> float:
    """1.0: exactly one closed Python block that parses; 0.5: a closed Python block, but several
    blocks or code that does not parse; 0.0: no closed Python block."""
    blocks = [b for b in code_blocks(text) if is_python(b)]
    closed = [b for b in blocks if b.closed]
    if not closed:
        return 0.0
    try:
        ast.parse(closed[-1].code)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return 0.5
    return 1.0 if len(blocks) == 1 and closed[-1].code.strip() else 0.5
