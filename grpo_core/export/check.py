"""The post-export check: does the exported artifact still carry the training?

:class:`ProbeCheck` loads the result, runs fixed probe prompts greedily and compares it with the
adapter applied to the base model. It fails when the export behaves like the base model (the LoRA was
dropped), when it changed the outputs beyond the format's stated tolerance, and, for GGUF, when
llama.cpp (llama-cpp-python) tokenizes the prompts differently or its greedy tokens disagree. Without
llama-cpp-python the GGUF file is read back with ``gguf.GGUFReader``, dequantized into the Hugging Face
architecture and compared the same way (the result says which check ran).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from grpo_core.errors import GrpoCoreError
from grpo_core.export.gguf import gguf_metadata, load_gguf_as_hf
from grpo_core.kit.chat_templates import render_prompt
from grpo_core.kit.prompts import XML_SYSTEM_PROMPT, chat_prompt
from grpo_core.run_folder import Trained, tokenizer_source


PROBE_QUESTIONS = (
    "What is 12 + 7?",
    "Tom has 3 apples and buys 5 more. How many apples does he have?",
    "A train travels 60 km in 1.5 hours. What is its average speed in km/h?",
    "Compute 9 * 8 - 10.",
    "Is 91 a prime number? Answer yes or no.",
    "Solve for x: 2x + 6 = 20.",
)

# Stated tolerances, by how lossy the format is: (max mean KL(adapter || export) in nats per token,
# min token agreement with the adapter, how that agreement is measured). Every format must also stay
# closer to the adapter than to the base model: KL(adapter || export) <= MAX_BASE_RATIO * KL(adapter || base).
# Token agreement is "greedy" (the share of the adapter's greedy continuation the export reproduces before
# its first different token) or "top1" (teacher-forced: at each position of the adapter's continuation, the
# export's most likely next token is the adapter's). 16-bit uses top1: rounding every weight to 16 bits
# flips near-tied greedy choices, and one early flip makes the whole rest of a greedy continuation
# differ, so greedy agreement measures where the first near-tie fell rather than how faithful the export
# is. Measured on SmolLM2-135M-Instruct with an SFT-trained LoRA (benchmarks/export_precision.py,
# docs/eval-export.md): the adapter itself with its weights in bf16, unmerged, is 1.8e-6 nats/token from
# the float32 reference yet reproduces only 91% of its greedy tokens; top-1 agrees on 98.8%. KL stays the
# measure of how much of the training an export lost (the bf16 merge: 1.3e-2, over the 5e-3 tolerance).
TOLERANCES = {
    "exact": (1e-4, 1.0, "greedy"),  # the adapter itself, f32 GGUF
    "16bit": (5e-3, 0.9, "top1"),  # merged_16bit, f16/bf16 GGUF
    "8bit": (2e-2, 0.5, "greedy"),  # q8_0
    "4bit": (0.25, 0.0, "greedy"),  # merged_4bit (NF4), q4_k_m and other k-quants: token agreement reported only
}
MAX_BASE_RATIO = 0.5
MIN_ADAPTER_EFFECT = 1e-6  # nats/token: below this the adapter changes nothing measurable


class ExportCheckError(GrpoCoreError):
    """The post-export check failed: the export does not carry the training faithfully."""

    exit_code = 3


def precision_class(fmt: str, quant: str | None = None) -> str:
    if fmt == "lora":
        return "exact"
    if fmt == "merged_16bit":
        return "16bit"
    if fmt == "merged_4bit":
        return "4bit"
    return {"f32": "exact", "f16": "16bit", "bf16": "16bit", "q8_0": "8bit"}.get(quant or "", "4bit")


# --- the probe ------------------------------------------------------------------------------------

@dataclass
class Probe:
    text: str
    prompt_ids: list[int]
    ref_tokens: list[int]  # the adapter's greedy continuation
    base_tokens: list[int]  # the base model's greedy continuation
    ref_logp: Any = None  # [T, V] log-probs of the adapter on prompt + ref_tokens (teacher forced)
    base_logp: Any = None

    @property
    def seq(self) -> list[int]:
        return self.prompt_ids + self.ref_tokens


@dataclass
class CheckResult:
    artifact: str
    engine: str  # how the export was loaded: peft, transformers, llama.cpp, gguf-reader
    precision: str
    kl_to_adapter: float
    adapter_effect: float  # KL(adapter || base) on the same positions
    base_ratio: float
    top1_agreement: float
    base_top1_agreement: float
    greedy_agreement: float
    greedy_agreement_base: float
    tokenization_ok: bool = True
    passed: bool = False
    failures: list[str] = field(default_factory=list)
    tolerance: dict = field(default_factory=dict)

    def line(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        return (f"{verdict} {self.artifact} [{self.engine}, {self.precision}]: KL to adapter {self.kl_to_adapter:.2e} "
                f"(tolerance {self.tolerance.get('max_kl'):.2g}), adapter effect {self.adapter_effect:.2e}, "
                f"ratio {self.base_ratio:.3f} (max {MAX_BASE_RATIO}), top-1 {self.top1_agreement:.0%} and greedy tokens {self.greedy_agreement:.0%} like the adapter, "
                f"{self.greedy_agreement_base:.0%} like the base")


def _eos_ids(tokenizer, model=None) -> list[int]:
    ids = set()
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    gc = getattr(model, "generation_config", None)
    e = getattr(gc, "eos_token_id", None) if gc is not None else None
    if isinstance(e, int):
        ids.add(e)
    elif e:
        ids.update(int(x) for x in e)
    return sorted(ids)


def _prefix_agreement(a: list[int], b: list[int]) -> float:
    n = max(len(a), len(b))
    if n == 0:
        return 1.0
    k = 0
    while k < min(len(a), len(b)) and a[k] == b[k]:
        k += 1
    return k / n


class ProbeCheck:
    """The reference: the base model with the adapter, greedy, on fixed probe prompts, in float32."""

    def __init__(self, trained: Trained, *, max_new_tokens: int = 16, device: str | None = None, echo: Callable[[str], None] = print) -> None:
        import torch  # deferred: heavy (torch)
        from transformers import AutoModelForCausalLM, AutoTokenizer  # deferred: heavy (transformers)

        self.trained = trained
        self.max_new_tokens = max_new_tokens
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer = AutoTokenizer.from_pretrained(tokenizer_source(trained, trained.base))
        base = AutoModelForCausalLM.from_pretrained(trained.base, dtype=torch.float32).to(self.device).eval()
        self.config = base.config
        if trained.is_lora:
            from peft import PeftModel  # deferred: heavy (peft)

            model = PeftModel.from_pretrained(base, str(trained.adapter_dir)).eval()
        else:
            model = AutoModelForCausalLM.from_pretrained(str(trained.adapter_dir), dtype=torch.float32).to(self.device).eval()
        self.eos = _eos_ids(self.tokenizer, base)
        sp = trained.system_prompt if trained.system_prompt is not None else XML_SYSTEM_PROMPT
        self.probes: list[Probe] = []
        for q in PROBE_QUESTIONS:
            text = render_prompt(self.tokenizer, chat_prompt(q, sp))
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            ref = self._greedy(model, ids)
            if trained.is_lora:
                with model.disable_adapter():
                    b = self._greedy(model, ids)
            else:
                b = self._greedy(base, ids)
            self.probes.append(Probe(text, ids, ref, b))
        for p in self.probes:
            p.ref_logp = self._logp(model, p)
            if trained.is_lora:
                with model.disable_adapter():
                    p.base_logp = self._logp(model, p)
            else:
                p.base_logp = self._logp(base, p)
        del model, base
        self.adapter_effect = self._kl([p.ref_logp for p in self.probes], [p.base_logp for p in self.probes])
        changed = sum(p.ref_tokens != p.base_tokens for p in self.probes)
        echo(f"check: reference = base + adapter on {len(self.probes)} probe prompts; adapter effect KL {self.adapter_effect:.2e} "
             f"nats/token; greedy output differs from the base on {changed}/{len(self.probes)} prompts")

    # -- model helpers
    def _greedy(self, model, ids: list[int]) -> list[int]:
        import torch  # deferred: heavy (torch)

        x = torch.tensor([ids], device=self.device)
        with torch.no_grad():
            out = model.generate(input_ids=x, attention_mask=torch.ones_like(x), max_new_tokens=self.max_new_tokens, do_sample=False,
                                 temperature=None, top_p=None, top_k=None, eos_token_id=self.eos,
                                 pad_token_id=self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.eos[0])
        return out[0, len(ids):].tolist()

    def _logp(self, model, p: Probe):
        import torch  # deferred: heavy (torch)

        x = torch.tensor([p.seq], device=self.device)
        with torch.no_grad():
            logits = model(input_ids=x).logits[0].float()
        lo = len(p.prompt_ids) - 1
        return torch.log_softmax(logits[lo : len(p.seq) - 1], dim=-1).cpu()

    @staticmethod
    def _kl(p_list, q_list) -> float:
        import torch  # deferred: heavy (torch)

        tot, n = 0.0, 0
        for p, q in zip(p_list, q_list):
            v = min(p.shape[-1], q.shape[-1])
            pp, qq = p[:, :v], q[:, :v]
            tot += (pp.exp() * (pp - qq)).sum(-1).clamp_min(0).sum().item()
            n += p.shape[0]
        return tot / max(1, n)

    # -- judging a candidate
    def judge(self, artifact: str, engine: str, precision: str, cand_logp: list, cand_tokens: list[list[int]], tokenization_ok: bool = True, extra_failures: list[str] | None = None) -> CheckResult:
        import torch  # deferred: heavy (torch)

        max_kl, min_tokens, measure = TOLERANCES[precision]
        kl = self._kl([p.ref_logp for p in self.probes], cand_logp)
        ratio = kl / self.adapter_effect if self.adapter_effect > 0 else float("inf")
        top1 = torch.cat([(p.ref_logp.argmax(-1) == c.argmax(-1)).float() for p, c in zip(self.probes, cand_logp)]).mean().item()
        top1_base = torch.cat([(p.base_logp.argmax(-1) == c.argmax(-1)).float() for p, c in zip(self.probes, cand_logp)]).mean().item()
        agree = sum(_prefix_agreement(p.ref_tokens, t) for p, t in zip(self.probes, cand_tokens)) / len(self.probes)
        agree_base = sum(_prefix_agreement(p.base_tokens, t) for p, t in zip(self.probes, cand_tokens)) / len(self.probes)
        r = CheckResult(artifact, engine, precision, kl, self.adapter_effect, ratio, top1, top1_base, agree, agree_base, tokenization_ok,
                        tolerance={"max_kl": max_kl, f"min_{measure}_agreement": min_tokens, "max_base_ratio": MAX_BASE_RATIO})
        f = list(extra_failures or [])
        if self.adapter_effect < MIN_ADAPTER_EFFECT:
            f.append(f"the adapter itself does not change the base model's outputs on the probe prompts (KL {self.adapter_effect:.1e}): "
                     "it is untrained or empty, so no export can be shown to carry it")
        elif ratio > MAX_BASE_RATIO and self._kl([p.base_logp for p in self.probes], cand_logp) > MAX_BASE_RATIO * self.adapter_effect:
            # far from the adapter but not near the base either: the rounding is as large as what training changed
            f.append(f"the adapter's own effect (KL {self.adapter_effect:.1e}) is no larger than this precision's rounding (KL to the "
                     f"adapter {kl:.1e}, {ratio:.0%} of the effect; max {MAX_BASE_RATIO:.0%}), so the check cannot tell whether the LoRA "
                     "was kept: train further, or export a finer precision (f16)")
        elif ratio > MAX_BASE_RATIO:
            f.append(f"the export behaves like the base model: its distance to the adapter is {ratio:.0%} of the adapter's own effect "
                     f"(max {MAX_BASE_RATIO:.0%}); the LoRA was dropped or only partly merged")
        if kl > max_kl:
            f.append(f"the export changed the outputs beyond tolerance: KL to the adapter {kl:.2e} > {max_kl:.2g} nats/token ({precision})")
        if measure == "greedy" and agree < min_tokens:
            f.append(f"greedy tokens agree with the adapter on {agree:.0%} of the probe (need {min_tokens:.0%} for {precision})")
        if measure == "top1" and top1 < min_tokens:
            f.append(f"the most likely next token agrees with the adapter's on {top1:.0%} of the probe positions (need {min_tokens:.0%} for {precision})")
        changed = [i for i, p in enumerate(self.probes) if p.ref_tokens != p.base_tokens]
        if changed and min_tokens > 0 and all(cand_tokens[i] == self.probes[i].base_tokens for i in changed):
            f.append("on every probe where training changed the greedy output, the export gives the base model's output")
        if not tokenization_ok:
            f.append("the exported tokenizer tokenizes the probe prompts differently from the trained one")
        r.failures, r.passed = f, not f
        return r

    def check_hf_model(self, model, artifact: str, engine: str, precision: str) -> CheckResult:
        model.eval()
        logp = [self._logp(model, p) for p in self.probes]
        toks = [self._greedy(model, p.prompt_ids) for p in self.probes]
        return self.judge(artifact, engine, precision, logp, toks)

    def check_gguf_llama_cpp(self, path: Path, precision: str) -> CheckResult:
        """Load the GGUF in llama.cpp, compare tokenization, teacher-forced logits and greedy tokens."""
        import numpy as np  # deferred: heavy (numpy)
        import torch  # deferred: heavy (torch)
        from llama_cpp import Llama  # deferred: optional extra (llama-cpp)

        n_ctx = max(len(p.seq) for p in self.probes) + self.max_new_tokens + 8
        llm = Llama(model_path=str(path), n_ctx=n_ctx, n_batch=n_ctx, logits_all=True, verbose=False, n_threads=1, seed=0)
        tok_ok, extra = True, []
        logp, toks = [], []
        for p in self.probes:
            ids = llm.tokenize(p.text.encode("utf-8"), add_bos=False, special=True)
            if list(ids) != p.prompt_ids:
                tok_ok = False
            llm.reset()
            llm.eval(p.seq)
            scores = np.array(llm.scores[: len(p.seq)], dtype=np.float32)
            lo = len(p.prompt_ids) - 1
            logp.append(torch.log_softmax(torch.from_numpy(scores[lo : len(p.seq) - 1]), dim=-1))
            llm.reset()
            out: list[int] = []
            for t in llm.generate(p.prompt_ids, temp=0.0, top_k=1, top_p=1.0, min_p=0.0, repeat_penalty=1.0, reset=True):
                out.append(int(t))
                if int(t) in self.eos or len(out) >= self.max_new_tokens:
                    break
            toks.append(out)
        if llm.n_vocab() != self.config.vocab_size:
            extra.append(f"llama.cpp reports {llm.n_vocab()} tokens, the model has {self.config.vocab_size}")
        llm.close() if hasattr(llm, "close") else None
        return self.judge(path.name, "llama.cpp", precision, logp, toks, tokenization_ok=tok_ok, extra_failures=extra)

    def check_gguf_reader(self, path: Path, precision: str) -> CheckResult:
        """No llama.cpp: read the GGUF back (gguf.GGUFReader), dequantize into the HF architecture, compare; check the vocabulary."""

        meta = gguf_metadata(path)
        extra = []
        arch = meta.get("general.architecture")
        want = {f"{arch}.block_count": self.config.num_hidden_layers, f"{arch}.embedding_length": self.config.hidden_size,
                f"{arch}.attention.head_count": self.config.num_attention_heads,
                f"{arch}.attention.head_count_kv": getattr(self.config, "num_key_value_heads", self.config.num_attention_heads)}
        for k, v in want.items():
            if meta.get(k) != v:
                extra.append(f"GGUF metadata {k} = {meta.get(k)!r}, the model has {v!r}")
        tokens = meta.get("tokenizer.ggml.tokens") or []
        vocab = self.tokenizer.get_vocab()
        tok_ok = all(i < len(tokens) and tokens[i] == t for t, i in vocab.items())
        if meta.get("tokenizer.ggml.eos_token_id") not in self.eos:
            extra.append(f"GGUF eos token id {meta.get('tokenizer.ggml.eos_token_id')} is not the model's ({self.eos})")
        model = load_gguf_as_hf(path, self.config).to(self.device)
        res = self.check_hf_model(model, path.name, "gguf-reader", precision)
        if extra or not tok_ok:
            return self.judge(path.name, "gguf-reader", precision, [self._logp(model, p) for p in self.probes],
                              [self._greedy(model, p.prompt_ids) for p in self.probes], tokenization_ok=tok_ok, extra_failures=extra)
        return res
