#!/usr/bin/env python
"""Write grpo_core/config/grpo_fields.json: TRL GRPOConfig's fields, their types and defaults.

Validating a run's settings needs GRPOConfig's field list, and importing trl for it takes
about 11 s. The list is written here once for the pinned trl (constraints.txt), so that
``grpo-core run --dry-run`` and every settings check read a small JSON file instead.

    python scripts/gen_grpo_fields.py          # rewrite the file from the installed trl
    python scripts/gen_grpo_fields.py --check  # exit 1 if it differs from the installed trl

tests/test_config.py runs ``--check``, so the file cannot drift from the trl that is installed.

Each field records ``kinds``: the JSON kinds a value may have (``bool``, ``int``, ``float``,
``str``, ``list``, ``dict``, ``null``; ``any`` where the type is an object no setting file can
spell), ``choices`` where the type is an enumeration (or the field's metadata lists choices),
and ``default`` (JSON; enumerations by value, other objects by ``repr``).
"""

from __future__ import annotations

import dataclasses
import enum
import json
import sys
import typing
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TARGET = ROOT / "grpo_core" / "config" / "grpo_fields.json"

def _jsonable(value):
    if isinstance(value, enum.Enum):
        return value.value
    try:
        json.dumps(value)
        return value
    except TypeError:
        return repr(value)


def build() -> dict:
    import transformers
    import trl
    from trl import GRPOConfig

    from grpo_core.config.values import kinds_of

    hints = typing.get_type_hints(GRPOConfig)
    fields = {}
    for f in dataclasses.fields(GRPOConfig):
        kinds, choices = kinds_of(hints[f.name])
        if f.metadata.get("choices"):
            choices = list(f.metadata["choices"])
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = None
        entry = {"kinds": list(kinds), "default": _jsonable(default)}
        if choices is not None:
            entry["choices"] = [_jsonable(c) for c in choices]
        fields[f.name] = entry
    return {"trl": trl.__version__, "transformers": transformers.__version__, "fields": fields}


def render() -> str:
    return json.dumps(build(), indent=1, sort_keys=True) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        current = TARGET.read_text(encoding="utf-8") if TARGET.exists() else ""
        if current != text:
            print(f"{TARGET.relative_to(ROOT)} does not match the installed trl; run: python scripts/gen_grpo_fields.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text, encoding="utf-8")
    print(f"wrote {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
