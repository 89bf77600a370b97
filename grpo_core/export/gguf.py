"""GGUF files for llama.cpp, written here with the ``gguf`` package: offline, on CPU, no tool downloaded.

Supported: the Qwen2 and Llama architectures (``Qwen2ForCausalLM``,
``LlamaForCausalLM``) with a byte-level BPE tokenizer (``tokenizer.json``),
in f32, f16, bf16 and q8_0. q4_k_m (and the other k-quants) are made from the
f16 file by llama.cpp's own quantizer through ``llama-cpp-python``, when that
is installed.

The layout follows llama.cpp's conventions (learned from its converter, not
copied): tensor names ``token_embd``/``blk.N.attn_q``/...; Llama's q and k
projections are permuted from the Hugging Face rotate-half RoPE layout to
llama.cpp's interleaved one (Qwen2 uses NeoX RoPE in llama.cpp, so no
permutation); norms and biases stay f32; Llama-3 RoPE scaling becomes a
``rope_freqs`` tensor; the vocabulary is padded to ``vocab_size`` with unused
``[PADn]`` tokens; added special tokens are "control" tokens.

:func:`read_gguf_state_dict` does the reverse (dequantize and un-permute) so a
GGUF file can be loaded back into the Hugging Face architecture and checked
without llama.cpp.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grpo_core.errors import ConfigError

ARCHS = {"Qwen2ForCausalLM": "qwen2", "LlamaForCausalLM": "llama"}
GGUF_TYPES = ("f32", "f16", "bf16", "q8_0")
LLAMA_CPP_TYPES = ("q4_k_m", "q4_k_s", "q5_k_m", "q5_k_s", "q6_k", "q4_0", "q5_0", "q3_k_m", "q2_k")

# pre-tokenizer regexes llama.cpp knows by name
_PRE_TOKENIZERS = {
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+": "qwen2",
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+": "llama-bpe",
}

_LAYER_MAP = {
    "input_layernorm.weight": "attn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.q_proj.bias": "attn_q.bias",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.k_proj.bias": "attn_k.bias",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.v_proj.bias": "attn_v.bias",
    "self_attn.o_proj.weight": "attn_output.weight",
    "self_attn.o_proj.bias": "attn_output.bias",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}
_TOP_MAP = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight", "lm_head.weight": "output.weight"}
_SKIP = re.compile(r"(rotary_emb\.inv_freq|\.rotary_emb\.)")


@dataclass
class GGUFInfo:
    path: Path
    arch: str
    qtype: str
    tensors: int
    vocab: int
    tokenizer_pre: str
    notes: list[str] = field(default_factory=list)


def gguf_arch(config) -> str:
    archs = list(getattr(config, "architectures", None) or [])
    for a in archs:
        if a in ARCHS:
            return ARCHS[a]
    raise ConfigError(
        f"GGUF export supports {', '.join(ARCHS)}; this model is {archs or type(config).__name__}. "
        "Export --format merged_16bit and convert it with llama.cpp's convert_hf_to_gguf.py."
    )


def permute_qk(w, n_head: int):
    """Hugging Face rotate-half layout -> llama.cpp interleaved RoPE layout (rows of each head)."""
    shape = w.shape
    return w.reshape(n_head, 2, shape[0] // n_head // 2, *shape[1:]).swapaxes(1, 2).reshape(shape)


def unpermute_qk(w, n_head: int):
    shape = w.shape
    return w.reshape(n_head, shape[0] // n_head // 2, 2, *shape[1:]).swapaxes(1, 2).reshape(shape)


def hf_to_gguf_name(name: str) -> str | None:
    if name in _TOP_MAP:
        return _TOP_MAP[name]
    m = re.fullmatch(r"model\.layers\.(\d+)\.(.+)", name)
    if m and m.group(2) in _LAYER_MAP:
        return f"blk.{m.group(1)}.{_LAYER_MAP[m.group(2)]}"
    return None


def gguf_to_hf_name(name: str) -> str | None:
    inv_top = {v: k for k, v in _TOP_MAP.items()}
    if name in inv_top:
        return inv_top[name]
    inv_layer = {v: k for k, v in _LAYER_MAP.items()}
    m = re.fullmatch(r"blk\.(\d+)\.(.+)", name)
    if m and m.group(2) in inv_layer:
        return f"model.layers.{m.group(1)}.{inv_layer[m.group(2)]}"
    return None


def _rope(config) -> tuple[float, dict]:
    params = dict(getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {})
    theta = params.get("rope_theta", getattr(config, "rope_theta", 10000.0))
    return float(theta), params


def _head_dim(config) -> int:
    return int(getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads)


def llama3_rope_factors(config) -> list[float]:
    """The per-frequency divisors llama.cpp applies for Llama-3 RoPE scaling (``rope_freqs.weight``)."""
    theta, p = _rope(config)
    dim = _head_dim(config)
    factor = float(p.get("factor", 8.0))
    low, high = float(p.get("low_freq_factor", 1.0)), float(p.get("high_freq_factor", 4.0))
    old_ctx = float(p.get("original_max_position_embeddings", 8192))
    low_wavelen, high_wavelen = old_ctx / low, old_ctx / high
    out = []
    for i in range(0, dim, 2):
        freq = 1.0 / (theta ** (i / dim))
        wavelen = 2 * math.pi / freq
        if wavelen < high_wavelen:
            out.append(1.0)
        elif wavelen > low_wavelen:
            out.append(factor)
        else:
            smooth = (old_ctx / wavelen - low) / (high - low)
            out.append(1.0 / ((1 - smooth) / factor + smooth))
    return out


def _tokenizer_pre(tok_json: dict, arch: str, notes: list[str]) -> str:
    pre = tok_json.get("pre_tokenizer") or {}
    steps = pre.get("pretokenizers", [pre]) if pre.get("type") == "Sequence" else [pre]
    for st in steps:
        if st.get("type") == "Split":
            pattern = (st.get("pattern") or {}).get("Regex")
            if pattern in _PRE_TOKENIZERS:
                return _PRE_TOKENIZERS[pattern]
        if st.get("type") == "ByteLevel" and st.get("use_regex", True) and len(steps) == 1:
            return "gpt-2"
    default = {"qwen2": "qwen2", "llama": "llama-bpe"}[arch]
    notes.append(f"pre-tokenizer not recognised; wrote {default!r} (llama.cpp's tokenization is compared in the check)")
    return default


def _vocab(tokenizer, vocab_size: int, notes: list[str]) -> tuple[dict, list[str], list[int], list[str]]:
    import gguf  # deferred: optional extra (export)

    if not getattr(tokenizer, "is_fast", False):
        raise ConfigError("GGUF export needs a fast (tokenizer.json) byte-level BPE tokenizer; SentencePiece tokenizers are not supported here.")
    tok_json = json.loads(tokenizer.backend_tokenizer.to_str())
    model = tok_json.get("model", {})
    if model.get("type") != "BPE":
        raise ConfigError(f"GGUF export supports byte-level BPE tokenizers; this one is {model.get('type')!r}.")
    vocab: dict[str, int] = dict(model["vocab"])
    added = {a["id"]: a for a in tok_json.get("added_tokens", [])}
    for i, a in added.items():
        vocab[a["content"]] = i
    rev = {i: t for t, i in vocab.items()}
    n = max(vocab_size, max(rev) + 1)
    tokens, types = [], []
    for i in range(n):
        if i not in rev:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
        elif i in added:
            tokens.append(rev[i])
            types.append(gguf.TokenType.CONTROL if added[i].get("special") else gguf.TokenType.USER_DEFINED)
        else:
            tokens.append(rev[i])
            types.append(gguf.TokenType.NORMAL)
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]
    if n > vocab_size:
        notes.append(f"the tokenizer has {n} tokens, more than the model's vocab_size {vocab_size}")
    return tok_json, tokens, types, merges


def write_gguf(state_dict: dict, config, tokenizer, path: str | Path, qtype: str = "f16", *, name: str = "grpo-core export") -> GGUFInfo:
    """Write a merged model (a Hugging Face state dict + config + tokenizer) as GGUF."""
    import gguf  # deferred: optional extra (export)
    import numpy as np  # deferred: heavy (numpy)
    import torch  # deferred: heavy (torch)

    if qtype not in GGUF_TYPES:
        raise ConfigError(f"GGUF type {qtype!r} is written by llama.cpp's quantizer, not here; written here: {', '.join(GGUF_TYPES)}.")
    arch = gguf_arch(config)
    notes: list[str] = []
    stray = [k for k in state_dict if "lora_" in k or "base_layer" in k]
    if stray:
        raise ConfigError(f"the state dict still holds LoRA tensors ({stray[0]}, ...): merge the adapter before writing GGUF.")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ftype = {"f32": gguf.LlamaFileType.ALL_F32, "f16": gguf.LlamaFileType.MOSTLY_F16, "bf16": gguf.LlamaFileType.MOSTLY_BF16, "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0}[qtype]
    w = gguf.GGUFWriter(str(path), arch)
    n_head, n_kv = config.num_attention_heads, getattr(config, "num_key_value_heads", None) or config.num_attention_heads
    head_dim = _head_dim(config)
    theta, rope = _rope(config)
    w.add_name(name)
    w.add_context_length(config.max_position_embeddings)
    w.add_embedding_length(config.hidden_size)
    w.add_block_count(config.num_hidden_layers)
    w.add_feed_forward_length(config.intermediate_size)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_kv)
    w.add_rope_freq_base(theta)
    w.add_layer_norm_rms_eps(config.rms_norm_eps)
    w.add_file_type(ftype)
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    if head_dim != config.hidden_size // n_head:
        w.add_key_length(head_dim)
        w.add_value_length(head_dim)
    if arch == "llama":
        w.add_rope_dimension_count(head_dim)
        w.add_vocab_size(config.vocab_size)
    rope_type = rope.get("rope_type", rope.get("type", "default")) or "default"
    extra: list[tuple[str, Any]] = []
    if rope_type == "llama3":
        extra.append(("rope_freqs.weight", np.asarray(llama3_rope_factors(config), dtype=np.float32)))
    elif rope_type == "linear":
        w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        w.add_rope_scaling_factor(float(rope["factor"]))
    elif rope_type == "yarn":
        w.add_rope_scaling_type(gguf.RopeScalingType.YARN)
        w.add_rope_scaling_factor(float(rope["factor"]))
        w.add_rope_scaling_orig_ctx_len(int(rope.get("original_max_position_embeddings", config.max_position_embeddings)))
    elif rope_type != "default":
        raise ConfigError(f"GGUF export: RoPE scaling {rope_type!r} is not supported here.")

    tok_json, tokens, types, merges = _vocab(tokenizer, config.vocab_size, notes)
    pre = _tokenizer_pre(tok_json, arch, notes)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(pre)
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    for kind, tid in (("bos", tokenizer.bos_token_id), ("eos", tokenizer.eos_token_id), ("pad", tokenizer.pad_token_id)):
        if tid is not None:
            getattr(w, f"add_{kind}_token_id")(int(tid))
    w.add_add_bos_token(bool(tokenizer.bos_token_id is not None and getattr(tokenizer, "add_bos_token", arch == "llama")))
    if getattr(tokenizer, "chat_template", None):
        w.add_chat_template(tokenizer.chat_template)

    tied = bool(getattr(config, "tie_word_embeddings", False))
    count = 0
    for hf_name, tensor in state_dict.items():
        if _SKIP.search(hf_name):
            continue
        if tied and hf_name == "lm_head.weight":
            continue
        gname = hf_to_gguf_name(hf_name)
        if gname is None:
            raise ConfigError(f"GGUF export ({arch}): no llama.cpp name for tensor {hf_name!r}; refusing to drop it silently.")
        data = tensor.detach().to(torch.float32).cpu().numpy()
        if arch == "llama" and (".attn_q." in gname or ".attn_k." in gname):
            data = permute_qk(data, n_head if ".attn_q." in gname else n_kv)
        _add(w, gname, data, qtype)
        count += 1
    for gname, data in extra:
        w.add_tensor(gname, data)
        count += 1
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return GGUFInfo(path, arch, qtype, count, len(tokens), pre, notes)


def _add(w, name: str, data, qtype: str) -> None:
    import gguf  # deferred: optional extra (export)
    import numpy as np  # deferred: heavy (numpy)

    if data.ndim <= 1 or qtype == "f32":
        w.add_tensor(name, data.astype(np.float32))
    elif qtype == "f16":
        w.add_tensor(name, data.astype(np.float16))
    elif qtype == "bf16":
        w.add_tensor(name, gguf.quants.quantize(data, gguf.GGMLQuantizationType.BF16), raw_dtype=gguf.GGMLQuantizationType.BF16)
    elif data.shape[-1] % 32:  # q8_0 blocks are 32 wide; llama.cpp's converter falls back the same way
        w.add_tensor(name, data.astype(np.float16))
    else:
        w.add_tensor(name, gguf.quants.quantize(data, gguf.GGMLQuantizationType.Q8_0), raw_dtype=gguf.GGMLQuantizationType.Q8_0)


# --- reading back -------------------------------------------------------------------------------

def gguf_metadata(path: str | Path) -> dict[str, Any]:
    import gguf  # deferred: optional extra (export)

    r = gguf.GGUFReader(str(path))
    out = {}
    for name, f in r.fields.items():
        if name.startswith("GGUF."):
            continue
        try:
            out[name] = f.contents()
        except Exception:  # noqa: BLE001
            out[name] = None
    return out


def read_gguf_state_dict(path: str | Path, config) -> dict:
    """Dequantize every tensor of a GGUF file and map it back to Hugging Face names and layouts."""
    import gguf  # deferred: optional extra (export)
    import numpy as np  # deferred: heavy (numpy)
    import torch  # deferred: heavy (torch)

    r = gguf.GGUFReader(str(path))
    arch = gguf_arch(config)
    n_head = config.num_attention_heads
    n_kv = getattr(config, "num_key_value_heads", None) or n_head
    sd = {}
    for t in r.tensors:
        if t.name == "rope_freqs.weight":
            continue
        hf = gguf_to_hf_name(t.name)
        if hf is None:
            raise ConfigError(f"GGUF tensor {t.name!r} has no Hugging Face counterpart.")
        shape = tuple(int(x) for x in reversed(list(t.shape)))
        arr = gguf.quants.dequantize(np.asarray(t.data), t.tensor_type).reshape(shape).astype(np.float32)
        if arch == "llama" and (".attn_q." in t.name or ".attn_k." in t.name):
            arr = unpermute_qk(arr, n_head if ".attn_q." in t.name else n_kv)
        sd[hf] = torch.from_numpy(np.ascontiguousarray(arr))
    if "lm_head.weight" not in sd and getattr(config, "tie_word_embeddings", False):
        sd["lm_head.weight"] = sd["model.embed_tokens.weight"]
    return sd


def load_gguf_as_hf(path: str | Path, config):
    """The GGUF file's weights in a fresh Hugging Face model of ``config`` (float32, CPU)."""
    import torch  # deferred: heavy (torch)
    from transformers import AutoModelForCausalLM  # deferred: heavy (transformers)

    sd = read_gguf_state_dict(path, config)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(sd, strict=False)
    missing = [m for m in missing if not _SKIP.search(m) and not (m == "lm_head.weight" and getattr(config, "tie_word_embeddings", False))]
    if missing or unexpected:
        raise ConfigError(f"GGUF file {path} does not fill the model: missing {missing[:5]}, unexpected {list(unexpected)[:5]}.")
    if getattr(config, "tie_word_embeddings", False):
        model.tie_weights()
    return model.eval()
