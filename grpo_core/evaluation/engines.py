"""Generating completions for evaluation: HF ``generate`` (CPU or GPU) on a model in memory, and two
engines with one interface over a base model and its adapter, HF and vLLM (GPU, the adapter as a
LoRA request). vLLM is imported only inside :class:`VLLMEngine`, never on the CPU path."""

from __future__ import annotations

import importlib.util
from contextlib import nullcontext
from typing import Any, Callable, Sequence

from tqdm.auto import tqdm

from grpo_core.errors import ConfigError
from grpo_core.evaluation.metrics import EvalResult, score_completions
from grpo_core.kit.chat_templates import apply_template, render_prompt
from grpo_core.runtime.hardware import cuda_available


def generate(
    model,
    tokenizer,
    prompts: Sequence[Any],
    *,
    max_new_tokens: int = 256,
    temperature: float = 0.0,
    num_samples: int = 1,
    seed: int = 0,
    batch_size: int = 16,
    progress: Callable[[int, int], None] | None = None,
) -> list[list[str]]:
    """Sample ``num_samples`` completions per prompt with HF generate (greedy at temperature 0)."""
    import torch  # deferred: heavy (torch)


    texts = [render_prompt(tokenizer, p) for p in prompts]
    old_side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    device = next(model.parameters()).device
    out: list[list[str]] = [[] for _ in texts]
    was_training = model.training
    model.eval()
    torch.manual_seed(seed)
    try:
        jobs = [(i, s) for i in range(len(texts)) for s in range(num_samples)]
        for start in range(0, len(jobs), batch_size):
            chunk = jobs[start : start + batch_size]
            enc = tokenizer([texts[i] for i, _ in chunk], return_tensors="pt", padding=True, add_special_tokens=False).to(device)
            gen_kwargs: dict[str, Any] = dict(max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id)
            if temperature > 0:
                gen_kwargs.update(do_sample=True, temperature=temperature, top_p=1.0, top_k=0)
            else:
                gen_kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
            with torch.no_grad():
                ids = model.generate(**enc, **gen_kwargs)
            new = ids[:, enc["input_ids"].shape[1] :]
            for (i, _), seq in zip(chunk, new):
                out[i].append(tokenizer.decode(seq, skip_special_tokens=True))
            if progress:
                progress(min(start + batch_size, len(jobs)), len(jobs))
    finally:
        tokenizer.padding_side = old_side
        if was_training:
            model.train()
    return out


def evaluate_model(model, tokenizer, dataset, verifier, *, samples: int = 1, temperature: float = 0.0, max_new_tokens: int = 256, seed: int = 0, batch_size: int = 16, ks=(1,), progress=None) -> EvalResult:
    rows = [dict(r) for r in dataset]
    comps = generate(
        model, tokenizer, [r["prompt"] for r in rows], max_new_tokens=max_new_tokens, temperature=temperature,
        num_samples=samples, seed=seed, batch_size=batch_size, progress=progress,
    )
    return score_completions(rows, comps, verifier, ks=ks)


VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


class HFEngine:
    """HF ``generate`` on the base model, with the PEFT adapter toggled on or off in place."""

    name = "hf"

    def __init__(self, base: str, adapter_dir: str | None = None, *, tokenizer_path: str | None = None, chat_template: str | None = None, full_model: bool = False) -> None:
        import torch  # deferred: heavy (torch)
        from transformers import AutoModelForCausalLM, AutoTokenizer  # deferred: heavy (transformers)


        cuda = torch.cuda.is_available()
        dtype = (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16) if cuda else torch.float32
        self.tokenizer = AutoTokenizer.from_pretrained(tokenizer_path or adapter_dir or base)
        apply_template(self.tokenizer, chat_template)
        self.base_model = None
        model = AutoModelForCausalLM.from_pretrained(base, dtype=dtype)
        self.has_adapter = adapter_dir is not None
        if adapter_dir is not None and full_model:
            # a full fine-tune: the "adapter" is a whole model; keep the base apart for --compare-base
            self.base_model = model.to("cuda" if cuda else "cpu")
            model = AutoModelForCausalLM.from_pretrained(adapter_dir, dtype=dtype)
        elif adapter_dir is not None:
            from peft import PeftModel  # deferred: heavy (peft)

            model = PeftModel.from_pretrained(model, adapter_dir)
        self.model = model.to("cuda" if cuda else "cpu")
        self.model.eval()

    def generate(self, prompts, *, use_adapter: bool = True, samples: int = 1, temperature: float = 0.0, max_new_tokens: int = 256, seed: int = 0, progress=None, desc: str = "") -> list[list[str]]:
        model, ctx = self.model, nullcontext()
        if self.has_adapter and not use_adapter:
            if self.base_model is not None:
                model = self.base_model
            else:
                ctx = self.model.disable_adapter()
        bar = _Bar(len(prompts) * samples, desc) if progress is None else None
        with ctx:
            out = generate(model, self.tokenizer, prompts, max_new_tokens=max_new_tokens, temperature=temperature,
                           num_samples=samples, seed=seed, progress=progress or bar.update)
        if bar:
            bar.close()
        return out


class VLLMEngine:
    """vLLM on a GPU; the adapter is served as a LoRA request, the base is the same engine without it.

    vllm is imported here only, never on the CPU path.
    """

    name = "vllm"

    def __init__(self, base: str, adapter_dir: str | None = None, *, tokenizer_path: str | None = None, chat_template: str | None = None, lora_rank: int | None = None, full_model: bool = False, gpu_memory_utilization: float = 0.85, max_model_len: int | None = None, seed: int = 0) -> None:
        from transformers import AutoTokenizer  # deferred: heavy (transformers)
        from vllm import LLM  # deferred: GPU-only (vLLM)


        if full_model:
            raise ConfigError("--engine vllm evaluates LoRA adapters; for a full fine-tune pass the saved model folder as --model.")
        self.tokenizer = AutoTokenizer.from_pretrained(tokenizer_path or adapter_dir or base)
        apply_template(self.tokenizer, chat_template)
        self.adapter_dir = adapter_dir
        kwargs: dict[str, Any] = dict(model=base, tokenizer=tokenizer_path or base, gpu_memory_utilization=gpu_memory_utilization, seed=seed)
        if max_model_len:
            kwargs["max_model_len"] = max_model_len
        if adapter_dir is not None:
            r = lora_rank or 8
            kwargs.update(enable_lora=True, max_lora_rank=next((x for x in VLLM_LORA_RANKS if x >= r), r), max_loras=1)
        self.llm = LLM(**kwargs)

    def generate(self, prompts, *, use_adapter: bool = True, samples: int = 1, temperature: float = 0.0, max_new_tokens: int = 256, seed: int = 0, progress=None, desc: str = "") -> list[list[str]]:
        from vllm import SamplingParams  # deferred: GPU-only (vLLM)


        lora = None
        if use_adapter and self.adapter_dir is not None:
            from vllm.lora.request import LoRARequest  # deferred: GPU-only (vLLM)

            lora = LoRARequest("grpo-core-adapter", 1, str(self.adapter_dir))
        params = SamplingParams(n=samples, temperature=temperature, max_tokens=max_new_tokens, seed=seed, skip_special_tokens=True)
        inputs = [{"prompt_token_ids": self.tokenizer(render_prompt(self.tokenizer, p), add_special_tokens=False)["input_ids"]} for p in prompts]
        outs = self.llm.generate(inputs, params, lora_request=lora, use_tqdm=True)
        return [[o.text for o in out.outputs] for out in outs]


class _Bar:
    """A tqdm progress bar on stderr, fed by ``generate``'s (done, total) callback."""

    def __init__(self, total: int, desc: str) -> None:
        self.bar = tqdm(total=total, desc=desc or "generating", unit="sample", leave=True)

    def update(self, done: int, total: int) -> None:
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        self.bar.close()


def choose_engine(engine: str) -> tuple[str, str]:
    """``auto`` -> vLLM when a CUDA GPU and vllm are present, else HF generate; with the reason."""

    if engine == "hf":
        return "hf", "requested with --engine hf"
    has_vllm = importlib.util.find_spec("vllm") is not None
    if engine == "vllm":
        if not cuda_available():
            raise ConfigError("--engine vllm needs a CUDA GPU and none is visible; use --engine hf (runs on CPU).")
        if not has_vllm:
            raise ConfigError("--engine vllm: vllm is not installed; `pip install 'grpo-core[gpu]'` on a CUDA machine, or use --engine hf.")
        return "vllm", "requested with --engine vllm"
    if not cuda_available():
        return "hf", "no CUDA GPU visible"
    if not has_vllm:
        return "hf", "CUDA GPU found but vllm is not installed"
    return "vllm", "CUDA GPU and vllm found"
