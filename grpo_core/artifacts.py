"""What a finished run left behind, as ``eval`` and ``export`` read it.

``grpo-core run --output-dir RUN`` writes ``RUN/run.json`` (provenance: the
base model path, config, rewards, dataset) and ``RUN/adapter/`` (a PEFT LoRA
adapter, the tokenizer with its chat template, a README and a copy of
``run.json``). A full fine-tune saves a whole model in ``RUN/adapter/``
instead. Both commands accept the run folder or the adapter folder itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError


@dataclass
class Trained:
    """A trained artifact: the base model, the adapter (or full model) folder, and the run's provenance."""

    base: str
    adapter_dir: Path
    run: dict[str, Any] = field(default_factory=dict)
    run_dir: Path | None = None
    is_lora: bool = True

    @property
    def adapter_config(self) -> dict:
        p = self.adapter_dir / "adapter_config.json"
        return json.loads(p.read_text()) if p.is_file() else {}

    @property
    def lora_rank(self) -> int | None:
        cfg = self.adapter_config
        ranks = [cfg.get("r") or 0] + list((cfg.get("rank_pattern") or {}).values())
        return max(ranks) or None

    @property
    def system_prompt(self) -> str | None:
        return (self.run.get("config") or {}).get("system_prompt")


def _read_json(p: Path) -> dict:
    try:
        return json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"could not read {p}: {exc}") from None


def resolve_trained(path: str | Path, base: str | None = None) -> Trained:
    """A run folder (``run.json`` + ``adapter/``) or an adapter folder -> :class:`Trained`.

    The base model comes from ``base`` when given, else ``run.json``'s
    ``model_path``, else the adapter's ``base_model_name_or_path``.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise ConfigError(f"{str(p)!r} does not exist; pass a run folder (with run.json and adapter/) or an adapter folder.")
    run_dir = None
    if (p / "adapter").is_dir() and ((p / "adapter" / "adapter_config.json").is_file() or (p / "adapter" / "config.json").is_file()):
        run_dir, adapter_dir = p, p / "adapter"
    elif (p / "adapter_config.json").is_file() or (p / "config.json").is_file():
        adapter_dir = p
        if (p.parent / "run.json").is_file() and p.name == "adapter":
            run_dir = p.parent
    else:
        hint = " (the run has no adapter/ yet: did it finish?)" if (p / "run.json").is_file() else ""
        raise ConfigError(
            f"{str(p)!r} is neither a run folder (run.json + adapter/) nor an adapter folder (adapter_config.json){hint}."
        )
    run: dict = {}
    if run_dir is not None and (run_dir / "run.json").is_file():
        run = _read_json(run_dir / "run.json")
    elif (adapter_dir / "run.json").is_file():
        run = _read_json(adapter_dir / "run.json")
    is_lora = (adapter_dir / "adapter_config.json").is_file()
    if base is None:
        base = run.get("model_path")
        if base and not Path(base).exists() and Path(base).is_absolute():
            base = None  # a run from another machine: fall back to the adapter's own record
    if base is None and is_lora:
        base = _read_json(adapter_dir / "adapter_config.json").get("base_model_name_or_path")
    if base is None and not is_lora:
        base = run.get("model_path") or str(adapter_dir)
    if not base:
        raise ConfigError(f"cannot tell the base model of {str(p)!r}: no run.json model_path and no base_model_name_or_path; pass --model.")
    return Trained(base=str(base), adapter_dir=adapter_dir, run=run, run_dir=run_dir, is_lora=is_lora)


def tokenizer_source(trained: Trained | None, base: str) -> str:
    """The adapter folder carries the tokenizer as trained (chat template included); fall back to the base."""
    if trained is not None and any((trained.adapter_dir / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")):
        return str(trained.adapter_dir)
    return base


def provenance_section(run: dict) -> str:
    """The model-card section of a run's provenance (the same text ``run`` writes into the adapter's README)."""
    if not run:
        return "\n## Training provenance (grpo-core)\n\nNo run.json was found next to this adapter; its provenance is unknown.\n"
    from .train.runinfo import RunInfo

    info = RunInfo.__new__(RunInfo)
    info.data = run
    return info.model_card_section()
