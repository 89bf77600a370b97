"""The core's structure holds: the import-linter contracts, the plugins' imports, the old import paths.

The layers and their rules are in pyproject.toml ([tool.importlinter]) and drawn in docs/architecture.md.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "grpo_core"
#: what a plugin may import from grpo-core: the package face and the author kit
PUBLIC_MODULES = ("grpo_core", "grpo_core.kit")
#: names that stay at grpo_core's top level for one release, as deprecated aliases of the kit
DEPRECATED_ALIASES = {"verdict": "grpo_core.kit.verdict", "extract": "grpo_core.kit.extraction", "datasets": "grpo_core.kit.datasets"}


def test_import_linter_contracts_hold():
    lint_imports = Path(sys.executable).parent / "lint-imports"
    res = subprocess.run([str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-6000:] + res.stderr[-2000:]
    assert "0 broken" in res.stdout, res.stdout[-3000:]


def test_the_contracts_cover_every_top_level_module():
    """A new top-level module or folder must be placed in a layer, or the layers say nothing about it."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    layers = next(c for c in config["contracts"] if c["type"] == "layers")["layers"]
    placed = {m.strip().removeprefix("grpo_core.") for layer in layers for m in layer.split("|")}
    entries = {p.stem if p.suffix == ".py" else p.name for p in PACKAGE.iterdir() if not p.name.startswith(("__", "."))}
    entries -= {"assets"} | set(DEPRECATED_ALIASES)
    assert entries - placed == set(), f"place these in a layer of [tool.importlinter]: {sorted(entries - placed)}"
    # the public face (__init__, _version, hookspecs, errors, __main__), the bundled model, the layers; no alias files
    assert len(list(p for p in PACKAGE.iterdir() if p.name != "__pycache__")) <= 20
    assert not set(DEPRECATED_ALIASES) & {p.stem for p in PACKAGE.iterdir()}


def _grpo_core_imports(path: Path) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "grpo_core"]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "grpo_core":
            out.append((node.lineno, node.module))
    return out


def _plugin_modules() -> list[Path]:
    return sorted(p for d in (ROOT / "plugins").iterdir() if d.is_dir() for p in d.glob("*/**/*.py") if "tests" not in p.parts)


def test_in_repo_plugins_import_only_the_public_face_and_the_kit():
    modules = _plugin_modules()
    assert modules, "no plugin modules found under plugins/"
    wrong = [
        f"{p.relative_to(ROOT)}:{line}: {mod}"
        for p in modules
        for line, mod in _grpo_core_imports(p)
        if mod not in PUBLIC_MODULES
    ]
    assert not wrong, "plugins import only grpo_core and grpo_core.kit; change these:\n" + "\n".join(wrong)


def test_the_built_in_plugins_import_only_the_public_face_and_the_kit_too():
    wrong = [
        f"{p.relative_to(ROOT)}:{line}: {mod}"
        for p in sorted((PACKAGE / "default_plugins").glob("*.py"))
        for line, mod in _grpo_core_imports(p)
        if mod not in PUBLIC_MODULES
    ]
    assert not wrong, "\n".join(wrong)


def test_the_check_sees_a_private_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from grpo_core.kit import Verdict\nfrom grpo_core.runtime.deadline import in_worker\nimport grpo_core.plugins\n")
    assert [m for _, m in _grpo_core_imports(bad) if m not in PUBLIC_MODULES] == ["grpo_core.runtime.deadline", "grpo_core.plugins"]


@pytest.mark.parametrize("old,new", sorted(DEPRECATED_ALIASES.items()))
def test_old_import_paths_still_work_with_a_deprecation_warning(old, new):
    sys.modules.pop(f"grpo_core.{old}", None)
    with pytest.warns(DeprecationWarning, match=rf"grpo_core\.{old} is deprecated.*grpo_core\.kit"):
        alias = importlib.import_module(f"grpo_core.{old}")
    kit_module = importlib.import_module(new)
    public = [n for n in vars(kit_module) if not n.startswith("_") and getattr(vars(kit_module)[n], "__module__", None) == new]
    assert public
    for name in public:
        assert getattr(alias, name) is getattr(kit_module, name), name


def test_an_old_path_as_an_attribute_warns_too_and_unknown_names_still_fail():
    import grpo_core

    sys.modules.pop("grpo_core.datasets", None)
    vars(grpo_core).pop("datasets", None)
    with pytest.warns(DeprecationWarning, match=r"grpo_core\.datasets is deprecated"):
        alias = grpo_core.datasets
    from grpo_core.kit.datasets import DatasetAdapter

    assert alias.DatasetAdapter is DatasetAdapter
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        grpo_core.no_such_name  # noqa: B018


def test_the_core_itself_uses_no_deprecated_path():
    code = (
        "import warnings\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    import grpo_core, grpo_core.kit, grpo_core.cli, grpo_core.testing, grpo_core.train\n"
        "    grpo_core.get_rewards()\n"
        "print([str(w.message) for w in caught if 'grpo_core.' in str(w.message)])\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.strip() == "[]", res.stdout


def test_docstrings_name_modules_that_exist():
    import importlib.util
    import re

    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for mod in re.findall(r":mod:`~?(grpo_core(?:\.\w+)*)`", path.read_text()):
            if importlib.util.find_spec(mod) is None:
                missing.append(f"{path.relative_to(ROOT)}: {mod}")
    assert not missing, "docstrings name modules that do not exist:\n" + "\n".join(missing)
