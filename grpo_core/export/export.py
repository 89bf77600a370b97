"""``grpo-core export``: ship a trained run in every format, and prove the training is still in it.

Formats and what each needs:

========== ===================================================== ==============================
format     how                                                   needs
========== ===================================================== ==============================
lora       the PEFT adapter + tokenizer, as trained              nothing extra (CPU)
merged_16b PEFT ``merge_and_unload`` in float32, saved 16-bit    nothing extra (CPU)
merged_4b  merged, then bitsandbytes NF4, saved                  CUDA GPU + bitsandbytes
gguf       written here with the ``gguf`` package (f32, f16,     ``gguf`` (CPU, offline);
           bf16, q8_0); Qwen2 and Llama architectures            q4_k_m etc: llama-cpp-python
========== ===================================================== ==============================

Where Unsloth is installed and a CUDA GPU is visible, lora/merged_16bit/
merged_4bit use Unsloth's ``save_pretrained_merged`` instead of PEFT (GGUF is
always written here: Unsloth's GGUF path downloads and builds llama.cpp).

After every export, :class:`ProbeCheck` loads the result, runs fixed probe
prompts greedily and compares it with the adapter applied to the base model.
It fails when the export behaves like the base model (the LoRA was dropped),
when it changed the outputs beyond the format's stated tolerance, and, for
GGUF, when llama.cpp (llama-cpp-python) tokenizes the prompts differently or
its greedy tokens disagree. Without llama-cpp-python the GGUF file is read
back with ``gguf.GGUFReader``, dequantized into the Hugging Face architecture
and compared the same way (the result says which check ran).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from grpo_core.errors import ConfigError, GrpoCoreError
from grpo_core.export.gguf import (
    GGUF_TYPES,
    LLAMA_CPP_TYPES,
    gguf_arch,
    gguf_metadata,
    load_gguf_as_hf,
    quantize_with_llama_cpp,
    require_llama_cpp,
    write_gguf,
)
from grpo_core.kit.chat_templates import render_prompt
from grpo_core.kit.prompts import XML_SYSTEM_PROMPT, chat_prompt
from grpo_core.run_folder import Trained, provenance_section, resolve_trained, tokenizer_source
from grpo_core.runtime.hardware import cuda_available, import_unsloth_first

FORMATS = ("lora", "merged_16bit", "merged_4bit", "gguf")

PROBE_QUESTIONS = (
    "What is 12 + 7?",
    "Tom has 3 apples and buys 5 more. How many apples does he have?",
    "A train travels 60 km in 1.5 hours. What is its average speed in km/h?",
    "Compute 9 * 8 - 10.",
    "Is 91 a prime number? Answer yes or no.",
    "Solve for x: 2x + 6 = 20.",
)

# Stated tolerances, by how lossy the format is: (max mean KL(adapter || export) in nats per token,
# min greedy-token agreement with the adapter). Every format must also stay closer to the adapter
# than to the base model: KL(adapter || export) <= MAX_BASE_RATIO * KL(adapter || base).
TOLERANCES = {
    "exact": (1e-4, 1.0),  # the adapter itself, f32 GGUF
    "16bit": (5e-3, 0.75),  # merged_16bit, f16/bf16 GGUF
    "8bit": (2e-2, 0.5),  # q8_0
    "4bit": (0.25, 0.0),  # merged_4bit (NF4), q4_k_m and other k-quants: token agreement reported only
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
                f"ratio {self.base_ratio:.3f} (max {MAX_BASE_RATIO}), greedy tokens {self.greedy_agreement:.0%} like the adapter, "
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

        max_kl, min_tokens = TOLERANCES[precision]
        kl = self._kl([p.ref_logp for p in self.probes], cand_logp)
        ratio = kl / self.adapter_effect if self.adapter_effect > 0 else float("inf")
        top1 = torch.cat([(p.ref_logp.argmax(-1) == c.argmax(-1)).float() for p, c in zip(self.probes, cand_logp)]).mean().item()
        top1_base = torch.cat([(p.base_logp.argmax(-1) == c.argmax(-1)).float() for p, c in zip(self.probes, cand_logp)]).mean().item()
        agree = sum(_prefix_agreement(p.ref_tokens, t) for p, t in zip(self.probes, cand_tokens)) / len(self.probes)
        agree_base = sum(_prefix_agreement(p.base_tokens, t) for p, t in zip(self.probes, cand_tokens)) / len(self.probes)
        r = CheckResult(artifact, engine, precision, kl, self.adapter_effect, ratio, top1, top1_base, agree, agree_base, tokenization_ok,
                        tolerance={"max_kl": max_kl, "min_greedy_agreement": min_tokens, "max_base_ratio": MAX_BASE_RATIO})
        f = list(extra_failures or [])
        if self.adapter_effect < MIN_ADAPTER_EFFECT:
            f.append(f"the adapter itself does not change the base model's outputs on the probe prompts (KL {self.adapter_effect:.1e}): "
                     "it is untrained or empty, so no export can be shown to carry it")
        elif ratio > MAX_BASE_RATIO:
            f.append(f"the export behaves like the base model: its distance to the adapter is {ratio:.0%} of the adapter's own effect "
                     f"(max {MAX_BASE_RATIO:.0%}); the LoRA was dropped or only partly merged")
        if kl > max_kl:
            f.append(f"the export changed the outputs beyond tolerance: KL to the adapter {kl:.2e} > {max_kl:.2g} nats/token ({precision})")
        if agree < min_tokens:
            f.append(f"greedy tokens agree with the adapter on {agree:.0%} of the probe (need {min_tokens:.0%} for {precision})")
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


def llama_cpp_available() -> bool:
    try:
        import llama_cpp  # noqa: F401

        return True
    except Exception:  # noqa: BLE001
        return False


# --- exporting ---------------------------------------------------------------------------------------

@dataclass
class ExportRequest:
    run: str
    format: str
    quant: tuple[str, ...] = ()
    out: str | None = None
    push_to_hub: str | None = None
    private: bool = True
    model: str | None = None
    backend: str = "auto"  # auto | peft | unsloth
    gguf_check: str = "auto"  # auto | llama.cpp | reader | both
    probe_tokens: int = 16


def _unsloth_usable() -> bool:

    return importlib.util.find_spec("unsloth") is not None and cuda_available()


def merge_peft(trained: Trained):
    """Base (float32) + adapter, merged with PEFT ``merge_and_unload``; a full fine-tune is loaded as is."""
    import torch  # deferred: heavy (torch)
    from transformers import AutoModelForCausalLM  # deferred: heavy (transformers)

    if not trained.is_lora:
        return AutoModelForCausalLM.from_pretrained(str(trained.adapter_dir), dtype=torch.float32)
    from peft import PeftModel  # deferred: heavy (peft)

    base = AutoModelForCausalLM.from_pretrained(trained.base, dtype=torch.float32)
    return PeftModel.from_pretrained(base, str(trained.adapter_dir)).merge_and_unload()


def _save_dtype(config):
    import torch  # deferred: heavy (torch)

    d = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None)
    if isinstance(d, str):
        d = getattr(torch, d, None)
    return d if d in (torch.bfloat16, torch.float16) else torch.float16


def export_run(req: ExportRequest, *, echo: Callable[[str], None] = print, check: ProbeCheck | None = None) -> dict:
    """Export, check, write the model card, push. ``check`` reuses an already computed reference for this run."""
    t0 = time.monotonic()
    if req.format not in FORMATS:
        raise ConfigError(f"unknown --format {req.format!r}; choose one of {', '.join(FORMATS)}.")
    trained = resolve_trained(req.run, base=req.model)
    quants = _quants(req)
    if req.format == "lora" and not trained.is_lora:
        raise ConfigError("--format lora: this run is a full fine-tune (no adapter); use merged_16bit or gguf.")
    if req.format == "merged_4bit":
        _need_4bit()
    if req.format == "gguf":
        from transformers import AutoConfig  # deferred: heavy (transformers)


        gguf_arch(AutoConfig.from_pretrained(trained.base))  # unsupported architectures fail before any work
        lc = [q for q in quants if q not in ("f32", "f16", "bf16", "q8_0")]
        if lc and not llama_cpp_available():
            require_llama_cpp(lc[0])  # raises the clear "needs llama-cpp-python" error
    if req.push_to_hub and not _hub_token():
        raise ConfigError("--push-to-hub needs a Hugging Face token in the environment: set HF_TOKEN (it is never printed or written).")
    base_dir = trained.run_dir or trained.adapter_dir.parent
    out = Path(req.out) if req.out else base_dir / f"export-{req.format}"
    out.mkdir(parents=True, exist_ok=True)
    echo(f"export: {req.format} of {trained.adapter_dir} (base {trained.base}) -> {out}")

    if check is None or check.trained.adapter_dir.resolve() != trained.adapter_dir.resolve() or check.trained.base != trained.base:
        check = ProbeCheck(trained, max_new_tokens=req.probe_tokens, echo=echo)
    backend = req.backend
    if backend == "auto":
        backend = "unsloth" if (_unsloth_usable() and req.format != "gguf") else "peft"
    if backend == "unsloth" and not _unsloth_usable():
        raise ConfigError("--backend unsloth needs Unsloth and a CUDA GPU; use --backend peft.")

    files: list[str] = []
    results: list[CheckResult] = []
    if req.format == "lora":
        files = _export_lora(trained, out, backend)
        results.append(_check_lora(check, trained, out))
    elif req.format in ("merged_16bit", "merged_4bit"):
        files = _export_merged(trained, out, req.format, backend, check)
        results.append(_check_merged(check, out, req.format))
    else:
        files, results = _export_gguf(trained, out, quants, check, req.gguf_check, echo)
    for r in results:
        echo("check: " + r.line())
        for f in r.failures:
            echo(f"  - {f}")
    passed = all(r.passed for r in results)
    record = {
        "format": req.format,
        "quant": list(quants) if req.format == "gguf" else None,
        "backend": backend,
        "base_model": trained.base,
        "adapter": str(trained.adapter_dir),
        "run_dir": str(trained.run_dir) if trained.run_dir else None,
        "out": str(out),
        "files": files,
        "check": {"passed": passed, "probe_prompts": list(PROBE_QUESTIONS), "probe_tokens": req.probe_tokens,
                  "results": [asdict(r) for r in results]},
        "seconds": round(time.monotonic() - t0, 1),
    }
    (out / "export.json").write_text(json.dumps(record, indent=2, default=str))
    if trained.run:
        (out / "run.json").write_text(json.dumps(trained.run, indent=2, default=str))
    (out / "README.md").write_text(model_card(trained, record))
    if not passed:
        raise ExportCheckError(
            f"post-export check FAILED for {', '.join(r.artifact for r in results if not r.passed)} "
            f"(details above and in {out / 'export.json'}); nothing was pushed."
        )
    echo(f"check passed; wrote {out} in {record['seconds']}s")
    if req.push_to_hub:
        url = push_to_hub(out, req.push_to_hub, private=req.private)
        record["pushed_to"] = url
        echo(f"pushed to {url}")
    return record


def _quants(req: ExportRequest) -> tuple[str, ...]:
    if req.format != "gguf":
        if req.quant:
            raise ConfigError("--quant applies to --format gguf only.")
        return ()
    qs = tuple(q.strip().lower() for q in (req.quant or ("q8_0",)) if q.strip())
    bad = [q for q in qs if q not in GGUF_TYPES + LLAMA_CPP_TYPES]
    if bad:
        raise ConfigError(f"unknown GGUF type(s) {bad}; written here: {', '.join(GGUF_TYPES)}; via llama-cpp-python: {', '.join(LLAMA_CPP_TYPES)}.")
    return qs


def _need_4bit() -> None:

    missing = []
    if not cuda_available():
        missing.append("a CUDA GPU (none is visible)")
    if importlib.util.find_spec("bitsandbytes") is None:
        missing.append("bitsandbytes (`pip install bitsandbytes`, part of grpo-core[gpu])")
    if missing:
        raise ConfigError("--format merged_4bit needs " + " and ".join(missing) + ". On CPU, export merged_16bit or gguf --quant q8_0 (or q4_k_m with llama-cpp-python).")


def _copy_tokenizer(trained: Trained, out: Path) -> None:
    from transformers import AutoTokenizer  # deferred: heavy (transformers)

    AutoTokenizer.from_pretrained(tokenizer_source(trained, trained.base)).save_pretrained(str(out))


def _unsloth_save(trained: Trained, out: Path, method: str) -> None:
    import_unsloth_first()
    from unsloth import FastLanguageModel  # deferred: GPU-only (Unsloth)

    model, tok = FastLanguageModel.from_pretrained(str(trained.adapter_dir), load_in_4bit=False)
    model.save_pretrained_merged(str(out), tok, save_method=method)


def _export_lora(trained: Trained, out: Path, backend: str) -> list[str]:
    if backend == "unsloth":
        _unsloth_save(trained, out, "lora")
    else:
        for f in trained.adapter_dir.iterdir():
            if f.is_file() and f.name not in ("README.md",):
                shutil.copy2(f, out / f.name)
    _copy_tokenizer(trained, out)
    return sorted(p.name for p in out.iterdir() if p.is_file())


def _check_lora(check: ProbeCheck, trained: Trained, out: Path) -> CheckResult:
    import torch  # deferred: heavy (torch)
    from peft import PeftModel  # deferred: heavy (peft)
    from transformers import AutoModelForCausalLM  # deferred: heavy (transformers)

    base = AutoModelForCausalLM.from_pretrained(trained.base, dtype=torch.float32).to(check.device)
    model = PeftModel.from_pretrained(base, str(out))
    return check.check_hf_model(model, out.name + "/ (adapter)", "peft", "exact")


def _export_merged(trained: Trained, out: Path, fmt: str, backend: str, check: ProbeCheck) -> list[str]:
    if backend == "unsloth":
        _unsloth_save(trained, out, "merged_16bit" if fmt == "merged_16bit" else "merged_4bit_forced")
        _copy_tokenizer(trained, out)
        return sorted(p.name for p in out.iterdir() if p.is_file())
    merged = merge_peft(trained)
    if fmt == "merged_16bit":
        merged = merged.to(_save_dtype(merged.config))
        merged.save_pretrained(str(out))
    else:
        import torch  # deferred: heavy (torch)
        from transformers import AutoModelForCausalLM, BitsAndBytesConfig  # deferred: heavy (transformers)

        with tempfile.TemporaryDirectory() as tmp:
            merged.to(torch.bfloat16).save_pretrained(tmp)
            _copy_tokenizer(trained, Path(tmp))
            q = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16, bnb_4bit_use_double_quant=True)
            m4 = AutoModelForCausalLM.from_pretrained(tmp, quantization_config=q, device_map={"": 0})
            m4.save_pretrained(str(out))
    _copy_tokenizer(trained, out)
    return sorted(p.name for p in out.iterdir() if p.is_file())


def _check_merged(check: ProbeCheck, out: Path, fmt: str) -> CheckResult:
    import torch  # deferred: heavy (torch)
    from transformers import AutoModelForCausalLM  # deferred: heavy (transformers)

    if fmt == "merged_4bit":
        model = AutoModelForCausalLM.from_pretrained(str(out), device_map={"": 0})
        return check.check_hf_model(model, out.name + "/ (merged, NF4)", "transformers+bitsandbytes", "4bit")
    model = AutoModelForCausalLM.from_pretrained(str(out), dtype=torch.float32).to(check.device)
    return check.check_hf_model(model, out.name + "/ (merged, 16-bit)", "transformers", "16bit")


def _export_gguf(trained: Trained, out: Path, quants, check: ProbeCheck, mode: str, echo) -> tuple[list[str], list[CheckResult]]:
    from transformers import AutoTokenizer  # deferred: heavy (transformers)


    merged = merge_peft(trained)
    tok = AutoTokenizer.from_pretrained(tokenizer_source(trained, trained.base))
    sd = merged.state_dict()
    stem = _stem(trained)
    written: list[tuple[Path, str]] = []
    tmp_src = None
    for q in quants:
        path = out / f"{stem}-{q}.gguf"
        if q in GGUF_TYPES:
            info = write_gguf(sd, merged.config, tok, path, q, name=stem)
            for n in info.notes:
                echo(f"gguf: note: {n}")
        else:
            src = out / f"{stem}-f16.gguf" if "f16" in quants else None
            if src is None or not src.exists():
                tmp_src = tmp_src or write_gguf(sd, merged.config, tok, out / f".{stem}-f32.tmp.gguf", "f32", name=stem).path
                src = tmp_src
            quantize_with_llama_cpp(src, path, q)
        written.append((path, q))
        echo(f"gguf: wrote {path.name} ({path.stat().st_size / 1e6:.1f} MB)")
    if tmp_src is not None:
        tmp_src.unlink(missing_ok=True)
    del merged, sd
    results = []
    have_llama = llama_cpp_available()
    if mode == "llama.cpp" and not have_llama:
        raise ConfigError("--gguf-check llama.cpp needs llama-cpp-python (`pip install llama-cpp-python`, builds llama.cpp, about 7 min of CPU on 2 cores).")
    if mode == "auto" and not have_llama:
        echo("check: llama-cpp-python is not installed, so each GGUF file is read back with gguf.GGUFReader into the HF "
             "architecture instead of running in llama.cpp (`pip install llama-cpp-python` for the llama.cpp check)")
    for path, q in written:
        prec = precision_class("gguf", q)
        if mode in ("llama.cpp", "both") or (mode == "auto" and have_llama):
            results.append(check.check_gguf_llama_cpp(path, prec))
        if mode in ("reader", "both") or (mode == "auto" and not have_llama):
            results.append(check.check_gguf_reader(path, prec))
    _copy_tokenizer(trained, out)  # tokenizer files beside the GGUF, for tools that want them
    return sorted(p.name for p in out.iterdir() if p.is_file()), results


def _stem(trained: Trained) -> str:
    name = Path(trained.base.rstrip("/")).name or "model"
    return f"{name}-grpo".replace(" ", "_")


# --- model card and hub ------------------------------------------------------------------------------

_USAGE = {
    "lora": "```python\nfrom peft import PeftModel\nfrom transformers import AutoModelForCausalLM, AutoTokenizer\n"
            "base = AutoModelForCausalLM.from_pretrained(\"{base}\")\nmodel = PeftModel.from_pretrained(base, \"THIS_FOLDER\")\n"
            "tok = AutoTokenizer.from_pretrained(\"THIS_FOLDER\")\n```\n",
    "merged_16bit": "```python\nfrom transformers import AutoModelForCausalLM, AutoTokenizer\n"
                    "model = AutoModelForCausalLM.from_pretrained(\"THIS_FOLDER\")\ntok = AutoTokenizer.from_pretrained(\"THIS_FOLDER\")\n```\n",
    "merged_4bit": "```python\nfrom transformers import AutoModelForCausalLM\n"
                   "model = AutoModelForCausalLM.from_pretrained(\"THIS_FOLDER\", device_map=\"auto\")  # needs CUDA + bitsandbytes\n```\n",
    "gguf": "```sh\nllama-cli -m THIS_FOLDER/FILE.gguf -cnv   # the chat template is inside the file\n```\n",
}


def model_card(trained: Trained, record: dict) -> str:
    fmt = record["format"]
    lib = {"lora": "peft", "gguf": "gguf"}.get(fmt, "transformers")
    base = trained.base
    lines = ["---", f"base_model: {base}" if "/" in base and not Path(base).exists() else f"# base model (local): {base}",
             f"library_name: {lib}", "tags:", "  - grpo", "  - grpo-core", f"  - {fmt}", "---", "",
             f"# {_stem(trained)} ({fmt}{', ' + ', '.join(record['quant']) if record.get('quant') else ''})", "",
             f"GRPO-trained with grpo-core; exported with `grpo-core export --format {fmt}` ({record['backend']}).", "",
             "## Files", ""]
    lines += [f"- `{f}`" for f in record["files"]]
    chk = record["check"]
    lines += ["", "## Post-export check", "",
              f"{len(chk['probe_prompts'])} fixed probe prompts, {chk['probe_tokens']} greedy tokens each, compared with the adapter applied "
              "to the base model in float32. KL is the mean KL(adapter || export) in nats per token on the adapter's greedy continuation; "
              "the adapter effect is KL(adapter || base), and the ratio is the first over the second. An export fails when the ratio "
              f"is above {MAX_BASE_RATIO} (it behaves like the base model: a dropped LoRA gives about 1), or when it exceeds its format's "
              "tolerance.", "",
              "| artifact | loaded with | KL to adapter | tolerance | adapter effect | ratio | greedy = adapter | greedy = base | result |",
              "|---|---|---|---|---|---|---|---|---|"]
    for r in chk["results"]:
        lines.append(f"| {r['artifact']} | {r['engine']} | {r['kl_to_adapter']:.2e} | {r['tolerance']['max_kl']:.2g} | {r['adapter_effect']:.2e} | "
                     f"{r['base_ratio']:.3f} | {r['greedy_agreement']:.0%} | {r['greedy_agreement_base']:.0%} | {'pass' if r['passed'] else 'FAIL'} |")
    lines += ["", f"Overall: **{'passed' if chk['passed'] else 'FAILED'}**.", "", "## Usage", "", _USAGE[fmt].replace("{base}", base)]
    return "\n".join(lines) + provenance_section(trained.run)


def _hub_token() -> str | None:
    return os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN")


def push_to_hub(folder: Path, repo: str, *, private: bool = True) -> str:
    """Upload ``folder`` to ``repo`` with the token from the environment; the token is never printed or written."""
    token = _hub_token()
    if not token:
        raise ConfigError("--push-to-hub needs a Hugging Face token in the environment: set HF_TOKEN (it is never printed or written).")
    from huggingface_hub import HfApi  # deferred: only for --push-to-hub

    api = HfApi(token=token)
    try:
        url = api.create_repo(repo_id=repo, repo_type="model", private=private, exist_ok=True)
        api.upload_folder(folder_path=str(folder), repo_id=repo, repo_type="model", commit_message="grpo-core export")
    except Exception as exc:  # noqa: BLE001 - never let the token reach the terminal
        msg = f"{type(exc).__name__}: {exc}".replace(token, "***")
        raise ConfigError(f"push to {repo!r} failed: {msg}") from None
    return str(url)
