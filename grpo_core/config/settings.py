"""Run configuration: grpo-core's own settings plus every TRL ``GRPOConfig`` field.

A run is described by :class:`RunConfig`. Settings come, in increasing
priority, from a preset (``--preset``), a YAML file (``--config run.yaml``),
named CLI flags, and ``--set FIELD=VALUE`` pairs. Any key that is not a
``RunConfig`` field but is a ``GRPOConfig`` field goes to :attr:`RunConfig.grpo`
and is passed to TRL unchanged; anything else is an error that lists the
close matches. User settings are never rewritten silently: pre-flight refuses
impossible combinations instead.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from grpo_core.config.presets import get_preset
from grpo_core.config.reward_selection import RewardSelection
from grpo_core.config.trl_fields import grpo_field_names, trl_rule
from grpo_core.config.values import Rule, kinds_of
from grpo_core.errors import ConfigError

BACKENDS = ("auto", "unsloth", "trl")
# Settings that older notebooks use and the tested versions renamed or removed.
RENAMED = {
    "warmup_ratio": "use warmup_steps instead: in transformers 5 a float below 1 is a ratio of the total steps (warmup_steps=0.1).",
}
OVERLONG_POLICIES = ("drop", "truncate", "error")
ERROR_POLICIES = ("none", "zero", "raise")
AUTO_PREFERENCES = ("speed", "memory")
AUTO_FRACTION = "auto"
# TRL's vllm_importance_sampling_mode values, and off (grpo_core.train.is_correction)
MISMATCH_MODES = ("token_truncate", "token_mask", "sequence_truncate", "sequence_mask", "off")


def fraction_or_auto(value: Any) -> float | str:
    """``gpu_memory_utilization`` as given: a number in (0, 1], or ``"auto"``; anything else is refused naming both."""
    if value == AUTO_FRACTION:
        return AUTO_FRACTION
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value <= 1:
        return float(value)
    raise ConfigError(f"gpu_memory_utilization must be a fraction of the GPU's memory in (0, 1], e.g. 0.5, or 'auto' "
                      f"(pre-flight sizes it from the model's config and the GPU); got {value!r}.")


BOTH = ("trl", "unsloth")
TRL_ONLY = ("trl",)
UNSLOTH_ONLY = ("unsloth",)


def setting(default: Any = dataclasses.MISSING, *, help: str, flags: tuple[str, ...] = (), factory: Any = dataclasses.MISSING,
            backends: tuple[str, ...] = BOTH, multiple: bool = False, metavar: str | None = None, **rule: Any) -> Any:
    """One run setting, defined once: its default, help, named flags of `grpo-core run` (none: YAML and
    ``--set`` only), the backends it applies to, and its range or choices (:class:`~grpo_core.config.values.Rule`
    arguments). The type is the field's annotation. ``multiple``: a repeatable ``KEY=VALUE`` flag."""
    meta = {"help": help, "flags": flags, "backends": backends, "rule": rule, "multiple": multiple, "metavar": metavar}
    return field(default=default, default_factory=factory, metadata=meta)


@dataclass
class LoraSettings:
    r: int = setting(16, help="LoRA rank.", flags=("--lora-r",), minimum=1)
    alpha: int | None = setting(None, help="LoRA alpha (default: equal to r).", minimum=1)
    dropout: float = setting(0.0, help="LoRA dropout.", minimum=0, below=1)
    target_modules: list[str] = setting(
        factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        help="Modules that get adapters.",
    )


def _mismatch_mode(value: Any) -> str:
    """``mismatch_correction`` as a mode name: YAML reads a bare ``off`` as false."""
    if value is False:
        return "off"
    if value is True:
        raise ConfigError(f"mismatch_correction must be one of {', '.join(MISMATCH_MODES)}; got true (on is token_truncate).")
    return value


def _selection_text(value: Any) -> str:
    """``plugins`` as text: a YAML list of entries is joined with commas."""
    return ",".join(str(v) for v in value) if isinstance(value, list) else value


@dataclass
class RunConfig:
    model: str | None = setting(None, help="Hub id, local folder, or .gguf file (converted once to a cached folder) of the policy model (default: the bundled tiny reasoner).", flags=("--model",))
    dataset: str = setting("arithmetic:train", help="Training data: dataset adapter and split, NAME[:SPLIT], e.g. gsm8k:train.", flags=("--dataset",))
    eval_dataset: str | None = setting(None, help="Held-out data for the before/after evaluation, NAME[:SPLIT].", flags=("--eval-dataset",))
    plugins: str = setting("xml,soft_format,strict_format,correctness", help="Rewards to combine, NAME[:WEIGHT],... e.g. xml:0.5,correctness:2.",
                           flags=("--plugins",), kinds=("str", "list"), convert=_selection_text)
    reward_options: dict[str, dict[str, Any]] = setting(
        factory=dict, help="Options of the chosen rewards, REWARD.NAME=VALUE (each reward declares its options and their "
        "defaults: `grpo-core rewards`). Repeatable.", flags=("--reward-option",), multiple=True, metavar="REWARD.NAME=VALUE")
    dataset_options: dict[str, Any] = setting(
        factory=dict, help="Options for the dataset adapter's load(split, **options), KEY=VALUE. Repeatable.",
        flags=("--dataset-option",), multiple=True, metavar="KEY=VALUE")
    output_dir: str = setting("runs/grpo", help="Where checkpoints, the adapter, run.json and the report go.", flags=("--output-dir",))
    backend: str = setting("auto", help="Training backend: auto | unsloth | trl. auto picks unsloth with a CUDA GPU and Unsloth installed.",
                           flags=("--backend",), choices=BACKENDS)
    preset: str | None = setting(None, help="The preset these settings start from (set with --preset or a config file's `preset:`; "
                                 "recorded, not set with --set).")
    lora: LoraSettings = setting(factory=LoraSettings, help="LoRA settings (same for both backends).")
    full_finetune: bool = setting(False, help="Train all weights instead of LoRA (trl backend only).", backends=TRL_ONLY)
    load_in_4bit: bool = setting(False, help="Load the base model in 4-bit (bitsandbytes; GPU only).", flags=("--load-in-4bit/--no-load-in-4bit",))
    load_in_fp8: bool = setting(False, help="Load in FP8 where the GPU supports it (unsloth backend).", backends=UNSLOTH_ONLY)
    fast_inference: bool = setting(True, help="unsloth: generate with vLLM inside the process.",
                                   flags=("--fast-inference/--no-fast-inference",), backends=UNSLOTH_ONLY)
    use_vllm: bool | None = setting(None, help="trl: generate with vLLM (None: when installed and on GPU).", backends=TRL_ONLY)
    vllm_mode: str = setting("colocate", help="trl: vLLM colocate or server mode.", backends=TRL_ONLY, choices=("colocate", "server"))
    vllm_server_retries: int = setting(5, help="trl + vLLM server: retries of a request to the server that failed (connection refused or reset, no answer in time, HTTP 500/502/503), 2 s, 4 s, 8 s, ... apart; then the run stops naming the server (TRL's client: 5). How long the first connection waits is TRL's vllm_server_timeout.",
                                       backends=TRL_ONLY, minimum=0)
    vllm_server_request_timeout: float | None = setting(600.0, help="trl + vLLM server: seconds one request (a generation round, a weight update) may go without an answer before it is retried (null: no limit, TRL's behaviour).",
                                                        backends=TRL_ONLY, above=0)
    trim_padding: bool = setting(True, help="trl backend: cut each forward pass to its own longest prompt instead of the generation round's (same log-probs, fewer tokens).", backends=TRL_ONLY)
    group_steps: bool = setting(True, help="trl backend: when a generation round feeds several steps, give each step whole prompt groups (as generating every step does) instead of TRL's shuffle across steps.", backends=TRL_ONLY)
    longest_first: bool = setting(False, help="Put the longest prompts (by tokens) in the first generation round, so a run that will run out of memory on long sequences does so at step 1; the rest of the order, and how often each prompt appears per epoch, stay TRL's.")
    vllm_engine_kwargs: dict[str, Any] | None = setting(None, help="trl + vLLM colocate: extra arguments for the vLLM engine TRL starts, on top of (or overriding) TRL's, e.g. {enforce_eager: true} or {kv_cache_dtype: fp8}.", backends=TRL_ONLY)
    fast_vllm_sync: bool = setting(True, help="trl + vLLM colocate: push only the LoRA-merged layers, merged out of place, in one load call (off: TRL's own sync).", backends=TRL_ONLY)
    # the speed levers (docs/gpu.md): what backend auto favours, and two trl-backend choices on a GPU
    auto_prefers: str = setting("speed", help="speed | memory: what backend auto favours on a GPU with Unsloth. speed takes trl + vLLM colocate for a 16-bit model when its second weight copy fits (faster than Unsloth's LoRA-request generation); memory keeps Unsloth's shared weights.",
                                choices=AUTO_PREFERENCES)
    skip_old_logps_pass: bool = setting(False, help="trl + vLLM: when a generation round is trained in one optimizer step (steps_per_generation 1), skip TRL's separate old-log-prob pass and take the old log-probs and vLLM's importance-sampling ratio from the training pass (the policy has not moved; same loss).", backends=TRL_ONLY)
    recompute_activations: bool | str = setting(True, help="trl backend on a GPU: recompute activations in the backward pass (gradient checkpointing; TRL's default), false to keep them (faster, more memory), or auto: keep them when the estimate for the largest micro-batch fits beside vLLM's share and the weights (grpo_core.train.memory_plan).",
                                                backends=TRL_ONLY, kinds=("bool", "str"), choices=("auto",))
    gpu_memory_utilization: float | str = setting(0.5, help="Fraction of the GPU's total memory a vLLM engine in this process may reserve, or auto: pre-flight works out the model's weights + a generation round's KV cache + ~1 GiB for the engine's buffers from its config, and uses that share of this GPU, rounded up to the next 0.01.",
                                                  flags=("--gpu-memory-utilization",), metavar="FRACTION|auto", kinds=("float", "any"), convert=fraction_or_auto)
    max_seq_length: int = setting(1024, help="Longest prompt+completion: Unsloth's max_seq_length, and vLLM's max_model_len on the trl backend (raised there to fit the longest prompt; TRL would otherwise reserve for the model's 32k).", minimum=1)
    chat_template: str | None = setting(None, help="Chat template by name (chatml, llama-3.1, qwen2.5) or a .jinja file.", flags=("--chat-template",))
    system_prompt: str | None = setting(None, help="System prompt (default: the dataset's, the XML format prompt).")
    max_prompt_length: int | None = setting(None, help="Longest prompt in tokens; longer ones follow overlong_prompts.", minimum=1)
    overlong_prompts: str = setting("drop", help="drop | truncate | error, for prompts over max_prompt_length.", choices=OVERLONG_POLICIES)
    limit: int | None = setting(None, help="Use only the first N training rows.", flags=("--limit",), minimum=1)
    on_reward_error: str = setting("none", help="What a reward error or timeout gives a sample: none | zero | raise.", flags=("--on-reward-error",), choices=ERROR_POLICIES)
    sft_warmup_steps: int = setting(0, help="Supervised warm-up steps on reference solutions before GRPO (0: none).", flags=("--sft-warmup-steps",), minimum=0)
    sft_learning_rate: float = setting(2e-4, help="Learning rate of the SFT warm-up.", above=0)
    eval_limit: int | None = setting(200, help="Held-out problems in the before/after evaluation (0: skip it).", flags=("--eval-limit",), minimum=0)
    report: bool = setting(True, help="Write report.md with reward plots and the before/after evaluation.")
    zero_variance_patience: int = setting(5, help="Warn after this many logged steps where every group had zero reward variance.", minimum=1)
    threads: int | None = setting(None, help="torch CPU threads (default: torch's choice).", flags=("--threads",), minimum=1)
    profile: bool = setting(False, help="Synchronise the GPU at phase edges so the logged time/* phases (generate, sync, old_logps, rewards, train) are exact.", flags=("--profile",))
    trace_step: int | None = setting(None, help="Profile this optimizer step (torch profiler) and write trace-step-N.json: wall vs GPU-busy time, kernel launches, the costliest operations.", minimum=1)
    log_rollouts: bool = setting(False, help="Append every training completion to rollouts.jsonl in the output folder: its step, prompt, each reward's score and its advantage, as TRL computed them after gathering every process's rows (written by the main process).")
    # the learning signal: rollout probe (train/probe), dynamic sampling (train/dynamic_sampling), mismatch correction (train/is_correction)
    probe: int | None = setting(None, help="Rollout probe before GRPO: sample N prompts x num_generations, score them, stop when the rewards cannot teach (0: off; default: 8, off for the bundled tiny reasoner).",
                                flags=("--probe",), metavar="N", minimum=0)
    probe_max_tied: float = setting(0.9, help="The probe stops the run when more than this share of its prompt groups have rewards that all tie.", minimum=0, maximum=1)
    force: bool = setting(False, help="Train even when the rollout probe finds no learning signal.", flags=("--force",))
    dynamic_sampling: bool = setting(False, help="DAPO dynamic sampling: replace groups whose rewards all tie with groups from further prompts.",
                                     flags=("--dynamic-sampling/--no-dynamic-sampling",))
    dynamic_sampling_max_rounds: int = setting(2, help="Dynamic sampling: at most this many extra generation rounds per batch; groups still missing are kept out of the loss.", minimum=0)
    mismatch_correction: str = setting("token_truncate", help="Sampler/trainer mismatch correction with vLLM (TRL's vllm_importance_sampling_correction): token_truncate (truncated IS), token_mask, sequence_truncate, sequence_mask, or off (YAML reads a bare off as false, which means off; true is refused). Both backends.",
                                       choices=MISMATCH_MODES, kinds=("str", "bool"), convert=_mismatch_mode,
                                       words="one of " + ", ".join(MISMATCH_MODES) + " (false means off)")
    mismatch_clip: float = setting(3.0, help="Upper bound of the mismatch importance weight (vllm_importance_sampling_clip_max).", above=0)
    seed: int = setting(3407, help="Random seed.", flags=("--seed",), minimum=0)
    grpo: dict[str, Any] = setting(factory=dict, help="Any TRL GRPOConfig field, passed unchanged (checked against its type, and its range where docs/config.md gives one).")

    # ------------------------------------------------------------------
    @classmethod
    def field_names(cls) -> set[str]:
        return {f.name for f in dataclasses.fields(cls)}

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @functools.cached_property
    def reward_selection(self) -> RewardSelection:
        """``plugins`` and ``reward_options``, parsed (on first use) into the typed selection the run carries."""
        return RewardSelection.parse(self.plugins, self.reward_options)

    def merged(self, updates: dict[str, Any], where: str, *, none_means_unset: bool = False) -> "RunConfig":
        """A copy with ``updates`` applied, each value checked (:func:`check_setting`) and named by ``where``.

        Keys are grpo-core settings, ``lora.NAME``, ``reward_options.REWARD.NAME``, ``dataset_options.KEY``,
        or TRL GRPOConfig fields (which go to :attr:`grpo`). A ``None`` value sets the setting to ``None``
        (YAML ``null``, ``--set key=null``: e.g. no ``max_prompt_length``), except with ``none_means_unset``
        (named CLI flags, where ``None`` means "flag not given") where it leaves the setting alone.
        """
        data = self.to_dict()
        for key, value in updates.items():
            if value is None and none_means_unset:
                continue
            _apply(data, key, value, where)
        data["lora"] = LoraSettings(**data["lora"])
        return RunConfig(**data)

    def validate(self, check_grpo_fields: bool = True) -> "RunConfig":
        """Check every setting's type and range (values are read as :func:`check_setting` reads them).

        Nothing here imports trl: GRPOConfig's fields come from ``grpo_fields.json``
        (``check_grpo_fields`` is kept for callers; the check is always made)."""
        where = "settings"
        for f in dataclasses.fields(self):
            if f.name == "lora":
                for lf in dataclasses.fields(LoraSettings):
                    setattr(self.lora, lf.name, check_setting(f"lora.{lf.name}", getattr(self.lora, lf.name), where))
            elif f.name == "grpo":
                self.grpo = {k: check_setting(k, v, where) for k, v in self.grpo.items()}
            elif f.name in _NESTED:
                _NESTED[f.name](where, getattr(self, f.name))
            else:
                setattr(self, f.name, check_setting(f.name, getattr(self, f.name), where))
        self.reward_selection  # noqa: B018  (a malformed --plugins list is refused here)
        return self


def _check_reward_options(where: str, value: Any) -> None:
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        raise ConfigError(f"{where}: reward_options must map each reward to its options, e.g. "
                          f"{{judge_score: {{model: x}}}}; got {value!r}.")


def _check_dataset_options(where: str, value: Any) -> None:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: dataset_options must be a mapping of option -> value, e.g. {{path: data.jsonl}}; got {value!r}.")


_NESTED = {"reward_options": _check_reward_options, "dataset_options": _check_dataset_options}
_LORA_FIELDS = ("r", "alpha", "dropout", "target_modules")


def _apply(data: dict, key: str, value: Any, where: str) -> None:
    """Set one checked ``key`` in ``data`` (a :meth:`RunConfig.to_dict`)."""
    head, dot, tail = key.partition(".")
    if key == "lora":
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: 'lora' must be a mapping of {', '.join(_LORA_FIELDS)}.")
        for name, v in value.items():
            _apply(data, f"lora.{name}", v, where)
    elif head == "lora" and dot:
        if tail not in _LORA_FIELDS:
            close = difflib.get_close_matches(tail, _LORA_FIELDS, n=1)
            hint = f" Did you mean lora.{close[0]}?" if close else ""
            raise ConfigError(f"{where}: unknown lora setting {tail!r}; valid: {', '.join(_LORA_FIELDS)}.{hint}")
        data["lora"][tail] = check_setting(key, value, where)
    elif key in _NESTED:
        _NESTED[key](where, value)
        for name, v in value.items():
            if key == "reward_options":
                data[key].setdefault(name, {}).update(v)
            else:
                data[key][name] = v
    elif head in _NESTED and dot:
        if head == "reward_options":
            reward, dot2, option = tail.rpartition(".")
            if not (dot2 and reward and option):
                raise ConfigError(f"{where}: write reward_options.REWARD.NAME=VALUE, got {key!r}.")
            data[head].setdefault(reward, {})[option] = value
        else:
            data[head][tail] = value
    elif key == "grpo":
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: 'grpo' must be a mapping of TRL GRPOConfig fields.")
        for name, v in value.items():
            data["grpo"][name] = check_setting(name, v, where)
    elif key == "preset":
        raise ConfigError(f"{where}: the preset is chosen with --preset or a config file's `preset:` key, not {where}.")
    elif key in data:
        data[key] = check_setting(key, value, where)
    else:
        data["grpo"][key] = check_setting(key, value, where)


@functools.lru_cache(maxsize=None)
def _field_rules() -> dict[str, Rule]:
    rules = {}
    for cls, prefix in ((RunConfig, ""), (LoraSettings, "lora.")):
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            rule = dict(f.metadata.get("rule", {}))
            kinds, _ = kinds_of(hints[f.name])
            rules[prefix + f.name] = Rule(tuple(rule.pop("kinds", kinds)), **rule)
    return rules


def setting_rule(name: str) -> Rule:
    """The rule of a grpo-core setting (``lora.r`` for LoRA's) or a GRPOConfig field; unknown names are refused."""
    rules = _field_rules()
    if name in rules:
        return rules[name]
    valid = grpo_field_names()
    if name == "reward_weights":  # set from --plugins; refusing it avoids two sources of truth
        raise ConfigError("set reward weights with --plugins NAME:WEIGHT, not 'reward_weights'.")
    if name in RENAMED and name not in valid:
        raise ConfigError(f"setting {name!r} no longer exists; {RENAMED[name]}")
    if name not in valid:
        close = difflib.get_close_matches(name, sorted(valid | set(rules)), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(
            f"unknown setting {name!r}: it is neither a grpo-core setting nor a TRL GRPOConfig field.{hint} "
            "See docs/config.md, `grpo-core run --help` and TRL's GRPOConfig documentation."
        )
    return trl_rule(name)


def check_setting(name: str, value: Any, where: str, *, text: bool = False) -> Any:
    """``value`` checked against setting ``name``'s type and range, as the setting holds it (see :class:`Rule`)."""
    try:
        rule = setting_rule(name)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return rule.check(name, value, where, text=text)


def load_yaml(path: str | Path) -> dict:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {str(p)!r} does not exist.")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {str(p)!r} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(p)!r} must hold a mapping of settings, got {type(data).__name__}.")
    return data


def parse_set_pairs(pairs: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """``["beta=0.04", "lora.r=8"]`` -> typed dict (values parsed as YAML scalars)."""
    out = {}
    for p in pairs:
        key, sep, raw = p.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects FIELD=VALUE, got {p!r}.")
        try:
            out[key.strip()] = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            out[key.strip()] = raw
    return out


def choose_preset(preset: str | None, config: dict, flags: dict, sets: dict, default_preset: str | None) -> str | None:
    """The preset a run starts from: ``--preset``, else the config file's ``preset:``, else ``default_preset``
    when no source names a model (a config file is layered on the same base as flags)."""
    if preset:
        return preset
    if config.get("preset"):
        return config["preset"]
    if any(src.get("model") is not None for src in (config, flags, sets)):
        return None
    return default_preset


def build_config(preset: str | None = None, config_file: str | None = None, flags: dict | None = None, sets: list[str] | None = None,
                 *, default_preset: str | None = None, base: RunConfig | None = None) -> RunConfig:
    """A preset, then a YAML file, then named flags, then ``--set`` pairs, each checked as it is merged.

    ``default_preset`` (the CLI passes the embedded default) is the base when neither ``preset`` nor the
    file names one and no source sets a model. ``base`` (a resumed run's recorded settings) replaces the
    defaults and the default preset: the given sources are layered on it in the same order."""
    config = load_yaml(config_file) if config_file else {}
    set_values = parse_set_pairs(sets or [])
    chosen = choose_preset(preset, config, flags or {}, set_values, None if base is not None else default_preset)
    cfg = RunConfig() if base is None else base
    if chosen:
        cfg = cfg.merged(get_preset(chosen), f"preset {chosen!r}")
        cfg.preset = chosen
    config.pop("preset", None)
    if config:
        cfg = cfg.merged(config, f"config file {config_file!r}")
    if flags:
        cfg = cfg.merged(flags, "command line", none_means_unset=True)
    if set_values:
        cfg = cfg.merged(set_values, "--set")
    given = {key for source in (config, flags or {}, set_values) for key, value in source.items() if value is not None}
    if chosen and base is None and "dataset" in given and "eval_dataset" not in given:
        # a preset's held-out split belongs to the preset's dataset: evaluate on the chosen dataset's own
        cfg = dataclasses.replace(cfg, eval_dataset=None)
    return cfg
