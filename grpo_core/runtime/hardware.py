"""What the machine offers: a CUDA GPU, Unsloth imported in the right order, and the model to load (a GGUF file converted once)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

from grpo_core.errors import ConfigError
from grpo_core.runtime.gguf_model import converted_folder, gguf_file_in

BUNDLED_MODEL = Path(__file__).resolve().parent.parent / "assets" / "tiny-reasoner"


def resolve_model(model: str | None, echo: Callable[[str], None] = print) -> str:
    """The model to load: the bundled tiny reasoner when none is given, a local folder, or a hub id; a GGUF
    file, or a folder holding one, is converted once into a cached Hugging Face folder (:mod:`grpo_core.runtime.gguf_model`)."""
    if model is None:
        if not (BUNDLED_MODEL / "config.json").is_file():
            raise ConfigError(f"the bundled tiny model is missing at {BUNDLED_MODEL}; reinstall grpo-core or pass --model.")
        return str(BUNDLED_MODEL)
    p = Path(model).expanduser()
    if p.exists() and (gguf := gguf_file_in(p)) is not None:
        return str(converted_folder(gguf, echo=echo))
    if p.exists():
        if not (p / "config.json").is_file():
            raise ConfigError(f"model folder {str(p)!r} has no config.json; point --model at a saved Hugging Face model folder or a .gguf file.")
        return str(p)
    if model.count("/") != 1 or model.startswith((".", "/")):
        raise ConfigError(f"model {model!r} is neither a local folder nor a hub id (owner/name).")
    return model


def cuda_available() -> bool:
    """True when torch sees a CUDA GPU (False when torch itself cannot be imported)."""
    try:
        import torch  # deferred: torch is heavy and asking costs nothing until a run needs the answer

        return torch.cuda.is_available()
    except Exception:  # noqa: BLE001
        return False


def import_unsloth_first() -> None:
    """Unsloth patches trl/transformers on import, so it must come first."""
    if "trl" in sys.modules and "unsloth" not in sys.modules:
        print("grpo-core: warning: trl was imported before unsloth; Unsloth's patches may be incomplete.", file=sys.stderr)
    try:
        import unsloth  # noqa: F401  (deferred: GPU-only, and it must be imported before trl)
    except Exception as exc:  # NotImplementedError on machines without a GPU
        raise ConfigError(f"Unsloth could not be imported ({type(exc).__name__}: {exc}); use --backend trl.") from None
