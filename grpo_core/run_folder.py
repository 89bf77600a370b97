"""What a finished run left behind, as ``eval`` and ``export`` read it.

``grpo-core run --output-dir RUN`` writes ``RUN/run.json`` (provenance: the
base model path, config, rewards, dataset) and ``RUN/adapter/`` (a PEFT LoRA
adapter, the tokenizer with its chat template, a README and a copy of
``run.json``). A full fine-tune saves a whole model in ``RUN/adapter/``
instead. Both commands accept the run folder or the adapter folder itself.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from grpo_core.errors import ConfigError


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
    return model_card_section(run)


def model_card_section(run: dict[str, Any]) -> str:
    """The model-card section of a run's provenance, from its run.json data."""
    d = run
    rewards = ", ".join(f"{r['name']}×{r['weight']:g} ({r['distribution'] or r['plugin']} {r['version'] or ''})".strip() for r in d.get("rewards", []))
    ds = d.get("dataset", {})
    return (
        "\n## Training provenance (grpo-core)\n\n"
        f"- base model: `{d.get('model')}`\n"
        f"- backend: {d.get('backend')}\n"
        f"- dataset: `{ds.get('spec')}` ({ds.get('rows')} rows, content hash `{ds.get('content_hash')}`)\n"
        f"- rewards: {rewards}\n"
        f"- steps: {d.get('global_step')}\n"
        f"- libraries: {', '.join(f'{k} {v}' for k, v in d.get('libraries', {}).items() if v)}\n"
        f"- git revision: {d.get('git_revision')}\n\n"
        "```json\n" + json.dumps(d.get("config", {}), indent=2, default=str) + "\n```\n"
    )


LIBRARIES = ("grpo-core", "torch", "transformers", "trl", "peft", "datasets", "accelerate", "unsloth", "vllm", "bitsandbytes")


def library_versions() -> dict[str, str | None]:
    out = {}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_revision(start: Path | None = None) -> str | None:
    try:
        res = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=start or Path.cwd(), capture_output=True, text=True, timeout=5
        )
        if res.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=start or Path.cwd(), capture_output=True, text=True, timeout=5)
        return res.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except Exception:  # noqa: BLE001
        return None


def reward_records(engine) -> list[dict[str, Any]]:
    return [
        {
            "name": r.name,
            "qualified_name": r.spec.qualified_name,
            "weight": r.weight,
            "distribution": r.spec.provenance.distribution,
            "version": r.spec.provenance.version,
            "plugin": r.spec.provenance.plugin,
            "cpu_bound": r.spec.cpu_bound,
            "timeout": r.timeout,
            "options": dict(r.spec.options),
        }
        for r in engine.rewards
    ]


def is_main_process() -> bool:
    """True in a single process, and in the rank-0 process under `accelerate launch` / `torchrun`."""
    return int(os.environ.get("RANK", "0")) == 0


class RunInfo:
    """run.json. Under ``accelerate launch`` only the main process (RANK 0) writes files."""

    def __init__(self, output_dir: Path) -> None:
        self.enabled = is_main_process()
        self.path = Path(output_dir) / "run.json"
        self.data: dict[str, Any] = {
            "status": "starting",
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "libraries": library_versions(),
            "git_revision": git_revision(),
        }

    def update(self, **fields: Any) -> None:
        self.data.update(fields)
        self.write()

    def write(self) -> None:
        if not self.enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.data, indent=2, default=str))
        tmp.replace(self.path)

    def model_card_section(self) -> str:
        return model_card_section(self.data)


def write_adapter_card(adapter_dir: Path, info: RunInfo) -> None:
    """Append the provenance section to the adapter's README and copy run.json beside it."""
    readme = adapter_dir / "README.md"
    text = readme.read_text() if readme.exists() else "# grpo-core adapter\n"
    readme.write_text(text.rstrip() + "\n" + info.model_card_section())
    (adapter_dir / "run.json").write_text(info.path.read_text())
