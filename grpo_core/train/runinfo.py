"""``run.json``: everything needed to know what a run was, and to redo it."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

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
        d = self.data
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
