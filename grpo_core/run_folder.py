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
import shutil
import socket
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

    @property
    def status(self) -> str | None:
        """The run's status as recorded, ``died`` when its process is gone while run.json says it runs."""
        return effective_status(self.run)


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


def failure_summary(exc: BaseException) -> str:
    """run.json's ``error``: the exception's type and message; in a run of several processes, which one saw it."""
    processes = int(os.environ.get("WORLD_SIZE", "1"))
    where = f"process {os.environ.get('RANK', '0')} of {processes}: " if processes > 1 else ""
    return f"{where}{type(exc).__name__}: {exc}"[:500]


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


class RunInfo:
    """run.json. Under ``accelerate launch`` only the main process (RANK 0) writes files.

    It records the writing process (``pid``, ``host``), so that a reader can tell a run that is still
    going from one whose process died (:func:`effective_status`). ``resumed=True`` keeps everything the
    folder's run.json already holds (``started``, evaluations, warnings) and appends this resume to its
    ``resumes`` list. ``filename`` lets a dry run write ``preflight.json`` instead; ``enabled=False``
    writes nothing at all.
    """

    def __init__(self, output_dir: Path, *, resumed: bool = False, filename: str = "run.json", enabled: bool = True) -> None:
        self.enabled = enabled and is_main_process()
        self.path = Path(output_dir) / filename
        previous = read_run_json(Path(output_dir)) if resumed else {}
        self.data: dict[str, Any] = {
            **previous,
            "status": "starting",
            "started": previous.get("started") or _now(),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "libraries": library_versions(),
            "git_revision": git_revision(),
            "pid": os.getpid(),
            "host": socket.gethostname(),
        }
        if resumed:
            resume = {"at": _now(), "from_step": previous.get("global_step"), "previous_status": effective_status(previous)}
            if "error" in previous:  # the error belongs to the process that failed, not to the resumed run
                resume["previous_error"] = self.data.pop("error")
            self.data["resumes"] = [*previous.get("resumes", []), resume]

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


def run_model_card(run: dict[str, Any]) -> str:
    """grpo-core's model card of a run, from its run.json: what was trained, how, how well, how to use it."""
    ds = run.get("dataset") or {}
    evaluation = run.get("evaluation") or {}
    lines = [
        "---",
        f"base_model: {run.get('model')}",
        "library_name: peft" if (run.get("config") or {}).get("full_finetune") is not True else "library_name: transformers",
        "tags: [grpo, grpo-core]",
        "---",
        "",
        f"# GRPO adapter for `{run.get('model')}`",
        "",
        f"Trained by grpo-core with GRPO on `{ds.get('spec')}` ({ds.get('rows')} rows) for {run.get('global_step')} steps "
        f"({run.get('status')}), {run.get('backend')} backend.",
    ]
    accuracy = {stage: evaluation[stage]["accuracy"] for stage in ("before", "after")
                if isinstance(evaluation.get(stage), dict) and isinstance(evaluation[stage].get("accuracy"), (int, float))}
    if accuracy:
        lines += ["", f"Held-out evaluation on `{evaluation.get('dataset')}` (greedy):", "", "| | accuracy |", "|---|---|"]
        lines += [f"| {stage} | {value:.1%} |" for stage, value in accuracy.items()]
    lines += [
        "",
        "## Use",
        "",
        "```bash",
        "grpo-core eval RUN_FOLDER        # accuracy on a held-out split",
        "grpo-core export RUN_FOLDER      # merged weights, GGUF, or the hub",
        "```",
    ]
    return "\n".join(lines) + "\n" + model_card_section(run)


def write_adapter_card(adapter_dir: Path, info: RunInfo) -> None:
    """grpo-core's model card (from run.json) in the adapter folder and the run folder, and run.json beside it.

    The cards replace what the libraries wrote there (PEFT's and TRL's templates), which know neither the
    base model nor the run."""
    card = run_model_card(info.data)
    (adapter_dir / "README.md").write_text(card)
    (info.path.parent / "README.md").write_text(card)
    (adapter_dir / "run.json").write_text(info.path.read_text())


#: statuses a run.json holds while its process works on it; read with :func:`effective_status`
LIVE_STATUSES = ("starting", "loading", "running")
#: what ``run`` writes into a run folder (``--overwrite`` clears these, and nothing else)
#: what ``grpo-core launch`` writes into a run's folder before the run starts (the accelerate config it launches
#: with, the vLLM server's log): a folder holding only these (and a dry run's preflight.json) takes a new run
LAUNCH_FILES = ("accelerate_config.yaml", "vllm_server.log")
RUN_FILES = ("run.json", "report.md", "rewards.png", "log_history.json", "eval.jsonl", "preflight.json", "README.md")
RUN_FOLDERS = ("adapter", "sft")


def read_run_json(run_dir: Path) -> dict[str, Any]:
    """The folder's run.json, or ``{}`` when it has none."""
    p = Path(run_dir) / "run.json"
    return _read_json(p) if p.is_file() else {}


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, owned by someone else
    return True


def effective_status(run: dict[str, Any]) -> str | None:
    """run.json's status as a reader should take it: ``died`` when it says the run is live but the
    process that wrote it (``pid`` on this ``host``) no longer exists."""
    status = run.get("status")
    if status in LIVE_STATUSES and run.get("host") == socket.gethostname() and isinstance(run.get("pid"), int):
        if not _process_alive(run["pid"]):
            return "died"
    return status


def is_run_folder(path: Path) -> bool:
    """A folder a ``run`` wrote: run.json, an adapter or a trainer checkpoint."""
    p = Path(path)
    return (p / "run.json").is_file() or (p / "adapter").is_dir() or any(p.glob("checkpoint-*"))


def check_output_dir(path: str | Path, *, resume: bool = False, overwrite: bool = False, dry_run: bool = False) -> Path:
    """Refuse an output folder that would lose or mix results, before anything else runs.

    A file, or a path under a file, is refused. ``resume`` needs a run folder; a plain run needs a new
    or empty folder, or ``overwrite`` (which clears the run's files: :func:`clear_run_files`). A dry run
    writes nothing into an existing run, so it passes any folder.
    """
    p = Path(path).expanduser()
    for candidate in (p, *p.parents):
        if candidate.exists() and not candidate.is_dir():
            where = "is a file" if candidate == p else f"lies under {str(candidate)!r}, which is a file"
            raise ConfigError(f"--output-dir {str(p)!r} {where}; pass a folder (a new one for a new run).")
    if resume:
        if overwrite:
            raise ConfigError("--resume and --overwrite contradict each other: --resume continues the run in --output-dir, --overwrite clears it.")
        if not is_run_folder(p):
            raise ConfigError(f"--resume: {str(p)!r} holds no run (no run.json and no checkpoint); run without --resume to start one.")
        return p
    if dry_run or not p.exists() or not any(p.iterdir()):
        return p
    if not is_run_folder(p):
        if set(f.name for f in p.iterdir()) <= {"preflight.json", *LAUNCH_FILES}:
            return p  # only a dry run's record, or what the launcher wrote for this run
        raise ConfigError(f"--output-dir {str(p)!r} is not empty and is not a run folder; pass a new or empty folder.")
    if overwrite:
        clear_run_files(p)
        return p
    status = effective_status(read_run_json(p)) or "unfinished, no run.json"
    raise ConfigError(
        f"--output-dir {str(p)!r} already holds a run ({status}). Continue it with --resume, "
        "or start again with --overwrite (which deletes its run.json, adapter, checkpoints and report first), "
        "or pass another --output-dir."
    )


def clear_run_files(run_dir: Path) -> list[str]:
    """Delete what ``run`` writes into ``run_dir`` (run files, adapter/, checkpoints); other files stay."""
    p = Path(run_dir)
    removed = []
    for child in sorted(p.iterdir()):
        if child.is_dir() and (child.name in RUN_FOLDERS or child.name.startswith("checkpoint-")):
            shutil.rmtree(child)
        elif child.is_file() and (child.name in RUN_FILES or child.name.startswith("trace-step-")):
            child.unlink()
        else:
            continue
        removed.append(child.name)
    return removed


def list_runs(root: str | Path) -> list[dict[str, Any]]:
    """Every run folder under ``root`` (``root`` itself included): path, status (``died`` read as such), steps, accuracy."""
    root = Path(root)
    folders = sorted({p.parent for p in root.rglob("run.json") if p.parent.name != "adapter"})
    out = []
    for folder in folders:
        try:
            run = read_run_json(folder)
        except ConfigError as exc:
            out.append({"path": str(folder), "status": "unreadable", "error": str(exc)})
            continue
        evaluation = run.get("evaluation") or {}
        out.append({
            "path": str(folder),
            "status": effective_status(run),
            "steps": run.get("global_step"),
            "max_steps": (run.get("grpo_config") or {}).get("max_steps"),
            "accuracy_before": (evaluation.get("before") or {}).get("accuracy"),
            "accuracy_after": (evaluation.get("after") or {}).get("accuracy"),
            "started": run.get("started"),
            "error": run.get("error"),
        })
    return out


def last_checkpoint(run_dir: str | Path) -> str | None:
    """The newest complete trainer checkpoint (``checkpoint-N`` whose trainer_state.json, written last, reads
    back): a process killed while saving leaves a partial folder, which ``--resume`` must not pick."""
    p = Path(run_dir)
    if not p.is_dir():
        return None
    steps = []
    for child in p.glob("checkpoint-*"):
        step = child.name.removeprefix("checkpoint-")
        if not (step.isdigit() and child.is_dir()):
            continue
        try:
            json.loads((child / "trainer_state.json").read_text())
        except (OSError, json.JSONDecodeError):
            continue
        steps.append(int(step))
    return str(p / f"checkpoint-{max(steps)}") if steps else None
