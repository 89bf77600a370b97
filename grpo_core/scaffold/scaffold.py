"""Write a new plugin package: ``grpo-core new-plugin NAME --kind KIND``.

The package is ready to ``pip install -e`` and test::

    grpo-rewards-brevity/
    ├── pyproject.toml              entry point: [project.entry-points.grpo_core]
    ├── README.md                   Overview, Quickstart, what it registers
    ├── grpo_rewards_brevity.py     a typed, documented example + @hookimpl
    └── tests/test_grpo_rewards_brevity.py   table tests + the conformance kit

Names follow the project's conventions: distribution ``grpo-<kind>s-<name>``,
module ``grpo_<kind>s_<name>``, entry point and registered name ``<name>``
(with ``_`` for ``-``, since a reward's name is also its function's name).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from grpo_core._version import __version__
from grpo_core.errors import GrpoCoreError
from grpo_core.plugins import registries

KINDS = ("reward", "verifier", "dataset")
#: the files a new plugin is made from, one set per kind ({{name}}-style placeholders)
TEMPLATES = resources.files("grpo_core.scaffold") / "templates"


@dataclass
class Names:
    distribution: str  #: grpo-rewards-brevity
    module: str  #: grpo_rewards_brevity
    name: str  #: brevity: the entry point and the registered name
    title: str  #: Brevity
    kind: str

    @classmethod
    def from_name(cls, name: str, kind: str) -> "Names":
        if kind not in KINDS:
            raise GrpoCoreError(f"unknown plugin kind {kind!r}; choose one of {', '.join(KINDS)}.")
        raw = name.strip().lower().replace("_", "-")
        if not re.fullmatch(r"[a-z][a-z0-9-]*[a-z0-9]|[a-z]", raw or "-"):
            raise GrpoCoreError(
                f"plugin name {name!r} is not usable; use letters, digits and '-', starting with a letter (e.g. brevity)."
            )
        if raw.startswith("grpo-"):
            distribution = raw
            short = re.sub(r"^grpo-(rewards?|verifiers?|datasets?)-", "", raw)
            short = short[len("grpo-"):] if short.startswith("grpo-") else short
        else:
            distribution, short = f"grpo-{kind}s-{raw}", raw
        if not short:
            raise GrpoCoreError(f"plugin name {name!r} has nothing after the prefix; try e.g. grpo-{kind}s-brevity.")
        ident = short.replace("-", "_")
        return cls(distribution, distribution.replace("-", "_"), ident, short.replace("-", " ").title().replace(" ", ""), kind)


@dataclass
class Scaffold:
    root: Path
    names: Names
    files: list[Path] = field(default_factory=list)


def scaffold(name: str, *, kind: str = "reward", directory: str | Path = ".") -> Scaffold:
    """Write the package for ``name`` under ``directory``; refuses to overwrite."""
    names = Names.from_name(name, kind)
    refuse_taken_name(names)
    root = Path(directory) / names.distribution
    if root.exists():
        raise GrpoCoreError(f"{root} already exists; choose another name or --dir, or remove it.")
    subs = {
        "{{distribution}}": names.distribution,
        "{{module}}": names.module,
        "{{name}}": names.name,
        "{{Title}}": names.title,
        "{{kind}}": kind,
        "{{core_version}}": __version__,
    }
    files = {
        "pyproject.toml": _template("pyproject.toml"),
        "README.md": _template("README-head.md") + _template(f"README-{kind}.md"),
        f"{names.module}.py": _template(f"module-{kind}.py"),
        f"tests/test_{names.module}.py": _template(f"test-{kind}.py"),
    }
    out = Scaffold(root, names)
    for rel, text in files.items():
        for k, v in subs.items():
            text = text.replace(k, v)
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.lstrip("\n"), encoding="utf-8")
        out.files.append(path)
    return out


def refuse_taken_name(names: Names) -> None:
    """A name an installed plugin (or grpo-core) already registers for this kind would make the bare name
    ambiguous for every user of both: refused, with the owner named."""
    registry = getattr(registries(), f"{names.kind}s")
    taken = [item for item in registry if item.name == names.name]
    if taken:
        owners = ", ".join(f"{item.qualified_name} ({item.provenance.describe()})" for item in taken)
        raise GrpoCoreError(
            f"a {names.kind} named {names.name!r} is already registered: {owners}. Pick another name "
            f"(e.g. {names.name}-2 or one that says what it does), so that '{names.name}' stays unambiguous."
        )


def _template(name: str) -> str:
    """One of the package-data templates under ``grpo_core/scaffold/templates/``."""
    return (TEMPLATES / f"{name}.tmpl").read_text(encoding="utf-8")
