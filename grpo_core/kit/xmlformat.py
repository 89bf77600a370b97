"""Parse replies in the ``<reasoning>…</reasoning><answer>…</answer>`` format.

One linear scan finds every format tag; the format rewards then judge the
sequence, so empty tags, repeated blocks, nesting and mismatched closing tags
are all seen for what they are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TAG_RE = re.compile(r"<(/?)(reasoning|answer)>")


@dataclass(frozen=True)
class XmlReply:
    text: str
    tags: tuple[tuple[str, bool, int, int], ...]  # (name, is_close, start, end)

    @classmethod
    def parse(cls, text: str) -> "XmlReply":
        return cls(text, tuple((m.group(2), m.group(1) == "/", m.start(), m.end()) for m in TAG_RE.finditer(text)))

    def count(self, name: str, close: bool) -> int:
        return sum(1 for n, c, _, _ in self.tags if n == name and c == close)

    @property
    def well_formed(self) -> bool:
        """Exactly one reasoning block, then exactly one answer block, nothing nested."""
        return [(n, c) for n, c, _, _ in self.tags] == [
            ("reasoning", False),
            ("reasoning", True),
            ("answer", False),
            ("answer", True),
        ]

    def _span(self, i: int) -> str:
        return self.text[self.tags[i][3] : self.tags[i + 1][2]]

    @property
    def reasoning(self) -> str | None:
        return self._span(0) if self.well_formed else None

    @property
    def answer(self) -> str | None:
        return self._span(2) if self.well_formed else None

    @property
    def before(self) -> str:
        return self.text[: self.tags[0][2]] if self.tags else self.text

    @property
    def between(self) -> str | None:
        return self.text[self.tags[1][3] : self.tags[2][2]] if self.well_formed else None

    @property
    def after(self) -> str:
        return self.text[self.tags[-1][3] :] if self.tags else ""

    def blocks_nonempty(self) -> bool:
        return bool(self.well_formed and self.reasoning.strip() and self.answer.strip())

    def follows_format(self) -> bool:
        """One non-empty reasoning block then one non-empty answer block, with nothing before or between them."""
        return self.blocks_nonempty() and not self.before.strip() and not self.between.strip()
