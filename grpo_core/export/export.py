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

After every export, :class:`~grpo_core.export.check.ProbeCheck` loads the result and compares it with the
adapter applied to the base model (:mod:`grpo_core.export.check`); ``--push-to-hub`` uploads the
folder (:mod:`grpo_core.export.hub`).
"""
from __future__ import annotations

import importlib.util
import json
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from grpo_core.errors import ConfigError
from grpo_core.export.check import (
    MAX_BASE_RATIO,
    PROBE_QUESTIONS,
    CheckResult,
    ExportCheckError,
    ProbeCheck,
    precision_class,
)
from grpo_core.export.gguf import (
    GGUF_TYPES,
    LLAMA_CPP_TYPES,
    gguf_arch,
    write_gguf,
)
from grpo_core.export.llama_cpp import llama_cpp_available, llama_cpp_failure, quantize_with_llama_cpp, require_llama_cpp
from grpo_core.export.hub import hub_token, push_to_hub
from grpo_core.run_folder import Trained, provenance_section, resolve_trained, tokenizer_source
from grpo_core.runtime.gguf_model import converted_if_gguf
from grpo_core.runtime.hardware import cuda_available, import_unsloth_first

FORMATS = ("lora", "merged_16bit", "merged_4bit", "gguf")


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
    trained = resolve_trained(req.run, base=converted_if_gguf(req.model, echo))
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
    if req.push_to_hub and not hub_token():
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
    if have_llama and mode in ("auto", "llama.cpp", "both") and written:
        # A llama.cpp build for another CPU dies with SIGILL: try it in a child process before running it here.
        failure = llama_cpp_failure(min((p for p, _ in written), key=lambda p: p.stat().st_size))
        if failure and mode != "auto":
            raise ConfigError(f"--gguf-check {mode}: {failure}. The GGUF files are written in {out}; "
                              "`--gguf-check reader` checks them without llama.cpp.")
        if failure:
            echo(f"check: {failure}. Each GGUF file is read back with gguf.GGUFReader instead.")
            have_llama = False
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


# --- the model card ------------------------------------------------------------------------------------

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
