"""What a training backend is: the one interface the runner talks to.

A backend answers, for one run:

* whether it can run here, and whether ``backend: auto`` picks it (with the reason, for run.json);
* what must happen in the process before anything imports trl (Unsloth patches trl on import);
* whether it starts a vLLM engine on this process's GPU, and what pre-flight needs to size it
  (:class:`~grpo_core.train.preflight.VllmSetup`), then what it takes from pre-flight's numbers;
* how it loads the policy (model, tokenizer, LoRA, the GRPOConfig overrides it needs);
* the trainer class it trains with, what is active while the trainer is built, the callbacks it
  adds, and what it does to the trainer once built;
* the run settings that apply to it alone (:meth:`Backend.settings`).

The runner holds no backend names: it calls these methods. Each backend is one module beside this
one, registered in :mod:`grpo_core.train.backends`. Nothing here imports torch, trl, Unsloth or vLLM;
the backends import them inside their methods, on the path that uses them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, ContextManager

from grpo_core.config.settings import AUTO_FRACTION, BOTH, RunConfig
from grpo_core.errors import ConfigError
from grpo_core.train.memory_plan import gpu_total_bytes
from grpo_core.train.preflight import VllmSetup
from grpo_core.train.trl_glue import make_trainer_class

Echo = Callable[[str], None]


@dataclass
class LoadedPolicy:
    backend: str
    model: Any
    tokenizer: Any
    peft_config: Any  # a peft.LoraConfig for TRL to apply, or None when already applied
    trainer_base: type
    grpo_overrides: dict = field(default_factory=dict)
    device: str = "cpu"
    notes: list[str] = field(default_factory=list)  # choices made while loading, for the run's log


class Backend(ABC):
    """One way to train: subclass, set :attr:`name`, implement the abstract methods, register it."""

    #: the value of ``RunConfig.backend`` that selects it (and the name in run.json)
    name: ClassVar[str]
    #: ``backend: auto`` asks the backends in descending rank; the lowest must always accept
    auto_rank: ClassVar[int] = 0

    # -- choosing ---------------------------------------------------------------------------------

    @abstractmethod
    def unavailable(self, cfg: RunConfig) -> str | None:
        """None when it can run here; else why not, naming the fix (the error when it was asked for by name)."""

    @abstractmethod
    def auto_choice(self, cfg: RunConfig) -> tuple[bool, str | None]:
        """Whether ``backend: auto`` picks it here, and why (or why not: the next backend picked gives that as
        its reason when it has none of its own)."""

    def prepare_process(self) -> None:
        """Runs right after the choice, before anything imports trl."""

    # -- vLLM's share of the GPU --------------------------------------------------------------------

    def colocated_vllm(self, cfg: RunConfig) -> bool:
        """Whether this process will start a vLLM engine on its own GPU."""
        return False

    def vllm_setup(self, cfg: RunConfig, model_path: str, grpo_kwargs: dict) -> VllmSetup | None:
        """What pre-flight needs to size the colocated engine (None: no engine here)."""
        if not self.colocated_vllm(cfg):
            return None
        return VllmSetup(model_path, cfg.gpu_memory_utilization, gpu_total_bytes(), cfg.load_in_4bit, max_model_len=cfg.max_seq_length)

    def after_preflight(self, grpo_kwargs: dict, facts: dict) -> None:
        """Takes what pre-flight worked out (``facts``) into the GRPOConfig arguments, where it applies."""

    # -- loading and training -----------------------------------------------------------------------

    @abstractmethod
    def load_policy(self, cfg: RunConfig, model_path: str) -> LoadedPolicy:
        """The model, its tokenizer, LoRA, and the GRPOConfig overrides this backend needs."""

    def trainer_class(self, cfg: RunConfig, policy: LoadedPolicy, *, first_round_lengths: list[int] | None, echo: Echo) -> type:
        """The GRPO trainer class to build (grpo-core's subclass of the policy's trainer base)."""
        return make_trainer_class(policy.trainer_base, first_round_lengths=first_round_lengths, echo=echo)

    def building_trainer(self, cfg: RunConfig, echo: Echo) -> ContextManager[None]:
        """Active while the trainer is constructed (a GRPO trainer may start its vLLM engine then)."""
        return contextlib.nullcontext()

    def callbacks(self, cfg: RunConfig, echo: Echo) -> list:
        """Trainer callbacks this backend adds to the run's own."""
        return []

    def trainer_built(self, trainer: Any, cfg: RunConfig, echo: Echo) -> None:
        """What it does to the trainer once built, before training starts."""

    # -- settings -----------------------------------------------------------------------------------

    def settings(self) -> tuple[str, ...]:
        """The RunConfig fields that apply to this backend only."""
        return backend_settings(self)

    def __repr__(self) -> str:
        return f"<backend {self.name}>"


def backend_settings(backend: Backend) -> tuple[str, ...]:
    """RunConfig fields defined for this backend and not for all of them (``setting(..., backends=("trl",))``)."""
    return tuple(f.name for f in dataclasses.fields(RunConfig)
                 if backend.name in f.metadata["backends"] and set(f.metadata["backends"]) != set(BOTH))


def ignored_settings(cfg: RunConfig, backend: Backend, others: list[Backend]) -> list[str]:
    """A note for each setting changed from its default that applies only to other backends than ``backend``."""
    defaults = RunConfig()
    mine = set(backend.settings())
    notes = []
    for other in others:
        for name in other.settings():
            if name not in mine and getattr(cfg, name) != getattr(defaults, name):
                notes.append(f"{name}: ignored on the {backend.name} backend (it applies to {other.name})")
    return notes


def engine_fraction(cfg: RunConfig, in_process: bool) -> float | None:
    """``cfg.gpu_memory_utilization`` for a vLLM engine. ``auto`` is resolved by pre-flight wherever an
    engine shares this process's GPU; left unresolved it is None: no engine here reads it."""
    if cfg.gpu_memory_utilization != AUTO_FRACTION:
        return cfg.gpu_memory_utilization
    if in_process:
        raise ConfigError("gpu_memory_utilization 'auto' is sized by pre-flight before the model loads (as `grpo-core run` does); "
                          "loading a model without it, pass a number, e.g. 0.5.")
    return None


def target_modules(model, wanted: list[str]) -> list[str]:
    """The LoRA targets this model has (an error listing its layers when it has none of them)."""
    names = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    present = [m for m in wanted if m in names]
    missing = [m for m in wanted if m not in names]
    if not present:
        raise ConfigError(f"none of the LoRA target modules {wanted} exist in this model; its linear layers include {sorted(names)[:20]}.")
    if missing:
        print(f"grpo-core: note: LoRA targets {missing} are not in this model and are skipped.", file=sys.stderr)
    return present
