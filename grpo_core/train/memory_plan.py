"""What a run's vLLM engine needs from the GPU, worked out from the model's config before anything loads.

vLLM's ``gpu_memory_utilization`` is a fraction of the GPU's *total* memory, and its engine must fit
the model's weights plus the KV cache in it (plus CUDA graphs and an activation workspace). A fraction
too small fails only after the model has loaded, with an error about cache blocks; one too large
reserves memory the trainer then lacks. Pre-flight prints the numbers behind the choice:

* weights as vLLM holds them (16-bit; 4-bit linear layers at ~0.53 byte per parameter);
* the KV cache one sequence of the engine's full model length needs (vLLM refuses to start below
  the weights plus that: the *floor*);
* the KV cache one generation round needs: every completion at full length after the longest prompt
  the round can hold (not the engine's model length, which is usually longer); with the weights and
  an allowance for the engine's other buffers this is the *comfortable* size, the one ``auto`` picks
  (:func:`auto_fraction`);

and refuses a fraction that cannot hold the floor, naming the smallest fraction that can. It never
refuses on the estimate of overheads, which depend on the vLLM version: that is a warning.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grpo_core.errors import PreflightError

GIB = 2**30
#: CUDA graphs, the activation workspace for vLLM's batched tokens and the sampler's buffers: an
#: allowance for the warning and for ``auto``, not a refusal (it varies with the vLLM version and the
#: model). Measured at 0.6 GiB for Qwen2.5-3B on vLLM 0.26 through TRL colocate on an H200 (fraction
#: 0.05 = 7.0 GiB failed with 0.64 GiB left for KV cache beside 5.75 GiB of weights: 7.0 - 5.75 - 0.64);
#: 1.0 leaves a margin for other models and versions.
ENGINE_ALLOWANCE_GIB = 1.0
#: bitsandbytes nf4 with double quantisation: 4 bits per weight plus block statistics
NF4_BYTES_PER_PARAM = 0.53


@dataclass(frozen=True)
class Shapes:
    """The parts of a decoder-only model's config that decide its size."""

    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    tied: bool

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> "Shapes":
        cfg = cfg.get("text_config", cfg)  # multimodal configs nest the language model's
        try:
            hidden, heads = int(cfg["hidden_size"]), int(cfg["num_attention_heads"])
            return cls(
                hidden=hidden,
                intermediate=int(cfg["intermediate_size"]),
                layers=int(cfg["num_hidden_layers"]),
                heads=heads,
                kv_heads=int(cfg.get("num_key_value_heads") or heads),
                head_dim=int(cfg.get("head_dim") or hidden // heads),
                vocab=int(cfg["vocab_size"]),
                tied=bool(cfg.get("tie_word_embeddings", False)),
            )
        except KeyError as exc:
            raise ValueError(f"config.json lacks {exc.args[0]!r}; cannot size the model") from None

    def linear_params(self) -> int:
        """Parameters in the attention and MLP projections (what 4-bit quantises)."""
        q_o = 2 * self.hidden * self.heads * self.head_dim
        k_v = 2 * self.hidden * self.kv_heads * self.head_dim
        mlp = 3 * self.hidden * self.intermediate
        return self.layers * (q_o + k_v + mlp)

    def other_params(self) -> int:
        """Embeddings, the output head when untied, norms and biases (kept in 16-bit)."""
        embed = self.vocab * self.hidden * (1 if self.tied else 2)
        return embed + self.layers * 2 * self.hidden + self.hidden

    def weight_bytes(self, load_in_4bit: bool) -> int:
        """The weights as vLLM holds them: 16-bit, or 4-bit projections beside 16-bit embeddings and norms."""
        linear = self.linear_params() * (NF4_BYTES_PER_PARAM if load_in_4bit else 2)
        return int(linear + self.other_params() * 2)

    def kv_bytes_per_token(self, dtype_bytes: int = 2) -> int:
        return 2 * self.layers * self.kv_heads * self.head_dim * dtype_bytes


def read_config(model_path: str) -> dict[str, Any] | None:
    """The model's config.json from a local folder (None for a hub id: pre-flight downloads nothing)."""
    p = Path(model_path) / "config.json"
    return json.loads(p.read_text()) if p.is_file() else None


@dataclass(frozen=True)
class VllmNeed:
    weights: int
    kv_round: int  # every sequence of a generation round at the longest length the round can reach
    kv_one_sequence: int  # one sequence of the engine's model length

    @property
    def floor(self) -> int:
        """Below this vLLM cannot start: the weights and one sequence of the engine's model length."""
        return self.weights + self.kv_one_sequence

    @property
    def comfortable(self) -> int:
        """A whole round's KV cache and the engine allowance on top of the weights."""
        return self.weights + self.kv_round + int(ENGINE_ALLOWANCE_GIB * GIB)


def vllm_need(shapes: Shapes, *, sequences: int, max_len: int, round_len: int, load_in_4bit: bool) -> VllmNeed:
    """``max_len``: the engine's model length (what vLLM checks at start); ``round_len``: the longest
    sequence a round really holds (longest prompt + max_completion_length), capped at ``max_len``."""
    per_token = shapes.kv_bytes_per_token()
    round_len = min(round_len, max_len)
    return VllmNeed(weights=shapes.weight_bytes(load_in_4bit), kv_round=sequences * round_len * per_token, kv_one_sequence=max_len * per_token)


def gpu_total_bytes() -> int:
    """Total memory of the current CUDA device: what vLLM's gpu_memory_utilization is a fraction of."""
    import torch  # deferred: heavy (torch)

    return torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory


def auto_fraction(need: VllmNeed, total_bytes: int) -> float:
    """The comfortable size as a fraction of the GPU, rounded up to the next 0.01 (at most 1)."""
    hundredths = -(-need.comfortable * 100 // total_bytes)  # integer ceiling: never below the comfortable size
    return min(1.0, hundredths / 100)


def check_fraction(need: VllmNeed, fraction: float, total_bytes: int, *, auto: bool = False) -> tuple[str, str | None]:
    """(the line pre-flight prints, a warning or None); raises when the fraction cannot hold the floor.
    ``auto``: the fraction is :func:`auto_fraction`'s, and the line says so."""

    def frac(n: int) -> float:
        return n / total_bytes

    given = fraction * total_bytes
    suggested = auto_fraction(need, total_bytes)
    line = (f"vLLM memory: {fraction:g} x {total_bytes / GIB:.1f} GiB = {given / GIB:.1f} GiB for weights {need.weights / GIB:.1f} GiB "
            f"+ KV cache {need.kv_round / GIB:.2f} GiB for a whole round (smallest fraction that starts: {frac(need.floor):.3f}; "
            f"with a round's KV and ~{ENGINE_ALLOWANCE_GIB} GiB for CUDA graphs and buffers: {frac(need.comfortable):.3f})")
    if auto:
        line += (f"; {fraction:g} chosen automatically (gpu_memory_utilization auto) from those {need.comfortable / GIB:.2f} GiB "
                 f"of weights, a round's KV and the allowance, rounded up to the next 0.01")
    if given < need.floor:
        if need.floor > total_bytes:
            fix = "this GPU cannot hold them at any fraction: use --load-in-4bit, a shorter --set max_seq_length=N or a larger GPU."
        else:
            fix = (f"use --gpu-memory-utilization {suggested:g} (what auto picks) to hold a whole round (at least "
                   f"{frac(need.floor):.3f} to start), or --load-in-4bit.")
        raise PreflightError(
            f"gpu_memory_utilization {fraction:g} gives vLLM {given / GIB:.1f} GiB of this GPU's {total_bytes / GIB:.1f} GiB, less than "
            f"the model's weights ({need.weights / GIB:.1f} GiB) plus the KV cache of one full-length sequence "
            f"({need.kv_one_sequence / GIB:.2f} GiB): vLLM would fail after loading; {fix}"
        )
    warning = None
    if given < need.comfortable:
        fix = (f"{suggested:g} would hold it (what --gpu-memory-utilization auto picks)." if need.comfortable <= total_bytes
               else "not even the whole GPU would hold it: --load-in-4bit or fewer completions per generation round would.")
        warning = (f"gpu_memory_utilization {fraction:g} leaves vLLM less than a whole round's KV cache plus ~{ENGINE_ALLOWANCE_GIB} GiB "
                   f"for CUDA graphs and buffers; it may start and then generate a round in several batches, or fail. {fix}")
    return line, warning


#: what the trainer keeps beside its weights, activations and vLLM's share: the CUDA context, the
#: allocator's fragmentation, the LoRA optimizer states, the full-vocabulary logits of the loss
TRAINER_MARGIN_FRACTION = 0.10
TRAINER_MARGIN_GIB = 2.0


def activation_bytes_per_token(shapes: Shapes, lora_r: int) -> int:
    """Bytes autograd keeps per token for one pass of every decoder layer without recomputation, in 16-bit,
    LoRA on the seven projections: the norms' float32 inputs, the projections' inputs and outputs, rotary,
    attention (no L×L matrix: PyTorch's fused attention), the MLP's gate, up and activation, the adapters'
    rank-r outputs. An upper estimate: 149 KB per token-layer at Qwen2.5-3B's shapes, where the H200 run
    of 2026-11-21 14:39 measured about 110 KB (16.9 GiB more for 8 × ~570 tokens)."""
    kv = shapes.kv_heads * shapes.head_dim
    per_layer = 28 * shapes.hidden + 12 * kv + 8 * shapes.intermediate + 14 * lora_r
    return shapes.layers * per_layer


def keep_activations(shapes: Shapes, *, rows: int, max_len: int, completion_len: int, lora_r: int, vllm_fraction: float,
                     total_bytes: int, load_in_4bit: bool) -> tuple[bool, str]:
    """Whether a micro-batch of ``rows`` sequences of up to ``max_len`` tokens can keep its activations
    (no recomputation), and why: they must fit in what vLLM's share, the trainer's weights, the logits
    and a margin leave of the GPU."""
    activations = rows * max_len * activation_bytes_per_token(shapes, lora_r)
    logits = rows * completion_len * shapes.vocab * 6  # 16-bit logits and their gradient, float32 reductions
    free = total_bytes * (1 - vllm_fraction - TRAINER_MARGIN_FRACTION) - shapes.weight_bytes(load_in_4bit) - logits - TRAINER_MARGIN_GIB * GIB
    fits = activations <= free
    why = (f"activations for {rows} × {max_len} tokens ≈ {activations / GIB:.1f} GiB "
           f"{'fit in' if fits else 'exceed'} the {max(free, 0) / GIB:.1f} GiB left beside vLLM's {vllm_fraction:g}, "
           f"the weights and a margin")
    return fits, why
