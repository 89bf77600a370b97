"""Random-weight models with real shapes, for benchmarks and GPU tests.

Nothing is downloaded: the config is written from the published shapes and the
tokenizer is synthetic — the 256 byte-level symbols, the ChatML specials, and
filler tokens up to the real vocabulary size, so every id the model can emit
decodes to text. Speed and memory depend on the shapes alone, so this is the
right model for measuring them (never for measuring quality).

By default every byte is one token, so a prompt is 3-4 times longer in tokens
than under the real tokenizer. Given a ``corpus``, the first ids are instead a
byte-level BPE trained on it, with digits split one by one as Qwen2's tokenizer
does: GSM8K questions then come to about 3.9 characters per token, close to a
real 150k-token vocabulary on English, so prompt lengths (and the cost of the
passes that read them) match the real workflow.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Iterable

from grpo_core.kit.chat_templates import CHATML

SHAPES = {
    # hidden, intermediate, layers, heads, kv_heads, vocab, tied
    "qwen2.5-0.5b": dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True),
    "qwen2.5-1.5b": dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12, num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True),
    "qwen2.5-3b": dict(hidden_size=2048, intermediate_size=11008, num_hidden_layers=36, num_attention_heads=16, num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True),
    # SmolLM2-135M's sizes (a Llama there; a Qwen2 here: the same matrices, plus q/k/v biases): where fixed per-step costs dominate
    "smollm2-135m": dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3, vocab_size=49152, tie_word_embeddings=True),
    # small but vLLM-friendly (head_dim 64), for quick GPU tests
    "small": dict(hidden_size=256, intermediate_size=512, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, vocab_size=4096, tie_word_embeddings=True),
}
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def synthetic_tokenizer(vocab_size: int, corpus: Iterable[str] | None = None, learned: int = 16000):
    """A byte-level tokenizer with ``vocab_size`` ids: the specials, then bytes (or, with ``corpus``,
    up to ``learned`` BPE tokens trained on it), then filler tokens that decode to `` t<n>``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers  # deferred: heavy (tokenizers)
    from transformers import PreTrainedTokenizerFast  # deferred: heavy (transformers)

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    splitter = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)])
    merges: list[tuple[str, str]] = []
    if corpus is None:
        vocab = {s: i for i, s in enumerate(SPECIALS + alphabet)}
    else:
        trained = Tokenizer(models.BPE())
        trained.pre_tokenizer = splitter
        trainer = trainers.BpeTrainer(vocab_size=min(learned, vocab_size), initial_alphabet=alphabet, special_tokens=SPECIALS, show_progress=False)
        trained.train_from_iterator(corpus, trainer)
        state = json.loads(trained.to_str())["model"]
        vocab = dict(state["vocab"])
        merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ", 1)) for m in state["merges"]]
    i = 0
    while len(vocab) < vocab_size:
        if f"Ġt{i}" not in vocab:
            vocab[f"Ġt{i}"] = len(vocab)
        i += 1
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tok.pre_tokenizer = splitter
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(SPECIALS)
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>", padding_side="left")
    hf.chat_template = CHATML
    return hf


def build_random_model(out: str | Path, shape: str = "qwen2.5-0.5b", *, seed: int = 0, device: str | None = None, dtype: str = "bfloat16",
                       corpus: Iterable[str] | None = None) -> Path:
    """Write a random-weight Qwen2 model of ``shape`` with a synthetic tokenizer to ``out`` (kept if
    ``out`` already holds a model; use a different folder per tokenizer). ``corpus``: see the module doc."""
    import torch  # deferred: heavy (torch)
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM  # deferred: heavy (transformers)

    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}; choose one of {', '.join(SHAPES)}")
    out = Path(out)
    if (out / "config.json").is_file():
        return out
    tok = synthetic_tokenizer(SHAPES[shape]["vocab_size"], corpus)
    cfg = Qwen2Config(
        **SHAPES[shape],
        max_position_embeddings=32768,
        rope_theta=1_000_000.0,
        rms_norm_eps=1e-6,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        bos_token_id=None,
    )
    torch.manual_seed(seed)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    old = torch.get_default_dtype()
    torch.set_default_dtype(getattr(torch, dtype))
    try:
        with torch.device(device):
            model = Qwen2ForCausalLM(cfg)
    finally:
        torch.set_default_dtype(old)
    model.generation_config = GenerationConfig(eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    del model
    return out


if __name__ == "__main__":  # python -m grpo_core.testing.modelgen OUT [SHAPE]
    print(build_random_model(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "qwen2.5-0.5b"))
