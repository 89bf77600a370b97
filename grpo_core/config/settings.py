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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from grpo_core.config.presets import get_preset
from grpo_core.errors import ConfigError

BACKENDS = ("auto", "unsloth", "trl")
# Settings that older notebooks use and the tested versions renamed or removed.
RENAMED = {
    "warmup_ratio": "use warmup_steps instead: in transformers 5 a float below 1 is a ratio of the total steps (warmup_steps=0.1).",
}
OVERLONG_POLICIES = ("drop", "truncate", "error")
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


@dataclass
class LoraSettings:
    r: int = field(default=16, metadata={"help": "LoRA rank."})
    alpha: int | None = field(default=None, metadata={"help": "LoRA alpha (default: equal to r)."})
    dropout: float = field(default=0.0, metadata={"help": "LoRA dropout."})
    target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        metadata={"help": "Modules that get adapters."},
    )


@dataclass
class RunConfig:
    model: str | None = field(default=None, metadata={"help": "Hub id, local folder, or .gguf file (converted once to a cached folder) of the policy model (default: the bundled tiny reasoner)."})
    dataset: str = field(default="arithmetic:train", metadata={"help": "Dataset adapter and split, NAME[:SPLIT], e.g. gsm8k:train."})
    eval_dataset: str | None = field(default=None, metadata={"help": "Held-out split for the before/after evaluation, NAME[:SPLIT]."})
    plugins: str = field(default="xml,soft_format,strict_format,correctness", metadata={"help": "Rewards NAME[:WEIGHT],..."})
    output_dir: str = field(default="runs/grpo", metadata={"help": "Where checkpoints, the adapter, run.json and the report go."})
    backend: str = field(default="auto", metadata={"help": "auto | unsloth | trl. auto picks unsloth with a CUDA GPU and Unsloth installed."})
    lora: LoraSettings = field(default_factory=LoraSettings, metadata={"help": "LoRA settings (same for both backends)."})
    full_finetune: bool = field(default=False, metadata={"help": "Train all weights instead of LoRA (trl backend only)."})
    load_in_4bit: bool = field(default=False, metadata={"help": "Load the base model in 4-bit (bitsandbytes; GPU only)."})
    load_in_fp8: bool = field(default=False, metadata={"help": "Load in FP8 where the GPU supports it (unsloth backend)."})
    fast_inference: bool = field(default=True, metadata={"help": "unsloth: generate with vLLM inside the process."})
    use_vllm: bool | None = field(default=None, metadata={"help": "trl: generate with vLLM (None: when installed and on GPU)."})
    vllm_mode: str = field(default="colocate", metadata={"help": "trl: vLLM colocate or server mode."})
    trim_padding: bool = field(default=True, metadata={"help": "trl backend: cut each forward pass to its own longest prompt instead of the generation round's (same log-probs, fewer tokens)."})
    group_steps: bool = field(default=True, metadata={"help": "trl backend: when a generation round feeds several steps, give each step whole prompt groups (as generating every step does) instead of TRL's shuffle across steps."})
    longest_first: bool = field(default=False, metadata={"help": "Put the longest prompts (by tokens) in the first generation round, so a run that will run out of memory on long sequences does so at step 1; the rest of the order, and how often each prompt appears per epoch, stay TRL's."})
    vllm_engine_kwargs: dict[str, Any] | None = field(default=None, metadata={"help": "trl + vLLM colocate: extra arguments for the vLLM engine TRL starts, on top of (or overriding) TRL's, e.g. {enforce_eager: true} or {kv_cache_dtype: fp8}."})
    fast_vllm_sync: bool = field(default=True, metadata={"help": "trl + vLLM colocate: push only the LoRA-merged layers, merged out of place, in one load call (off: TRL's own sync)."})
    gpu_memory_utilization: float | str = field(default=0.5, metadata={"help": "Fraction of the GPU's total memory a vLLM engine in this process may reserve, or auto: pre-flight works out the model's weights + a generation round's KV cache + ~1 GiB for the engine's buffers from its config, and uses that share of this GPU, rounded up to the next 0.01."})
    max_seq_length: int = field(default=1024, metadata={"help": "Longest prompt+completion: Unsloth's max_seq_length, and vLLM's max_model_len on the trl backend (raised there to fit the longest prompt; TRL would otherwise reserve for the model's 32k)."})
    chat_template: str | None = field(default=None, metadata={"help": "Chat template by name (chatml, llama-3.1, qwen2.5) or a .jinja file."})
    system_prompt: str | None = field(default=None, metadata={"help": "System prompt (default: the dataset's, the XML format prompt)."})
    max_prompt_length: int | None = field(default=None, metadata={"help": "Longest prompt in tokens; longer ones follow overlong_prompts."})
    overlong_prompts: str = field(default="drop", metadata={"help": "drop | truncate | error, for prompts over max_prompt_length."})
    limit: int | None = field(default=None, metadata={"help": "Use only the first N training rows."})
    on_reward_error: str = field(default="none", metadata={"help": "none | zero | raise: what a reward error or timeout gives."})
    sft_warmup_steps: int = field(default=0, metadata={"help": "Supervised warm-up steps on reference solutions before GRPO (0: none)."})
    sft_learning_rate: float = field(default=2e-4, metadata={"help": "Learning rate of the SFT warm-up."})
    eval_limit: int | None = field(default=200, metadata={"help": "Held-out problems in the before/after evaluation (0: skip it)."})
    report: bool = field(default=True, metadata={"help": "Write report.md with reward plots and the before/after evaluation."})
    zero_variance_patience: int = field(default=5, metadata={"help": "Warn after this many logged steps where every group had zero reward variance."})
    threads: int | None = field(default=None, metadata={"help": "torch CPU threads (default: torch's choice)."})
    profile: bool = field(default=False, metadata={"help": "Synchronise the GPU at phase edges so the logged time/* phases (generate, sync, old_logps, rewards, train) are exact."})
    trace_step: int | None = field(default=None, metadata={"help": "Profile this optimizer step (torch profiler) and write trace-step-N.json: wall vs GPU-busy time, kernel launches, the costliest operations."})
    # -- the learning signal: rollout probe, dynamic sampling, mismatch correction (validate_learning_signal_settings) --
    probe: int | None = field(default=None, metadata={"help": "Rollout probe before GRPO: sample this many prompts x num_generations, score them, stop when the rewards cannot teach (0: off; default: 8, off for the bundled tiny reasoner)."})
    probe_max_tied: float = field(default=0.9, metadata={"help": "The probe stops the run when more than this share of its prompt groups have rewards that all tie."})
    force: bool = field(default=False, metadata={"help": "Train even when the rollout probe finds no learning signal."})
    dynamic_sampling: bool = field(default=False, metadata={"help": "DAPO dynamic sampling: drop groups whose rewards all tie and refill them from further prompts (single process)."})
    dynamic_sampling_max_rounds: int = field(default=2, metadata={"help": "Dynamic sampling: at most this many extra generation rounds per batch; groups still missing are kept out of the loss."})
    mismatch_correction: str = field(default="token_truncate", metadata={"help": "Sampler/trainer mismatch correction with vLLM (TRL's vllm_importance_sampling_correction): token_truncate (truncated IS), token_mask, sequence_truncate, sequence_mask, or off. Both backends."})
    mismatch_clip: float = field(default=3.0, metadata={"help": "Upper bound of the mismatch importance weight (vllm_importance_sampling_clip_max)."})
    # -- end of the learning-signal block --
    seed: int = field(default=3407, metadata={"help": "Random seed."})
    grpo: dict[str, Any] = field(default_factory=dict, metadata={"help": "Any TRL GRPOConfig field, passed unchanged."})

    # ------------------------------------------------------------------
    @classmethod
    def field_names(cls) -> set[str]:
        return {f.name for f in dataclasses.fields(cls)}

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def merged(self, updates: dict[str, Any], where: str, *, none_means_unset: bool = False) -> "RunConfig":
        """A copy with ``updates`` applied; unknown keys are checked against GRPOConfig.

        A ``None`` value sets the setting to ``None`` (YAML ``null``, ``--set key=null``: e.g. no
        ``max_prompt_length``), except with ``none_means_unset`` (named CLI flags, where ``None``
        means "flag not given") where it leaves the setting alone.
        """
        data = self.to_dict()
        grpo = dict(data.pop("grpo"))
        for key, value in updates.items():
            if value is None and none_means_unset:
                continue
            if key == "lora":
                if not isinstance(value, dict):
                    raise ConfigError(f"{where}: 'lora' must be a mapping of {', '.join(f.name for f in dataclasses.fields(LoraSettings))}.")
                bad = set(value) - {f.name for f in dataclasses.fields(LoraSettings)}
                if bad:
                    raise ConfigError(f"{where}: unknown lora setting(s) {', '.join(sorted(bad))}; valid: r, alpha, dropout, target_modules.")
                data["lora"] = {**data["lora"], **value}
            elif key.startswith("lora."):
                data["lora"] = {**data["lora"], key[5:]: value}
            elif key == "grpo":
                grpo.update(value or {})
            elif key in data:
                data[key] = value
            else:
                grpo[key] = value
        data["lora"] = LoraSettings(**data["lora"])
        cfg = RunConfig(**data, grpo=grpo)
        return cfg

    def validate(self, check_grpo_fields: bool = True) -> "RunConfig":
        if self.backend not in BACKENDS:
            raise ConfigError(f"backend {self.backend!r} is not one of {', '.join(BACKENDS)}.")
        if self.overlong_prompts not in OVERLONG_POLICIES:
            raise ConfigError(f"overlong_prompts {self.overlong_prompts!r} is not one of {', '.join(OVERLONG_POLICIES)}.")
        if self.on_reward_error not in ("none", "zero", "raise"):
            raise ConfigError(f"on_reward_error {self.on_reward_error!r} is not one of none, zero, raise.")
        fraction_or_auto(self.gpu_memory_utilization)
        validate_learning_signal_settings(self)
        if self.lora.r <= 0:
            raise ConfigError(f"lora.r must be positive, got {self.lora.r}.")
        if self.trace_step is not None and (not isinstance(self.trace_step, int) or self.trace_step < 1):
            raise ConfigError(f"trace_step must be a step number from 1, got {self.trace_step!r}.")
        if self.vllm_engine_kwargs is not None and not isinstance(self.vllm_engine_kwargs, dict):
            raise ConfigError(f"vllm_engine_kwargs must be a mapping of vLLM engine arguments, e.g. {{enforce_eager: true}}; got {self.vllm_engine_kwargs!r}.")
        if check_grpo_fields and self.grpo:
            valid = grpo_config_fields()
            ours = {"reward_weights"}  # set from --plugins; refusing it avoids two sources of truth
            for key in self.grpo:
                if key in ours:
                    raise ConfigError(f"set reward weights with --plugins NAME:WEIGHT, not {key!r}.")
                if key in RENAMED and key not in valid:
                    raise ConfigError(f"setting {key!r} no longer exists; {RENAMED[key]}")
                if key not in valid:
                    close = difflib.get_close_matches(key, sorted(valid | self.field_names()), n=3)
                    hint = f" Did you mean {', '.join(close)}?" if close else ""
                    raise ConfigError(
                        f"unknown setting {key!r}: it is neither a grpo-core setting nor a TRL GRPOConfig field.{hint} "
                        "See `grpo-core run --help` and TRL's GRPOConfig documentation."
                    )
        return self


def validate_learning_signal_settings(cfg: "RunConfig") -> None:
    """The probe, dynamic sampling and mismatch-correction settings (:mod:`grpo_core.train.probe`,
    :mod:`grpo_core.train.dynamic_sampling`, :mod:`grpo_core.train.is_correction`)."""
    if cfg.probe is not None and (not isinstance(cfg.probe, int) or isinstance(cfg.probe, bool) or cfg.probe < 0):
        raise ConfigError(f"probe must be a number of prompts (0 turns the probe off), got {cfg.probe!r}.")
    if not 0 <= cfg.probe_max_tied <= 1:
        raise ConfigError(f"probe_max_tied must be a share in [0, 1], e.g. 0.9; got {cfg.probe_max_tied!r}.")
    if not isinstance(cfg.dynamic_sampling_max_rounds, int) or cfg.dynamic_sampling_max_rounds < 0:
        raise ConfigError(f"dynamic_sampling_max_rounds must be 0 or more extra rounds, got {cfg.dynamic_sampling_max_rounds!r}.")
    if cfg.mismatch_correction is False:  # YAML reads a bare `off` as false
        cfg.mismatch_correction = "off"
    if cfg.mismatch_correction not in MISMATCH_MODES:
        raise ConfigError(f"mismatch_correction {cfg.mismatch_correction!r} is not one of {', '.join(MISMATCH_MODES)}.")
    if not cfg.mismatch_clip > 0:
        raise ConfigError(f"mismatch_clip must be positive (the largest importance weight), got {cfg.mismatch_clip!r}.")


def grpo_config_fields() -> set[str]:
    """The field names of TRL's GRPOConfig (imports trl)."""
    from trl import GRPOConfig  # deferred: heavy (trl)

    return {f.name for f in dataclasses.fields(GRPOConfig)}


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


def build_config(preset: str | None = None, config_file: str | None = None, flags: dict | None = None, sets: list[str] | None = None) -> RunConfig:
    cfg = RunConfig()
    if preset:
        cfg = cfg.merged(get_preset(preset), f"preset {preset!r}")
    if config_file:
        data = load_yaml(config_file)
        if "preset" in data and not preset:
            cfg = RunConfig().merged(get_preset(data.pop("preset")), "preset")
        data.pop("preset", None)
        cfg = cfg.merged(data, f"config file {config_file!r}")
    if flags:
        cfg = cfg.merged(flags, "command line", none_means_unset=True)
    if sets:
        cfg = cfg.merged(parse_set_pairs(sets), "--set")
    return cfg
