#!/usr/bin/env python
"""Build the bundled tiny reasoner: tokenizer, a small Qwen2 model, and SFT.

    .venv/bin/python scripts/build_tiny_model.py            # writes grpo_core/assets/tiny-reasoner/

Everything is deterministic from fixed seeds and runs offline on a CPU:

1. a byte-level BPE tokenizer trained on the bundled arithmetic task's text
   (the exact Qwen2 normaliser and pre-tokeniser, so ``AutoTokenizer`` reloads it
   as ``Qwen2Tokenizer`` with identical ids; digits stay single tokens), with
   ``<|endoftext|>`` (pad), ``<|im_start|>``, ``<|im_end|>`` (eos) as special
   tokens, the four XML tags as ordinary added tokens (so they survive
   ``skip_special_tokens``) and a ChatML chat template;
2. a small ``Qwen2ForCausalLM`` with tied embeddings;
3. supervised fine-tuning on the ``solution`` replies of the train split, the
   loss on completion tokens only (the reply and its ``<|im_end|>``);
4. greedy evaluation on the held-out split (accuracy and format rate), saved
   with the weights as ``build_info.json``.

Bit-for-bit equality of the weights needs the same torch version, thread count
and CPU kind; the tokenizer and data are identical everywhere.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_OUT = ROOT / "grpo_core" / "assets" / "tiny-reasoner"

SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
XML_TAGS = ["<reasoning>", "</reasoning>", "<answer>", "</answer>"]
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


# --- tokenizer ---------------------------------------------------------------------


def corpus_texts(train_rows, system_prompt: str) -> list[str]:
    """Text the BPE is trained on: every train question and reply, the prompts' frame."""
    # The frame is repeated so that its words become single tokens (BPE needs frequency).
    texts = [system_prompt, "system\nuser\nassistant\n"] * 100
    for r in train_rows:
        texts.append(r["question"])
        texts.append(r["solution"])
    return texts


def build_tokenizer(texts: list[str], vocab_size: int):
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    tok = Tokenizer(
        models.BPE(
            dropout=None, unk_token=None, continuing_subword_prefix="", end_of_word_suffix="", fuse_unk=False, byte_fallback=False
        )
    )
    # Exactly Qwen2Tokenizer's pipeline: transformers 5 rebuilds it on reload (config says qwen2).
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    # Tags must not be learned as merges of their parts: strip them from the corpus.
    clean = [t for text in texts for t in _split_tags(text)]
    tok.train_from_iterator(clean, trainer=trainer)
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in XML_TAGS])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        padding_side="left",
        model_max_length=512,
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def _split_tags(text: str) -> list[str]:
    import re

    return [p for p in re.split(r"</?(?:reasoning|answer)>", text) if p]


def check_tokenizer_roundtrip(tok, path: Path, samples: list[str]) -> None:
    """Reload through AutoTokenizer; ids, decoding and the template must be identical."""
    from transformers import AutoTokenizer

    re_tok = AutoTokenizer.from_pretrained(str(path))
    for s in samples:
        a, b = tok(s)["input_ids"], re_tok(s)["input_ids"]
        if a != b:
            raise SystemExit(f"tokenizer round trip changed ids for {s!r}:\n{a}\n{b}")
        if re_tok.decode(b) != s:
            raise SystemExit(f"tokenizer round trip changed text: {s!r} -> {re_tok.decode(b)!r}")
    msgs = [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}]
    t1 = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    t2 = re_tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    if t1 != t2:
        raise SystemExit(f"chat template differs after reload: {t1!r} vs {t2!r}")
    if re_tok.eos_token != "<|im_end|>" or re_tok.pad_token != "<|endoftext|>":
        raise SystemExit(f"special tokens changed on reload: eos={re_tok.eos_token!r} pad={re_tok.pad_token!r}")
    # The XML tags must survive skip_special_tokens (TRL decodes completions that way).
    reply = samples[-1] + "<|im_end|>"
    if re_tok.decode(re_tok(reply)["input_ids"], skip_special_tokens=True) != samples[-1]:
        raise SystemExit("XML tags do not survive skip_special_tokens")


# --- data ---------------------------------------------------------------------------

#: sub verbs the imperfect teacher misreads as gains ("loses 5" -> "+ 5")
MISREAD_VERBS = (" loses ", " uses ")


def teacher_reply(row: dict, rng: random.Random, error_rate: float) -> str:
    """The SFT target: the gold ``solution``, or with probability ``error_rate`` the
    reply of an imperfect teacher that makes one of two classic word-problem mistakes:

    * it reads "loses N" / "uses N" as a gain (adds instead of subtracting),
    * in "has C ... buys A boxes of B" it forgets the C it started with.

    The arithmetic of a flawed reply is still right for what it wrote, and its format
    is perfect; only the reward (the verifier) can tell it is wrong.
    """
    from grpo_core.kit.prompts import format_xml

    kind, q = row["kind"], row["question"]
    misread = kind in ("sub", "add_sub", "sub_add") and any(v in q for v in MISREAD_VERBS)
    forget = kind == "mul_add"
    if not (misread or forget) or rng.random() >= error_rate:
        return row["solution"]
    lines = row["solution"].split("<reasoning>\n", 1)[1].split("\n</reasoning>", 1)[0].split("\n")
    if forget:
        first = lines[0]
        return format_xml(first, first.rsplit("= ", 1)[1])
    out, prev = [], None
    for line in lines:
        left, _ = line.split(" = ")
        a, op, b = left.split(" ")
        a = int(a) if prev is None else prev
        b = int(b)
        op = "+" if op == "-" else op  # the misread: every subtraction becomes a gain
        val = a + b if op == "+" else a - b
        out.append(f"{a} {op} {b} = {val}")
        prev = val
    return format_xml("\n".join(out), str(prev))


def encode_example(tok, prompt_msgs, reply: str) -> tuple[list[int], int]:
    """Token ids of prompt + reply + <|im_end|>, and the prompt length."""
    p = tok.apply_chat_template(prompt_msgs, tokenize=False, add_generation_prompt=True)
    p_ids = tok(p, add_special_tokens=False)["input_ids"]
    c_ids = tok(reply + tok.eos_token, add_special_tokens=False)["input_ids"]
    return p_ids + c_ids, len(p_ids)


# --- evaluation ---------------------------------------------------------------------


def evaluate(model, tok, rows, *, batch_size: int = 250, max_new_tokens: int = 48, examples: int = 0):
    """Greedy held-out accuracy (the arithmetic verifier) and strict-format rate."""
    import torch

    from grpo_core.default_plugins.arithmetic import ArithmeticVerifier
    from grpo_core.default_plugins.format_rewards import strict_format
    from grpo_core.kit.prompts import chat_prompt

    verifier = ArithmeticVerifier()
    model.eval()
    tok.padding_side = "left"
    correct = fmt = 0
    shown, per_row = [], []
    for i in range(0, len(rows), batch_size):
        chunk = rows[i : i + batch_size]
        prompts = [tok.apply_chat_template(chat_prompt(r["question"]), tokenize=False, add_generation_prompt=True) for r in chunk]
        enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
        with torch.no_grad():
            out = model.generate(
                **enc,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                eos_token_id=tok.eos_token_id,
                pad_token_id=tok.pad_token_id,
            )
        texts = tok.batch_decode(out[:, enc["input_ids"].shape[1] :].cpu(), skip_special_tokens=True)
        verdicts = verifier.check_batch([r["answer"] for r in chunk], texts)
        correct += sum(v.equal for v in verdicts)
        fmt += sum(s > 0 for s in strict_format(texts))
        per_row.extend(v.equal for v in verdicts)
        for r, t, v in zip(chunk, texts, verdicts):
            if len(shown) < examples:
                shown.append({"question": r["question"], "gold": r["answer"], "completion": t, "correct": v.equal})
    model.train()
    n = max(1, len(rows))
    return {"accuracy": correct / n, "format_rate": fmt / n, "n": len(rows), "examples": shown, "correct": per_row}


# --- main ----------------------------------------------------------------------------


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--vocab-size", type=int, default=512)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--intermediate", type=int, default=256)
    ap.add_argument("--steps", type=int, default=2000, help="SFT optimizer steps")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=4e-3)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--min-lr-ratio", type=float, default=0.1, help="cosine decay floor, as a fraction of --lr")
    ap.add_argument("--teacher-error", type=float, default=0.7, help="how often the SFT teacher makes its two mistakes")
    ap.add_argument("--eval-every", type=int, default=0, help="evaluate on the held-out split every N steps (0: only at the end)")
    ap.add_argument("--eval-limit", type=int, default=500)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32", help="dtype of the saved weights")
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args(argv)

    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    from grpo_core.default_plugins.arithmetic import problems
    from grpo_core.kit.prompts import XML_SYSTEM_PROMPT, chat_prompt

    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    t0 = time.time()

    train_rows = list(problems("train"))
    test_rows = list(problems("test"))[: args.eval_limit]

    # 1. tokenizer
    tok = build_tokenizer(corpus_texts(train_rows, XML_SYSTEM_PROMPT), args.vocab_size)
    with tempfile.TemporaryDirectory() as td:
        tok.save_pretrained(td)
        samples = [XML_SYSTEM_PROMPT, train_rows[0]["question"], test_rows[1]["question"], "Hi 1,234 $5 \u00e9!", train_rows[0]["solution"]]
        check_tokenizer_roundtrip(tok, Path(td), samples)
    print(f"tokenizer: {len(tok)} tokens (eos {tok.eos_token!r}={tok.eos_token_id}, pad {tok.pad_token_id}); round trip ok")

    # 2. model
    cfg = Qwen2Config(
        vocab_size=len(tok),
        hidden_size=args.hidden,
        intermediate_size=args.intermediate,
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        num_key_value_heads=args.kv_heads,
        max_position_embeddings=256,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        use_sliding_window=False,
    )
    model = Qwen2ForCausalLM(cfg).to(args.device)
    model.generation_config = GenerationConfig(
        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, max_new_tokens=48
    )
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: Qwen2 hidden={args.hidden} layers={args.layers} ffn={args.intermediate} vocab={len(tok)}: {n_params:,} params")

    # 3. SFT data
    trng = random.Random(args.seed + 1)
    replies = [teacher_reply(r, trng, args.teacher_error) for r in train_rows]
    n_flawed = sum(a != r["solution"] for a, r in zip(replies, train_rows))
    print(f"sft targets: {n_flawed} of {len(replies)} from the imperfect teacher (error rate {args.teacher_error})")
    enc = [encode_example(tok, chat_prompt(r["question"]), a) for r, a in zip(train_rows, replies)]
    lens = [len(ids) for ids, _ in enc]
    print(f"sft data: {len(enc)} examples, tokens/example mean {sum(lens) / len(lens):.1f} max {max(lens)}")
    max_len = max(lens)
    ids_t = torch.full((len(enc), max_len), tok.pad_token_id, dtype=torch.long)
    lab_t = torch.full((len(enc), max_len), -100, dtype=torch.long)
    for i, (ids, plen) in enumerate(enc):
        ids_t[i, : len(ids)] = torch.tensor(ids)
        lab_t[i, plen : len(ids)] = torch.tensor(ids[plen:])
    att_t = (torch.arange(max_len)[None, :] < torch.tensor(lens)[:, None]).long()

    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.98), weight_decay=0.01)

    def lr_at(step: int) -> float:
        if step < args.warmup:
            return args.lr * (step + 1) / args.warmup
        frac = (step - args.warmup) / max(1, args.steps - args.warmup)
        floor = args.min_lr_ratio
        return args.lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * frac)))

    gen = torch.Generator().manual_seed(args.seed)
    order = torch.randperm(len(enc), generator=gen)
    pos = 0
    history = []
    model.train()
    t_train = time.time()
    for step in range(args.steps):
        if pos + args.batch > len(order):
            order, pos = torch.randperm(len(enc), generator=gen), 0
        idx = order[pos : pos + args.batch]
        pos += args.batch
        blen = int(att_t[idx].sum(1).max())
        x, y, a = ids_t[idx, :blen].to(args.device), lab_t[idx, :blen].to(args.device), att_t[idx, :blen].to(args.device)
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        out = model(input_ids=x, attention_mask=a, labels=y)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if (step + 1) % 50 == 0 or step == 0:
            el = time.time() - t_train
            print(f"step {step + 1}/{args.steps} loss {out.loss.item():.4f} lr {lr_at(step):.2e} ({el:.0f}s, {el / (step + 1):.2f}s/step)", flush=True)
        if args.eval_every and (step + 1) % args.eval_every == 0 and step + 1 < args.steps:
            ev = evaluate(model, tok, test_rows)
            history.append({"step": step + 1, "accuracy": ev["accuracy"], "format_rate": ev["format_rate"]})
            print(f"  eval @ {step + 1}: held-out accuracy {ev['accuracy']:.3f} format {ev['format_rate']:.3f}", flush=True)
    train_s = time.time() - t_train

    # 4. evaluation
    model = model.to("cpu")
    ev = evaluate(model, tok, test_rows, examples=3)
    history.append({"step": args.steps, "accuracy": ev["accuracy"], "format_rate": ev["format_rate"]})
    print(f"held-out greedy accuracy {ev['accuracy']:.3f}  format rate {ev['format_rate']:.3f}  (n={ev['n']})")
    for e in ev["examples"]:
        print(f"  Q: {e['question']}\n  A: {e['completion']!r} (gold {e['gold']}, {'ok' if e['correct'] else 'wrong'})")
    print(f"SFT {args.steps} steps in {train_s:.0f}s; total {time.time() - t0:.0f}s")

    if args.no_save:
        return 0
    out = args.out
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    model.to(getattr(torch, args.dtype)).save_pretrained(str(out))
    tok.save_pretrained(str(out))
    check_tokenizer_roundtrip(tok, out, samples)
    info = {
        "task": "arithmetic",
        "params": n_params,
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k not in ("out", "no_save")},
        "sft_seconds": round(train_s, 1),
        "held_out": {"split": "test", "n": ev["n"], "accuracy": ev["accuracy"], "format_rate": ev["format_rate"]},
        "history": history,
        "torch": torch.__version__,
        "rebuild": "python scripts/build_tiny_model.py",
    }
    (out / "build_info.json").write_text(json.dumps(info, indent=2) + "\n")
    size = sum(f.stat().st_size for f in out.iterdir())
    print(f"saved {out} ({size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
