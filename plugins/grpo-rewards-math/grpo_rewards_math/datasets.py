"""Dataset adapters: ``gsm8k``, ``aime`` and ``math500``.

Offline by default, from the files bundled in ``grpo_rewards_math/data/``
(licences next to them; see ``data/README.md``). Two other sources:

* ``path=...``: a local file (``.jsonl``/``.json``/``.parquet``) or a folder
  holding the split's file (``{split}.jsonl`` or ``{split}.parquet``), in the
  same layout as the hub dataset (read through ``datasets``);
* ``hub=True``: the Hugging Face hub version (``openai/gsm8k``,
  ``HuggingFaceH4/MATH-500``, ``MathArena/aime_2024``/``_2025``), through
  ``datasets`` (imported lazily; needs the network or a warm HF cache).

Every row has ``question`` (turned into a chat ``prompt`` by the core),
``answer`` (canonical gold), ``id`` and ``source``; GSM8K rows also carry
``solution``, a reference reply in the XML format for SFT warm-up.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Iterable

from grpo_core.kit import DatasetAdapter, read_jsonl
from grpo_core import ConfigError
from grpo_core.kit import format_xml

DATA = Path(__file__).parent / "data"

_CALC_RE = re.compile(r"<<[^<>]*>>")


def _read_local(path: str | os.PathLike, split: str) -> Iterable[dict]:
    p = Path(path).expanduser()
    if p.is_dir():
        cands = [p / f"{split}{ext}" for ext in (".jsonl", ".jsonl.gz", ".json", ".parquet")]
        cands += sorted(p.glob(f"{split}-*.parquet")) + sorted(p.glob(f"**/{split}-*.parquet"))
        found = [c for c in cands if c.exists()]
        if not found:
            raise ConfigError(f"no file for split {split!r} in {p} (looked for {split}.jsonl, {split}.parquet, {split}-*.parquet).")
        p = found[0]
    if not p.exists():
        raise ConfigError(f"dataset path {p} does not exist.")
    if p.name.endswith((".jsonl", ".jsonl.gz")):
        return list(read_jsonl(p))
    from datasets import load_dataset

    kind = "parquet" if p.suffix == ".parquet" else "json"
    return list(load_dataset(kind, data_files=str(p), split="train"))


#: the loading options every adapter here takes (besides the core's own), with what each does
SOURCE_OPTIONS = {"path": "a local file or folder", "hub": "True to load from the Hugging Face hub"}


def pick_source(
    dataset: str,
    options: dict[str, Any],
    *,
    stem: str,
    bundled: Path,
    bundled_source: str,
    hub_repo: str,
    hub_split: str,
    hub_source: str,
    hub_config: str | None = None,
) -> tuple[Iterable[dict], str]:
    """The raw rows of one part of ``dataset`` and the ``source`` label to give them.

    ``options`` are what the adapter's ``rows`` got besides the split: any name
    not in :data:`SOURCE_OPTIONS` is a :class:`ConfigError` that lists the valid
    ones. Then ``path=`` (a file, or a folder holding ``{stem}.jsonl`` or
    ``{stem}.parquet``) wins over ``hub=True`` (``hub_repo``/``hub_config`` at
    ``hub_split``, through ``datasets``, imported only here); with neither, the
    ``bundled`` JSON Lines file. Everything that differs between datasets comes
    in as the keyword arguments.
    """
    unknown = sorted(set(options) - set(SOURCE_OPTIONS))
    if unknown:
        valid = "; ".join(f"{k}= ({v})" for k, v in SOURCE_OPTIONS.items())
        raise ConfigError(f"{dataset}: unknown options {unknown}; the valid options are {valid}.")
    path = options.get("path")
    if path:
        return _read_local(path, stem), f"{path}:{stem}"
    if options.get("hub"):
        from datasets import load_dataset

        args = (hub_repo, hub_config) if hub_config else (hub_repo,)
        return list(load_dataset(*args, split=hub_split)), hub_source
    return read_jsonl(bundled), bundled_source


def gsm8k_gold(answer_text: str) -> str:
    """The number after ``####`` in a GSM8K worked solution, separators removed."""
    tail = answer_text.rsplit("####", 1)[-1].strip()
    return tail.replace(",", "").replace("$", "").strip()


def gsm8k_solution(answer_text: str) -> str:
    """The worked solution as a reference XML reply, ``<<…>>`` annotations stripped."""
    work, _, _ = answer_text.rpartition("####")
    work = _CALC_RE.sub("", work).strip()
    return format_xml(work, gsm8k_gold(answer_text))


class Gsm8kAdapter(DatasetAdapter):
    name = "gsm8k"
    description = "GSM8K grade-school math (openai/gsm8k): train 7473, test 1319; bundled"
    verifier = "gsm8k"
    splits = ("train", "test")
    default_eval_split = "test"

    def rows(self, split: str, **options: Any) -> Iterable[dict]:
        raw, source = pick_source(
            self.name, options, stem=split,
            bundled=DATA / "gsm8k" / (f"{split}.jsonl.gz" if split == "train" else f"{split}.jsonl"),
            bundled_source=f"gsm8k/{split}",
            hub_repo="openai/gsm8k", hub_config="main", hub_split=split, hub_source=f"openai/gsm8k/{split}",
        )
        for i, r in enumerate(raw):
            yield {
                "question": r["question"],
                "answer": gsm8k_gold(r["answer"]),
                "id": f"gsm8k-{split}-{i}",
                "source": source,
                "solution": gsm8k_solution(r["answer"]),
            }


class AimeAdapter(DatasetAdapter):
    name = "aime"
    description = "AIME 2024 and 2025 (30 problems each; MathArena); bundled"
    verifier = "aime"
    splits = ("all", "2024", "2025")
    default_eval_split = "all"

    def rows(self, split: str, **options: Any) -> Iterable[dict]:
        years = ("2024", "2025") if split == "all" else (split,)
        for year in years:
            raw, source = pick_source(
                self.name, options, stem=f"aime_{year}",
                bundled=DATA / "aime" / f"aime_{year}.jsonl", bundled_source=f"aime/{year}",
                hub_repo=f"MathArena/aime_{year}", hub_split="train", hub_source=f"MathArena/aime_{year}",
            )
            for i, r in enumerate(raw):
                rid = r.get("id") or f"{year}-{r.get('problem_idx', i + 1)}"
                yield {"question": r["problem"], "answer": str(r["answer"]).strip(), "id": f"aime-{rid}", "source": source}


class Math500Adapter(DatasetAdapter):
    name = "math500"
    description = "MATH-500 (OpenAI prm800k test split, 500 problems); bundled"
    verifier = "math"
    splits = ("test",)
    default_eval_split = "test"

    def rows(self, split: str, **options: Any) -> Iterable[dict]:
        raw, source = pick_source(
            self.name, options, stem=split,
            bundled=DATA / "math500" / "test.jsonl", bundled_source="math500/test",
            hub_repo="HuggingFaceH4/MATH-500", hub_split=split, hub_source=f"HuggingFaceH4/MATH-500/{split}",
        )
        for i, r in enumerate(raw):
            yield {
                "question": r["problem"],
                "answer": r["answer"],
                "id": r.get("unique_id") or f"math500-{i}",
                "source": source,
                "subject": r.get("subject", ""),
                "level": int(r.get("level") or 0),
            }
