"""Extra arguments for the vLLM engine TRL starts in colocate mode.

TRL builds ``vllm.LLM(...)`` itself, with a fixed set of arguments, inside ``GRPOTrainer.__init__``.
``vllm_engine_kwargs`` (a run setting) adds to them or overrides them — ``enforce_eager``,
``kv_cache_dtype``, ``async_scheduling``, ``max_num_seqs`` and the like — by wrapping the ``LLM``
name in TRL's generation module while the trainer is built. vLLM is never imported here.
"""

from __future__ import annotations

import contextlib
import importlib
from typing import Any, Iterator

TRL_GENERATION_MODULE = "trl.generation.vllm_generation"


@contextlib.contextmanager
def extra_engine_kwargs(extra: dict[str, Any] | None, echo=print) -> Iterator[None]:
    """While active, every ``LLM(...)`` TRL's colocate generator makes gets ``extra`` on top of TRL's arguments."""
    if not extra:
        yield
        return
    module = importlib.import_module(TRL_GENERATION_MODULE)
    original = getattr(module, "LLM", None)
    if original is None:  # vLLM not installed: TRL will raise its own error when it needs the engine
        yield
        return

    def build(*args, **kwargs):
        overridden = sorted(k for k in extra if k in kwargs and kwargs[k] != extra[k])
        echo("vLLM engine: " + ", ".join(f"{k}={v!r}" for k, v in extra.items())
             + (f" (overriding TRL's {', '.join(overridden)})" if overridden else ""))
        return original(*args, **{**kwargs, **extra})

    module.LLM = build
    try:
        yield
    finally:
        module.LLM = original
