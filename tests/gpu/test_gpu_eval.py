"""GPU: `grpo-core eval` with vLLM, the adapter served as a LoRA request (run with `pytest -m gpu`).

Self-contained: a random-weight Qwen2 of vLLM-friendly shape (hidden 256, 4 heads of 64, the
"small" shape of grpo_core.testing.modelgen) is built on the spot, and a LoRA adapter whose B weights are
set to random values (tests/tiny_adapters.py) stands in for a trained one: it changes the model's
outputs a lot, so "vLLM applied the LoRA" is visible in the completions. Needs CUDA and vllm.
"""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def small_run(tmp_path_factory, cuda_gpu):
    pytest.importorskip("vllm")
    from tiny_adapters import make_adapter_run

    from grpo_core.testing.modelgen import build_random_model

    base = build_random_model(tmp_path_factory.mktemp("m") / "small", "small", device="cpu", dtype="float32")
    return make_adapter_run(tmp_path_factory.mktemp("r") / "run", base, scale=0.5, rank=8)


def _prefix(a: str, b: str) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def test_vllm_eval_applies_the_lora_request_and_writes_the_same_json(small_run, tmp_path, register_plugin):
    import toy_plugin

    from grpo_core.evaluation.engines import VLLMEngine
    from grpo_core.evaluation.evaluate import EvalRequest, run_eval

    register_plugin(toy_plugin.ToyPlugin(), name="toy_plugin")
    common = dict(dataset="toy:test", adapter=str(small_run), limit=8, max_new_tokens=24, compare_base=True, seed=11)
    eng = VLLMEngine(json.loads((small_run / "run.json").read_text())["model_path"], str(small_run / "adapter"),
                     lora_rank=8, gpu_memory_utilization=0.3, max_model_len=1024, seed=11)
    sv = run_eval(EvalRequest(**common, out=str(tmp_path / "v.jsonl")), echo=print, engine_obj=eng)
    sh = run_eval(EvalRequest(**common, engine="hf", out=str(tmp_path / "h.jsonl")), echo=print)
    assert sv["engine"] == "vllm" and sh["engine"] == "hf"
    v = [json.loads(x) for x in (tmp_path / "v.jsonl").read_text().splitlines()]
    h = [json.loads(x) for x in (tmp_path / "h.jsonl").read_text().splitlines()]
    assert [set(r) for r in v] == [set(r) for r in h]  # the same JSON whichever engine
    assert [(r["model"], r["id"]) for r in v] == [(r["model"], r["id"]) for r in h]
    assert set(sv["results"]["adapter"]) == set(sh["results"]["adapter"])
    vb = [r["completions"][0] for r in v if r["model"] == "base"]
    va = [r["completions"][0] for r in v if r["model"] == "adapter"]
    hb = [r["completions"][0] for r in h if r["model"] == "base"]
    ha = [r["completions"][0] for r in h if r["model"] == "adapter"]
    assert sum(a != b for a, b in zip(va, vb)) >= 6  # the LoRA request changes vLLM's output
    # vLLM's adapter outputs are HF's adapter outputs (up to bf16 noise), not the base model's
    assert sum(_prefix(x, y) for x, y in zip(va, ha)) > sum(_prefix(x, y) for x, y in zip(va, hb))
    assert sum(_prefix(x, y) for x, y in zip(vb, hb)) > sum(_prefix(x, y) for x, y in zip(vb, ha))

    # sampling: pass@k / maj@k, reproducible with the same seed
    s1 = run_eval(EvalRequest(dataset="toy:test", adapter=str(small_run), limit=4, samples=4, temperature=1.0, max_new_tokens=16,
                              seed=5, out=str(tmp_path / "s1.jsonl")), echo=print, engine_obj=eng)
    run_eval(EvalRequest(dataset="toy:test", adapter=str(small_run), limit=4, samples=4, temperature=1.0, max_new_tokens=16,
                         seed=5, out=str(tmp_path / "s2.jsonl")), echo=print, engine_obj=eng)
    assert {"pass@1", "pass@2", "pass@4", "maj@4"} <= set(s1["results"]["adapter"])
    recs = [json.loads(x) for x in (tmp_path / "s1.jsonl").read_text().splitlines()]
    assert all(len(r["completions"]) == 4 for r in recs)
    assert (tmp_path / "s1.jsonl").read_text() == (tmp_path / "s2.jsonl").read_text()


def test_auto_engine_picks_vllm_on_gpu():
    pytest.importorskip("vllm")
    from grpo_core.evaluation.engines import choose_engine

    assert choose_engine("auto")[0] == "vllm"


def test_merged_4bit_export_is_made_and_checked_on_gpu(small_run, tmp_path):
    """merged_4bit (bitsandbytes NF4) exists only on CUDA; the post-export check must still see the LoRA in it."""
    pytest.importorskip("bitsandbytes")
    from grpo_core.export.export import ExportRequest, export_run

    rec = export_run(ExportRequest(run=str(small_run), format="merged_4bit", out=str(tmp_path / "m4"), backend="peft"), echo=print)
    (r,) = rec["check"]["results"]
    assert r["passed"] and r["precision"] == "4bit" and r["base_ratio"] < 0.5, r
