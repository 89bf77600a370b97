"""The named flags of ``grpo-core run``, generated from the settings' definitions.

Each ``RunConfig`` field (and ``LoraSettings`` field) that names ``flags`` in its definition, and
each TRL GRPOConfig field in :data:`~grpo_core.config.trl_fields.TRL_SETTINGS` with flags, becomes
one click option with the definition's help, read by the same check as YAML and ``--set`` values
(:func:`~grpo_core.config.settings.check_setting`), so a bad value is refused with the same message
wherever it comes from. :func:`setting_options` decorates a command; :func:`flag_updates` turns what
click parsed back into setting keys.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import click

from grpo_core.config.reward_selection import parse_option_pairs
from grpo_core.config.settings import LoraSettings, RunConfig, check_setting, setting_rule
from grpo_core.config.trl_fields import flagged_trl_settings, grpo_defaults
from grpo_core.errors import ConfigError


class SettingType(click.ParamType):
    """A flag's value, read and checked as the setting's definition says."""

    def __init__(self, key: str, metavar: str | None = None) -> None:
        self.key = key
        self.name = metavar or _metavar(setting_rule(key))

    def get_metavar(self, *args, **kwargs) -> str:  # as written: choices are case-sensitive
        return self.name

    def convert(self, value, param, ctx):
        if not isinstance(value, str):
            return value
        try:
            return check_setting(self.key, value, "command line", text=True)
        except ConfigError as exc:
            self.fail(str(exc).removeprefix("command line: "), param, ctx)


def _metavar(rule) -> str:
    if rule.choices:
        return "[" + "|".join(map(str, rule.choices)) + "]"
    return "INTEGER" if "int" in rule.kinds and "float" not in rule.kinds else "FLOAT" if "float" in rule.kinds else "TEXT"


@dataclasses.dataclass(frozen=True)
class FlagSpec:
    key: str  #: the setting's key: a RunConfig field, lora.NAME, or a GRPOConfig field
    flags: tuple[str, ...]
    help: str
    multiple: bool = False
    metavar: str | None = None
    default: Any = None  #: shown in --help where grpo-core sets a GRPOConfig default of its own

    @property
    def dest(self) -> str:
        return "setting__" + self.key.replace(".", "__")


def flag_specs() -> list[FlagSpec]:
    """Every generated flag, in --help order: RunConfig's fields in order (LoRA's after ``lora``), then TRL's."""
    specs = []
    for f in dataclasses.fields(RunConfig):
        fields = [(f"lora.{lf.name}", lf) for lf in dataclasses.fields(LoraSettings)] if f.name == "lora" else [(f.name, f)]
        for key, fld in fields:
            if fld.metadata.get("flags"):
                m = fld.metadata
                specs.append(FlagSpec(key, m["flags"], m["help"], m.get("multiple", False), m.get("metavar")))
    defaults = grpo_defaults()
    for name, s in flagged_trl_settings().items():
        specs.append(FlagSpec(name, s.flags, s.help, default=defaults.get(name)))
    return specs


def _option(spec: FlagSpec) -> Callable:
    if spec.multiple:
        return click.option(*spec.flags, spec.dest, multiple=True, metavar=spec.metavar, help=spec.help)
    if "/" in spec.flags[0]:  # --x/--no-x
        return click.option(*spec.flags, spec.dest, default=None, help=spec.help)
    if setting_rule(spec.key).kinds == ("bool",):  # an on-switch with no off form
        return click.option(*spec.flags, spec.dest, is_flag=True, default=None, help=spec.help)
    help_text = spec.help + (f" [grpo-core default: {spec.default}]" if spec.default is not None else "")
    return click.option(*spec.flags, spec.dest, type=SettingType(spec.key, spec.metavar), help=help_text)


def setting_options(command: Callable) -> Callable:
    """Decorate ``command`` with every generated flag (their values arrive as ``setting__KEY`` keywords)."""
    for spec in reversed(flag_specs()):
        command = _option(spec)(command)
    return command


def flag_updates(params: dict[str, Any]) -> dict[str, Any]:
    """The settings the flags gave (``None`` for a flag not given), keyed as ``RunConfig.merged`` takes them."""
    out: dict[str, Any] = {}
    for spec in flag_specs():
        value = params.pop(spec.dest, None)
        if spec.multiple:
            if spec.key == "reward_options":
                value = parse_option_pairs(value or (), spec.flags[0], nested=True) or None
            else:
                value = parse_option_pairs(value or (), spec.flags[0], nested=False) or None
        out[spec.key] = value
    return out
