"""Your own data without a plugin: ``--dataset jsonl:path/to/file.jsonl``, ``parquet:data.parquet``, or
``hf:path/to/folder`` (a folder written by ``datasets``' ``save_to_disk``).

The part after the colon is the file (or folder), so the spec names it inline; it may also come as the
``path`` dataset option. Every row needs a question, a gold answer and an id; when your columns have other
names, map them with the dataset options ``question=``, ``answer=`` and ``id=`` (``adapter.load(split,
**options)``). A missing ``id`` column may instead be numbered: ``id=row`` numbers the rows from 0.

The verifier that checks the answers is the ``verifier`` option. Its default is ``math`` when the math
plugin (grpo-rewards-math) is installed, for it reads numbers, fractions and LaTeX; else ``arithmetic``,
the built-in integer verifier.

These adapters have one split each (the file), so a run on them evaluates on ``--eval-dataset`` if given
and otherwise skips the before/after evaluation, saying so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

from grpo_core import ConfigError, get_verifier, hookimpl
from grpo_core.kit import DatasetAdapter, read_jsonl

#: the options that rename a column: option -> the column every row must end up with
COLUMN_OPTIONS = ("question", "answer", "id")
#: numbers the rows (0, 1, ...) instead of reading an id column: ``id=row``
ROW_NUMBER = "row"


def default_verifier() -> str:
    """``math`` when the math plugin is installed, else the built-in ``arithmetic``."""
    try:
        get_verifier("math")
    except KeyError:  # UnknownNameError: the math plugin is not installed
        return "arithmetic"
    return "math"


class FileDataset(DatasetAdapter):
    """Rows from a local file or folder, with its columns mapped to question, answer and id."""

    name = "jsonl"
    description = "your own JSON Lines file: jsonl:path/to/file.jsonl (options question=, answer=, id=, verifier=)"
    file_kind = "a JSON Lines file"

    def __init__(self, path: str | None = None, verifier: str | None = None) -> None:
        self.path = path
        self._verifier = verifier

    @property
    def verifier(self) -> str:  # type: ignore[override]  # chosen per load (the verifier option), else the default
        return self._verifier or default_verifier()

    @property
    def splits(self) -> tuple[str, ...]:  # type: ignore[override]  # the one file is the one split
        return (self.path,) if self.path else ("train",)

    def load(self, split: str | None = None, **kwargs: Any):
        path = kwargs.pop("path", None) or split
        if not path or path == "train" and not Path("train").exists():
            raise ConfigError(f"dataset {self.name!r} needs the file: --dataset {self.name}:path/to/{self._example()}.")
        if not Path(path).expanduser().exists():
            raise ConfigError(f"dataset {self.name}:{path}: no such file or folder {path!r}.")
        one = type(self)(str(path), kwargs.pop("verifier", None) or self._verifier)
        return DatasetAdapter.load(one, str(path), **kwargs)

    def rows(self, split: str, **options: Any) -> Iterator[dict]:
        unknown = set(options) - set(COLUMN_OPTIONS)
        if unknown:
            raise ConfigError(f"dataset {self.name}: unknown option(s) {', '.join(sorted(unknown))}; "
                              f"valid: path, verifier, {', '.join(COLUMN_OPTIONS)}.")
        mapping = {target: options.get(target, target) for target in COLUMN_OPTIONS}
        for index, raw in enumerate(self.raw_rows(Path(split).expanduser())):
            row = dict(raw)
            for target, column in mapping.items():
                if target == "id" and column == ROW_NUMBER:
                    row["id"] = str(index)
                elif column != target and column in row:
                    row[target] = row.pop(column)
            yield row

    def raw_rows(self, path: Path) -> Iterator[dict]:
        yield from read_jsonl(path)

    def _example(self) -> str:
        return "file.jsonl"


class ParquetDataset(FileDataset):
    name = "parquet"
    description = "your own Parquet file: parquet:path/to/file.parquet (options question=, answer=, id=, verifier=)"

    def raw_rows(self, path: Path) -> Iterator[dict]:
        from datasets import Dataset  # deferred: heavy (datasets, pyarrow)

        yield from Dataset.from_parquet(str(path))

    def _example(self) -> str:
        return "file.parquet"


class DiskDataset(FileDataset):
    name = "hf"
    description = "a local Hugging Face datasets folder (save_to_disk): hf:path/to/folder[/split] (options question=, answer=, id=, verifier=)"

    def raw_rows(self, path: Path) -> Iterator[dict]:
        from datasets import DatasetDict, load_from_disk  # deferred: heavy (datasets, pyarrow)

        data = load_from_disk(str(path))
        if isinstance(data, DatasetDict):
            raise ConfigError(f"dataset hf:{path} holds the splits {', '.join(data)}; name one: --dataset hf:{path}/{next(iter(data))}.")
        yield from data

    def _example(self) -> str:
        return "folder"


@hookimpl
def register_datasets(register):
    register(FileDataset())
    register(ParquetDataset())
    register(DiskDataset())
