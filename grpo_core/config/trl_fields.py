"""TRL ``GRPOConfig``'s fields as grpo-core checks them, without importing trl.

``grpo_fields.json`` (written by ``scripts/gen_grpo_fields.py`` from the pinned trl, and checked
against the installed one by ``tests/test_config.py``) holds every field's kinds of value, choices
and default; :data:`TRL_SETTINGS` adds what grpo-core knows of some of them: a range, a named flag
of ``grpo-core run``, and grpo-core's own default where it differs from TRL's. Together they give
each field one :class:`~grpo_core.config.values.Rule`.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grpo_core.config.values import Rule

FIELDS_FILE = Path(__file__).with_name("grpo_fields.json")
TRL_DEFAULT = object()  #: a setting whose default is TRL's own


@dataclass(frozen=True)
class TrlSetting:
    """What grpo-core adds to one GRPOConfig field."""

    help: str = ""
    flags: tuple[str, ...] = ()  #: the field's named flags on `grpo-core run` (none: --set / YAML only)
    default: Any = TRL_DEFAULT  #: grpo-core's default, where it differs from TRL's
    minimum: float | None = None
    above: float | None = None
    maximum: float | None = None
    below: float | None = None
    special: tuple = ()
    note: str = ""
    backends: tuple[str, ...] = field(default=("trl", "unsloth"))


_STEPS_NOTE = "train num_train_epochs epochs instead"
#: The GRPOConfig fields grpo-core gives a flag, a default of its own, or a range. In --help order.
TRL_SETTINGS: dict[str, TrlSetting] = {
    "max_steps": TrlSetting("Optimizer steps.", ("--max-steps",), minimum=1, special=(-1,), note=_STEPS_NOTE),
    "learning_rate": TrlSetting("Learning rate.", ("--learning-rate", "--lr"), above=0),
    "num_generations": TrlSetting("Completions per prompt (the group size).", ("--num-generations",), minimum=2),
    "max_completion_length": TrlSetting("Longest completion, in tokens.", ("--max-completion-length",), minimum=1),
    "per_device_train_batch_size": TrlSetting(
        "Completions per device per step (a multiple of --num-generations).", ("--per-device-train-batch-size",), minimum=1),
    "save_steps": TrlSetting("Save a checkpoint every N optimizer steps (a number below 1: that share of the run's steps).",
                             ("--save-steps",), default=50, above=0),
    "save_total_limit": TrlSetting("Checkpoints kept in --output-dir; older ones are deleted (YAML null or --set save_total_limit=null: keep all).",
                                   ("--save-total-limit",), default=2, minimum=1),
    "logging_steps": TrlSetting("Log every N optimizer steps.", default=1, above=0),
    "report_to": TrlSetting("Where TRL reports metrics (grpo-core prints its own progress line).", default="none"),
    "disable_tqdm": TrlSetting("TRL's progress bar (grpo-core prints its own progress line).", default=True),
    "beta": TrlSetting(minimum=0),
    "temperature": TrlSetting(above=0),
    "top_p": TrlSetting(above=0, maximum=1),
    "gradient_accumulation_steps": TrlSetting(minimum=1),
    "num_iterations": TrlSetting(minimum=1),
    "steps_per_generation": TrlSetting(minimum=1),
    "generation_batch_size": TrlSetting(minimum=1),
    "num_train_epochs": TrlSetting(above=0),
    "eval_steps": TrlSetting(above=0),
    "warmup_steps": TrlSetting(minimum=0),
    "weight_decay": TrlSetting(minimum=0),
    "max_grad_norm": TrlSetting(minimum=0),
    "adam_beta1": TrlSetting(minimum=0, below=1),
    "adam_beta2": TrlSetting(minimum=0, below=1),
    "adam_epsilon": TrlSetting(above=0),
    "epsilon": TrlSetting(minimum=0),
    "epsilon_high": TrlSetting(minimum=0),
    "seed": TrlSetting(minimum=0),
    "dataloader_num_workers": TrlSetting(minimum=0),
    "vllm_gpu_memory_utilization": TrlSetting(above=0, maximum=1),
}


@functools.lru_cache(maxsize=1)
def _table() -> dict:
    return json.loads(FIELDS_FILE.read_text(encoding="utf-8"))


def pinned_trl_version() -> str:
    """The trl version the field list was written from."""
    return _table()["trl"]


def grpo_field_names() -> set[str]:
    """GRPOConfig's field names (no trl import)."""
    return set(_table()["fields"])


def trl_default(name: str) -> Any:
    """TRL's own default of a GRPOConfig field."""
    return _table()["fields"][name]["default"]


def trl_rule(name: str) -> Rule:
    """The rule of GRPOConfig field ``name`` (a known field)."""
    entry = _table()["fields"][name]
    extra = TRL_SETTINGS.get(name, TrlSetting())
    choices = tuple(entry["choices"]) if "choices" in entry else None
    return Rule(tuple(entry["kinds"]), minimum=extra.minimum, above=extra.above, maximum=extra.maximum, below=extra.below,
                choices=choices, special=extra.special, note=extra.note)


def grpo_defaults() -> dict[str, Any]:
    """The GRPOConfig values grpo-core sets unless the run sets them (documented in docs/config.md)."""
    return {name: s.default for name, s in TRL_SETTINGS.items() if s.default is not TRL_DEFAULT}


def flagged_trl_settings() -> dict[str, TrlSetting]:
    """The GRPOConfig fields with a named flag of `grpo-core run`."""
    return {name: s for name, s in TRL_SETTINGS.items() if s.flags}
