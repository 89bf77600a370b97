"""The replies ``grpo-core score --gold-format`` builds for code rows.

The perfect reply is the row's reference solution in a ```python block; the
others break it one way each, so the scores show what each reward pays for.
"""

from __future__ import annotations

from typing import Any, Callable

from .codeblocks import last_python_block


def _code(row: dict) -> str:
    return (last_python_block(row["solution"]) or "").rstrip()


def _wrong(row: dict) -> str:
    name = row.get("entry_point") or "solution"
    return f"```python\n{_code(row)}\n\n\ndef {name}(*args, **kwargs):\n    return None\n```"


#: name -> (what it is, builder(row)); the first is the perfect reply
CODE_VARIANTS: dict[str, tuple[str, Callable[[dict], Any]]] = {
    "perfect": ("the reference solution in one ```python block", lambda r: r["solution"]),
    "perfect_chat": ("the same, as chat messages", lambda r: [{"role": "assistant", "content": r["solution"]}]),
    "draft_then_final": ("a draft block, then the solution", lambda r: "Draft:\n```python\n# todo\n```\nFinal:\n" + r["solution"]),
    "trailing_text": ("the solution followed by chatter", lambda r: r["solution"] + "\nHope this helps!"),
    "wrong_code": ("the solution, then the entry point redefined to return None", _wrong),
    "syntax_error": ("the solution with a stray bracket", lambda r: f"```python\n{_code(r)}\n)\n```"),
    "no_fence": ("the solution as plain text, no code block", _code),
    "unclosed_fence": ("the code block never closed", lambda r: f"```python\n{_code(r)}\n"),
    "other_language": ("the solution fenced as another language", lambda r: f"```javascript\n{_code(r)}\n```"),
    "empty": ("an empty reply", lambda r: ""),
}
