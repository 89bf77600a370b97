"""What the machine offers: a CUDA GPU, Unsloth imported in the right order, and the model to load (a GGUF file converted once)."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path
from typing import Callable
from urllib.parse import urlparse

from grpo_core.errors import ConfigError
from grpo_core.runtime.gguf_model import converted_folder, gguf_file_in

BUNDLED_MODEL = Path(__file__).resolve().parent.parent / "assets" / "tiny-reasoner"


def resolve_model(model: str | None, echo: Callable[[str], None] = print, *, check_hub: bool = True) -> str:
    """The model to load: the bundled tiny reasoner when none is given, a local folder, or a hub id; a GGUF
    file, or a folder holding one, is converted once into a cached Hugging Face folder (:mod:`grpo_core.runtime.gguf_model`).

    A hub id that is not in the local cache while the hub cannot be reached (offline, or no network) is
    refused at once: most often it is a mistyped local path (``runs/my-modl``). ``check_hub=False`` skips
    that, for a caller that only names the model (an injected evaluation engine)."""
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
    if check_hub and not in_hub_cache(model) and (hub_offline() or not hub_reachable()):
        # shaped like owner/name, but the hub cannot be asked: a typo'd local path is the likely cause,
        # and transformers would retry the hub for a minute before its traceback
        near = f" ({str(p.parent)!r} exists: a typo in the folder name?)" if p.parent.is_dir() else ""
        raise ConfigError(
            f"no such folder {model!r}{near}, and it is not in the Hugging Face cache ({hub_cache_dir()}), which is all a "
            "run can use offline. Point --model at a saved model folder, or download the model first."
        )
    return model


def hub_offline() -> bool:
    """HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) is set."""
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on") for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def hub_cache_dir() -> Path:
    """Where huggingface_hub keeps downloaded models (its own environment variables, in its order)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    return Path(os.environ.get("HF_HOME", "~/.cache/huggingface")).expanduser() / "hub"


def in_hub_cache(repo_id: str) -> bool:
    return (hub_cache_dir() / f"models--{repo_id.replace('/', '--')}").is_dir()


def hub_reachable(timeout: float = 3.0) -> bool:
    """One TCP connection to the hub's endpoint (HF_ENDPOINT): no network means no download."""
    host = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    try:
        with socket.create_connection((host.hostname, host.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


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
