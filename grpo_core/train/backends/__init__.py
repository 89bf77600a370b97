"""The training backends, by name, and the choice among them.

Each backend is one module here implementing :class:`~grpo_core.train.backends.base.Backend`
(:mod:`~grpo_core.train.backends.trl`, :mod:`~grpo_core.train.backends.unsloth`) and one line in
:data:`REGISTERED`. ``backend: auto`` asks them in descending ``auto_rank``: Unsloth where a CUDA GPU
and Unsloth are present, else trl; but Unsloth declines for a 16-bit model whose trl + vLLM colocate
run (faster at 16-bit) fits beside vLLM's share (``auto_prefers: speed``, the default). Backends are
not a plugin hook (docs/architecture.md says why).
"""

from __future__ import annotations

from grpo_core.config.settings import RunConfig
from grpo_core.errors import ConfigError
from grpo_core.train.backends.base import Backend, LoadedPolicy, engine_fraction, ignored_settings
from grpo_core.train.backends.trl import TrlBackend
from grpo_core.train.backends.unsloth import UnslothBackend

__all__ = ["Backend", "LoadedPolicy", "REGISTERED", "choose_backend", "engine_fraction", "get_backend", "ignored_settings"]

#: every backend, by the name ``RunConfig.backend`` selects it with
REGISTERED: dict[str, Backend] = {b.name: b for b in (UnslothBackend(), TrlBackend())}


def get_backend(name: str) -> Backend:
    try:
        return REGISTERED[name]
    except KeyError:
        raise ConfigError(f"backend {name!r} is not one of auto, {', '.join(REGISTERED)}.") from None


def choose_backend(cfg: RunConfig) -> tuple[Backend, str]:
    """The backend to use and why, without importing Unsloth."""
    if cfg.backend != "auto":
        backend = get_backend(cfg.backend)
        problem = backend.unavailable(cfg)
        if problem:
            raise ConfigError(problem)
        return backend, f"backend set to {backend.name} (--backend, preset or config)"
    declined: list[str] = []
    for backend in sorted(REGISTERED.values(), key=lambda b: -b.auto_rank):
        picked, reason = backend.auto_choice(cfg)
        if picked:
            return backend, reason or (declined[-1] if declined else "the only backend")
        declined.append(reason or f"{backend.name} declined")
    raise ConfigError(f"no backend can run here: {'; '.join(declined)}.")


def others(backend: Backend) -> list[Backend]:
    """Every registered backend but this one."""
    return [b for b in REGISTERED.values() if b is not backend]
