"""The base class for dataset adapters, and ``name:split`` parsing.

An adapter turns some source of problems into a ``datasets.Dataset`` with the
columns every grpo-core reward can rely on:

* ``prompt``: chat messages (system prompt + question);
* ``answer``: the canonical gold answer string;
* ``id``: a stable identifier;
* ``source``: where the row came from (``gsm8k/test``, a file path, ...);
* ``verifier``: the name of the verifier that checks ``answer`` (rewards use it);
* optionally ``solution``: a reference reply in the reward format (for SFT).

Subclasses implement :meth:`DatasetAdapter.rows`. ``load`` adds the prompt,
checks every gold answer with the adapter's verifier, and drops, reports or
refuses rows whose gold does not parse.
"""

from __future__ import annotations

import gzip
import hashlib
import inspect
import json
import sys
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from grpo_core.errors import ConfigError, PreflightError
from grpo_core.kit.prompts import XML_SYSTEM_PROMPT, chat_prompt

GOLD_POLICIES = ("drop", "report", "error")

_verifier_by_name: Callable[[str], Any] | None = None


def use_verifier_lookup(lookup: Callable[[str], Any]) -> None:
    """Set how :meth:`DatasetAdapter.load` finds its verifier by name (``grpo_core.plugins`` sets it on import)."""
    global _verifier_by_name
    _verifier_by_name = lookup


def parse_dataset_spec(spec: str) -> tuple[str, str | None]:
    """``"gsm8k:test"`` -> ``("gsm8k", "test")``; ``"gsm8k"`` -> ``("gsm8k", None)``."""
    name, _, split = spec.partition(":")
    if not name:
        raise ConfigError(f"dataset {spec!r} has no name; write NAME or NAME:SPLIT, e.g. gsm8k:test.")
    return name, (split or None)


#: what every row of every adapter holds
REQUIRED_COLUMNS = ("question", "answer", "id")


class DatasetAdapter:
    """The base of dataset adapters: implement :meth:`rows`; :meth:`load` builds the ``datasets.Dataset``."""

    #: registry name
    name: str = ""
    description: str = ""
    #: name of the verifier that checks this dataset's answers
    verifier: str = ""
    #: the splits this adapter can load; the first is the default for training
    splits: tuple[str, ...] = ("train", "test")
    default_eval_split: str | None = None
    system_prompt: str = XML_SYSTEM_PROMPT
    #: replies ``grpo-core score --gold-format`` builds from each row: name -> (what it is, builder(row));
    #: the first is the perfect reply. None: the core's XML variants (:data:`grpo_core.rewards.scoring.GOLD_VARIANTS`),
    #: which fit datasets whose replies end in an ``<answer>`` block
    gold_variants: dict | None = None

    def rows(self, split: str, **options: Any) -> Iterable[dict]:
        """Yield dicts with at least ``question``, ``answer`` and ``id``."""
        raise NotImplementedError

    def load(
        self,
        split: str | None = None,
        *,
        system_prompt: str | None = None,
        limit: int | None = None,
        gold_policy: str = "drop",
        verbose: bool = True,
        **options: Any,
    ):
        """Load ``split`` as a ``datasets.Dataset`` (see the module docstring)."""
        split = split or self.splits[0]
        if split not in self.splits:
            raise ConfigError(f"dataset {self.name!r} has no split {split!r}; choose one of {', '.join(self.splits)}.")
        if gold_policy not in GOLD_POLICIES:
            raise ConfigError(f"gold_policy must be one of {GOLD_POLICIES}, got {gold_policy!r}.")
        sp = self.system_prompt if system_prompt is None else system_prompt
        records = []
        for r in self.rows(split, **options):
            self._check_columns(r, split, len(records))
            records.append(r)
            if limit is not None and len(records) >= limit:
                break
        records, bad = self._check_gold(records)
        if bad:
            msg = (
                f"{self.name}:{split}: {len(bad)} of {len(records) + len(bad)} gold answers do not verify against "
                f"themselves with verifier {self.verifier!r} (first: id={bad[0]['id']!r} answer={bad[0]['answer']!r})"
            )
            if gold_policy == "error":
                raise PreflightError(msg + ". Fix the data, or pass gold_policy='drop' to skip those rows.")
            if verbose:
                print(f"grpo-core: {msg}; {'dropped' if gold_policy == 'drop' else 'kept'}.", file=sys.stderr)
            if gold_policy == "report":
                records = records + bad
        from datasets import Dataset  # deferred: heavy (datasets, pyarrow)

        rows = []
        for r in records:
            row = {
                "prompt": chat_prompt(r["question"], sp),
                "answer": str(r["answer"]),
                "id": str(r["id"]),
                "source": r.get("source", f"{self.name}/{split}"),
                "verifier": self.verifier,
            }
            for k, v in r.items():
                if k not in row and k != "question":
                    row[k] = v
            rows.append(row)
        return Dataset.from_list(rows)

    def _check_columns(self, row: Any, split: str, index: int) -> None:
        """A row without ``question``, ``answer`` or ``id``: an error naming the column, the dataset and the adapter."""
        missing = [c for c in REQUIRED_COLUMNS if not isinstance(row, dict) or c not in row]
        if not missing:
            return
        has = f"it has {', '.join(sorted(map(str, row)))}" if isinstance(row, dict) else f"it is a {type(row).__name__}"
        adapter = f"{type(self).__module__}.{type(self).__qualname__}"
        raise ConfigError(
            f"dataset {self.name}:{split}: row {index} has no {', '.join(repr(c) for c in missing)} column ({has}). "
            f"The dataset adapter {self.name!r} ({adapter}) must yield {', '.join(REQUIRED_COLUMNS)} in every row"
            + (f"; with the jsonl adapter, name your column with --dataset-option {missing[0]}=YOUR_COLUMN." if self.name == "jsonl" else ".")
        )

    def _check_gold(self, records: list[dict]) -> tuple[list[dict], list[dict]]:
        if not self.verifier:
            return records, []

        if _verifier_by_name is None:
            raise ConfigError("no verifier lookup is set; import grpo_core (it loads the plugin registries) before loading a dataset.")
        v = _verifier_by_name(self.verifier)
        golds = [str(r["answer"]) for r in records]
        verdicts = v.verify_batch(list(zip(golds, golds)))
        good, bad = [], []
        for r, vd in zip(records, verdicts):
            (good if vd.equal else bad).append(r)
        return good, bad


def check_dataset_options(adapter, options: dict) -> None:
    """``dataset_options`` must be keywords the adapter's ``rows`` (or its own ``load``) takes; refused before loading."""
    if not options:
        return
    target = adapter.rows if isinstance(adapter, DatasetAdapter) else adapter.load
    params = list(inspect.signature(target).parameters.values())
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return
    takes = [p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name != "split"]
    unknown = sorted(set(options) - set(takes))
    if unknown:
        name = getattr(adapter, "name", type(adapter).__name__)
        raise PreflightError(f"dataset {name!r} takes no option {', '.join(map(repr, unknown))}; "
                             f"its options: {', '.join(takes) or 'none'} (--dataset-option KEY=VALUE, YAML dataset_options:).")


def content_hash(rows: Iterable[dict]) -> str:
    """A stable hash of dataset rows (for run.json provenance)."""
    h = hashlib.sha256()
    for r in rows:
        h.update(json.dumps(r, sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


def read_jsonl(path) -> Iterator[dict]:
    """The objects of a JSON Lines file (``.gz`` compressed or plain); blank lines are skipped."""
    opener = gzip.open if Path(path).suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line:
                yield json.loads(line)
