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
from pathlib import Path

from .errors import GrpoCoreError

KINDS = ("reward", "verifier", "dataset")


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
    from . import __version__

    names = Names.from_name(name, kind)
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
        "pyproject.toml": PYPROJECT,
        "README.md": README_HEAD + README[kind],
        f"{names.module}.py": MODULES[kind],
        f"tests/test_{names.module}.py": TESTS[kind],
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


PYPROJECT = '''
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "{{distribution}}"
version = "0.1.0"
description = "A grpo-core plugin: the {{name}} {{kind}}"
readme = "README.md"
requires-python = ">=3.10"
dependencies = ["grpo-core>={{core_version}}"]

[project.optional-dependencies]
test = ["pytest"]

# grpo-core finds plugins through this entry point group. The entry point
# names a module; every @hookimpl function in it is registered.
[project.entry-points.grpo_core]
{{name}} = "{{module}}"

[tool.setuptools]
py-modules = ["{{module}}"]

[tool.pytest.ini_options]
testpaths = ["tests"]
'''

README_HEAD = '''
# {{distribution}}

A [grpo-core](https://github.com/) plugin that registers the {{kind}} `{{name}}`.

## Quickstart

```bash
pip install -e .          # from this folder; grpo-core finds it by its entry point
grpo-core {{kind}}s       # `{{name}}` is listed, with this package as its source
pytest                    # the table tests and grpo-core's conformance kit
```
'''

README = {
    "reward": '''
Score some replies built from gold answers, without a model:

```bash
grpo-core score --plugins {{name}},xml --dataset arithmetic:test --gold-format --limit 20
```

Then train with it: `grpo-core run --plugins xml,{{name}}:2 ...`

## Rewards

| name | requires | range | metric keys |
| --- | --- | --- | --- |
| `{{name}}` | `answer` | 0.0 to 1.0, None when the row has no gold | `rewards/{{name}}/mean`, `/std`, `/errors`, `/none_frac`, ... |

## Developing

Edit `{{module}}.py`. Keep rewards module-level functions (they must pickle
for worker processes), import nothing heavy at module level, and return one
float (or None) per completion. `check_reward` in the tests checks all of that.
''',
    "verifier": '''
## Verifiers

| name | decides |
| --- | --- |
| `{{name}}` | answers equal after trimming, case folding and collapsing spaces |

Use it from a dataset adapter (`verifier = "{{name}}"`) or directly:

```python
from grpo_core import get_verifier
get_verifier("{{name}}").check(gold="Paris", response="<answer>paris</answer>")
```

## Developing

Edit `{{module}}.py`. Put cheap, bounded decisions in `quick_compare` and
anything that may be slow in `compare`, which grpo-core runs in a killable
worker under `timeout`. `check_verifier` in the tests checks the contract.
''',
    "dataset": '''
## Datasets

| name | splits | verifier | columns |
| --- | --- | --- | --- |
| `{{name}}` | train, test | `arithmetic` | prompt, answer, id, source, verifier |

```bash
grpo-core datasets
grpo-core score --plugins xml --dataset {{name}}:train --gold-format
```

## Developing

Edit `{{module}}.py`: `rows()` yields `question`, `answer` and a stable `id`;
`load()` (inherited) adds the chat prompt and checks every gold answer with
the named verifier. `check_dataset` in the tests checks the contract.
''',
}

MODULES = {
    "reward": '''
"""The ``{{name}}`` reward: does the reply's answer match the gold answer?

Registered with grpo-core through the ``grpo_core`` entry point in
pyproject.toml. Import nothing heavy at module level: grpo-core imports every
plugin when its CLI starts.
"""

from __future__ import annotations

from typing import Any

from grpo_core import hookimpl
from grpo_core.extract import completion_text, extract_answer


def _normalise(text: str) -> str:
    return " ".join(text.replace(",", "").split()).lower()


def {{name}}(completions: list[Any], answer: list[str] | None = None, **kwargs: Any) -> list[float | None]:
    """1.0 when the reply's <answer> matches the gold answer, 0.0 when not, None without a gold.

    ``completions`` are strings or chat messages; ``answer`` is the dataset's
    gold column, one value per completion. TRL also passes ``prompts``,
    ``completion_ids``, ``trainer_state``, ``log_extra`` and ``log_metric``,
    which ``**kwargs`` absorbs.

    >>> {{name}}(["<answer>1,000</answer>", "<answer>7</answer>", "no tags"], answer=["1000", "8", "3"])
    [1.0, 0.0, 0.0]
    >>> {{name}}(["<answer>7</answer>"], answer=[""])
    [None]
    """
    golds = answer if answer is not None else [None] * len(completions)
    scores: list[float | None] = []
    for completion, gold in zip(completions, golds):
        if gold is None or not str(gold).strip():
            scores.append(None)  # no opinion: TRL leaves this reward out of the sample's total
            continue
        found = extract_answer(completion_text(completion))
        scores.append(1.0 if found is not None and _normalise(found) == _normalise(str(gold)) else 0.0)
    return scores


@hookimpl
def register_rewards(register):
    register({{name}}, requires=("answer",), default_weight=1.0, timeout=5.0)
''',
    "verifier": '''
"""The ``{{name}}`` verifier: short text answers, compared loosely.

Registered with grpo-core through the ``grpo_core`` entry point in
pyproject.toml.
"""

from __future__ import annotations

from grpo_core import Verdict, Verifier, hookimpl


def normalise(text: str) -> str:
    """Trim, fold case and collapse whitespace: ``"  New  York "`` -> ``"new york"``."""
    return " ".join(text.split()).casefold()


class {{Title}}Verifier(Verifier):
    """Equal when both answers match after trimming, case folding and collapsing spaces."""

    name = "{{name}}"
    description = "short text answers, equal after trimming, case folding and collapsing spaces"
    version = "1"  # bump when verdicts change

    def quick_compare(self, gold: str, pred: str) -> Verdict:
        """Decide inline: this comparison is linear in the (length-capped) input."""
        g, p = normalise(gold), normalise(pred)
        if not g:
            return Verdict.gold_unparseable("gold answer is blank", pred=pred, gold=gold)
        if p == g:
            return Verdict.matched(pred=pred, gold=gold)
        return Verdict.different(f"{p[:40]!r} != {g[:40]!r}", pred=pred, gold=gold)

    def compare(self, gold: str, pred: str) -> Verdict:
        """The slow path (run in a worker under ``timeout``); nothing slow is needed here."""
        return self.quick_compare(gold, pred)


@hookimpl
def register_verifiers(register):
    register({{Title}}Verifier())
''',
    "dataset": '''
"""The ``{{name}}`` dataset: a few arithmetic questions, as an example adapter.

Registered with grpo-core through the ``grpo_core`` entry point in
pyproject.toml. Replace ``PROBLEMS`` with your source (a file, the Hugging
Face hub, ...); keep the imports of heavy libraries inside ``rows()``.
"""

from __future__ import annotations

from typing import Any, Iterator

from grpo_core import hookimpl
from grpo_core.datasets import DatasetAdapter

#: (question, gold answer) per split; the ids below are derived from the position
PROBLEMS: dict[str, list[tuple[str, str]]] = {
    "train": [
        ("Ann has 3 apples and buys 4 more. How many apples does she have?", "7"),
        ("A box holds 6 pens. How many pens are in 5 boxes?", "30"),
        ("Tom had 20 cards and gave away 8. How many cards are left?", "12"),
    ],
    "test": [
        ("Mia reads 12 pages a day for 3 days. How many pages does she read?", "36"),
        ("A jar has 50 beads; 15 are red. How many are not red?", "35"),
    ],
}


class {{Title}}Dataset(DatasetAdapter):
    """A few one-step arithmetic questions with integer answers."""

    name = "{{name}}"
    description = "example arithmetic questions (train 3 / test 2)"
    verifier = "arithmetic"  # the built-in integer verifier checks these answers
    splits = ("train", "test")

    def rows(self, split: str, **options: Any) -> Iterator[dict]:
        """Yield ``question``, ``answer`` and a stable ``id`` per problem."""
        for i, (question, answer) in enumerate(PROBLEMS[split]):
            yield {"question": question, "answer": answer, "id": f"{self.name}/{split}/{i}"}


@hookimpl
def register_datasets(register):
    register({{Title}}Dataset())
''',
}

TESTS = {
    "reward": '''
"""Tests for the {{name}} reward: a table of cases, then grpo-core's conformance kit."""

import pytest

from grpo_core import get_rewards
from grpo_core.testing import check_reward

import {{module}}
from {{module}} import {{name}}


def test_plugin_is_installed():
    assert "{{name}}" in get_rewards()


@pytest.mark.parametrize(
    "completion, gold, expected",
    [
        ("<reasoning>\\n6 * 7\\n</reasoning>\\n<answer>\\n42\\n</answer>", "42", 1.0),  # right
        ("<answer>41</answer>", "42", 0.0),  # wrong
        ("The answer is 42.", "42", 0.0),  # no answer block
        ("<answer>1,000</answer>", "1000", 1.0),  # thousands separator
        ([{"role": "assistant", "content": "<answer>42</answer>"}], "42", 1.0),  # chat messages
        ("<answer>42</answer>", "", None),  # no gold: no opinion
    ],
)
def test_{{name}}_table(completion, gold, expected):
    assert {{name}}([completion], answer=[gold]) == [expected]


def test_conformance():
    # signature, value types, chat and edge-case completions, determinism,
    # pickling, requires and timeout: see grpo_core.testing.check_reward
    check_reward("{{name}}", answer="42")


def test_docstring_examples():
    import doctest

    assert doctest.testmod({{module}}).failed == 0
''',
    "verifier": '''
"""Tests for the {{name}} verifier: a table of cases, then grpo-core's conformance kit."""

import pytest

from grpo_core import get_verifier, get_verifiers
from grpo_core.testing import check_verifier


def test_plugin_is_installed():
    assert "{{name}}" in get_verifiers()


@pytest.mark.parametrize(
    "gold, pred, equal",
    [
        ("Paris", "paris", True),  # case
        ("New York", "  new   york ", True),  # spaces
        ("Paris", "London", False),  # different
    ],
)
def test_{{name}}_table(gold, pred, equal):
    assert get_verifier("{{name}}").verify(gold=gold, pred=pred).equal is equal


def test_conformance():
    # keyword-only API, verdicts with reasons, never raises or hangs, golds verify: see check_verifier
    check_verifier("{{name}}", golds=["Paris", "New York", "42"])
''',
    "dataset": '''
"""Tests for the {{name}} dataset adapter with grpo-core's conformance kit."""

import pytest

from grpo_core import get_dataset, get_datasets
from grpo_core.testing import check_dataset


def test_plugin_is_installed():
    assert "{{name}}" in get_datasets()


@pytest.mark.parametrize("split", ["train", "test"])
def test_conformance(split):
    # schema, gold answers verify with the named verifier, stable ids: see check_dataset
    check_dataset("{{name}}", split=split)


def test_rows_have_prompts():
    row = get_dataset("{{name}}").load("train")[0]
    assert row["prompt"][-1] == {"role": "user", "content": "Ann has 3 apples and buys 4 more. How many apples does she have?"}
    assert row["answer"] == "7"
''',
}
