#!/usr/bin/env python
"""Copy marked code from test files into the docs that show it.

A doc marks a code block with an HTML comment naming the block and its file:

    <!-- block: reward from tests/test_tutorial.py -->
    ```python
    ...
    ```

and the file marks the same code with ``# -- start reward --`` and
``# -- end reward --``. ``python scripts/sync_doc_blocks.py`` rewrites every
marked block of every doc; ``--check`` only reports the blocks that differ
(tests/test_docs.py runs it, so a doc cannot drift from its tested code).
"""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ("docs/plugins/tutorial.md", "docs/plugins/reward-contract.md")
DOC_BLOCK = re.compile(r"<!-- block: (\S+) from (\S+) -->\n```(\w*)\n(.*?)```", re.S)


def code_blocks(path: Path) -> dict[str, str]:
    """``name -> code`` for every ``# -- start name --`` / ``# -- end name --`` pair, dedented."""
    text = path.read_text(encoding="utf-8")
    pattern = re.compile(r"^[ \t]*# -- start (\S+) --\n(.*?)^[ \t]*# -- end \1 --", re.S | re.M)
    return {m.group(1): textwrap.dedent(m.group(2)) for m in pattern.finditer(text)}


def sync(doc: Path, check: bool) -> list[str]:
    """Rewrite (or, with ``check``, compare) the marked blocks of ``doc``; returns the problems."""
    text = doc.read_text(encoding="utf-8")
    problems: list[str] = []
    cache: dict[str, dict[str, str]] = {}

    def replace(m: re.Match) -> str:
        name, src, lang, body = m.groups()
        blocks = cache.setdefault(src, code_blocks(ROOT / src))
        if name not in blocks:
            problems.append(f"{doc.relative_to(ROOT)}: block {name!r} is not marked in {src} (# -- start {name} -- ... # -- end {name} --)")
            return m.group(0)
        if body != blocks[name]:
            problems.append(f"{doc.relative_to(ROOT)}: block {name!r} differs from the code marked in {src}")
        return f"<!-- block: {name} from {src} -->\n```{lang}\n{blocks[name]}```"

    new = DOC_BLOCK.sub(replace, text)
    if not check and new != text:
        doc.write_text(new, encoding="utf-8")
    return problems


def main(argv: list[str]) -> int:
    check = "--check" in argv
    problems = [p for d in DOCS for p in sync(ROOT / d, check)]
    if check and problems:
        for p in problems:
            print(p, file=sys.stderr)
        print("run: python scripts/sync_doc_blocks.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
