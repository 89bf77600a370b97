"""grpo-core export: every CPU format round-tripped and checked; broken merges caught.

The adapter is not trained: its LoRA B weights are set directly to random values
(tests/tiny_adapters.py), which makes a "strongly trained" adapter whose effect
on the tiny model's greedy outputs and logits is large and deterministic. A few
GRPO steps on a 100k-parameter model would move it far less.
"""

from __future__ import annotations

import json
import os

import pytest
from tiny_adapters import make_adapter_run, tiny_base, tiny_run  # noqa: F401  (fixtures)

from grpo_core.errors import ConfigError
from grpo_core.export.check import ExportCheckError
from grpo_core.export.export import ExportRequest, export_run
from grpo_core.export.llama_cpp import llama_cpp_available

HAVE_LLAMA = llama_cpp_available()


def quiet(_):
    pass


@pytest.fixture(scope="module")
def torch1():
    import torch

    torch.set_num_threads(1)
    return torch


@pytest.fixture(scope="module")
def ref(tiny_run, torch1):
    """The check's reference (base + adapter on the probe prompts), computed once for this module's exports."""
    from grpo_core.run_folder import resolve_trained
    from grpo_core.export.check import ProbeCheck

    return ProbeCheck(resolve_trained(tiny_run), echo=quiet)


def _record(out):
    return json.loads((out / "export.json").read_text())


def test_lora_export_round_trips_with_provenance(tiny_run, tmp_path, torch1, ref):
    out = tmp_path / "lora"
    rec = export_run(ExportRequest(run=str(tiny_run), format="lora", out=str(out)), echo=quiet, check=ref)
    assert rec["check"]["passed"] and _record(out)["check"]["passed"]
    (r,) = rec["check"]["results"]
    assert r["kl_to_adapter"] < 1e-9 and r["greedy_agreement"] == 1.0 and r["adapter_effect"] > 1e-3
    assert r["greedy_agreement_base"] < 0.5  # the probe separates this adapter from the base
    assert {"adapter_model.safetensors", "adapter_config.json", "tokenizer.json", "README.md", "run.json", "export.json"} <= set(os.listdir(out))
    card = (out / "README.md").read_text()
    assert "## Training provenance (grpo-core)" in card and "toy:train" in card and "0123456789abcdef" in card
    assert "| pass |" in card
    assert json.loads((out / "run.json").read_text())["model_path"] == json.loads((tiny_run / "run.json").read_text())["model_path"]


def test_merged_16bit_round_trips(tiny_run, tmp_path, torch1, ref):
    from transformers import AutoModelForCausalLM

    out = tmp_path / "m16"
    rec = export_run(ExportRequest(run=str(tiny_run), format="merged_16bit", out=str(out)), echo=quiet, check=ref)
    (r,) = rec["check"]["results"]
    assert r["passed"] and 0 < r["kl_to_adapter"] < 5e-3 and r["base_ratio"] < 0.05
    m = AutoModelForCausalLM.from_pretrained(out)
    assert next(m.parameters()).dtype == torch1.float16  # a float32 base is saved as float16
    assert not any("lora" in k for k in m.state_dict())


@pytest.fixture(scope="module")
def gguf_export(tiny_run, tmp_path_factory, torch1, ref):
    out = tmp_path_factory.mktemp("gguf") / "out"
    rec = export_run(ExportRequest(run=str(tiny_run), format="gguf", quant=("f32", "f16", "bf16", "q8_0"), out=str(out),
                                   gguf_check="both" if HAVE_LLAMA else "reader"), echo=quiet, check=ref)
    return out, rec


def test_gguf_every_written_type_round_trips(gguf_export):
    out, rec = gguf_export
    names = {p.name for p in out.glob("*.gguf")}
    assert names == {"model-grpo-f32.gguf", "model-grpo-f16.gguf", "model-grpo-bf16.gguf", "model-grpo-q8_0.gguf"}
    res = {(r["artifact"], r["engine"]): r for r in rec["check"]["results"]}
    assert all(r["passed"] for r in res.values()), [r["failures"] for r in res.values()]
    assert {e for _, e in res} == ({"gguf-reader", "llama.cpp"} if HAVE_LLAMA else {"gguf-reader"})
    reader = {a: r for (a, e), r in res.items() if e == "gguf-reader"}
    assert reader["model-grpo-f32.gguf"]["kl_to_adapter"] < 1e-6
    assert reader["model-grpo-f32.gguf"]["kl_to_adapter"] <= reader["model-grpo-q8_0.gguf"]["kl_to_adapter"]
    assert all(r["greedy_agreement"] == 1.0 for r in reader.values())


def test_gguf_metadata_and_tokenizer(gguf_export, tiny_base):
    from transformers import AutoTokenizer

    from grpo_core.export.gguf import gguf_metadata

    out, _ = gguf_export
    meta = gguf_metadata(out / "model-grpo-q8_0.gguf")
    tok = AutoTokenizer.from_pretrained(tiny_base)
    assert meta["general.architecture"] == "qwen2" and meta["general.file_type"] == 7
    assert meta["qwen2.block_count"] == 2 and meta["qwen2.attention.head_count_kv"] == 2
    assert meta["tokenizer.ggml.model"] == "gpt2" and meta["tokenizer.ggml.pre"] == "qwen2"
    tokens = meta["tokenizer.ggml.tokens"]
    assert all(tokens[i] == t for t, i in tok.get_vocab().items())
    types = meta["tokenizer.ggml.token_type"]
    assert types[tok.convert_tokens_to_ids("<|im_end|>")] == 3 and types[tok.convert_tokens_to_ids("a")] == 1  # control / normal
    assert meta["tokenizer.ggml.eos_token_id"] == tok.eos_token_id
    assert len(meta["tokenizer.ggml.merges"]) > 0 and meta["tokenizer.chat_template"] == tok.chat_template


@pytest.mark.skipif(not HAVE_LLAMA, reason="llama-cpp-python is not installed")
def test_gguf_runs_in_llama_cpp_with_the_same_tokens(gguf_export):
    _, rec = gguf_export
    lc = [r for r in rec["check"]["results"] if r["engine"] == "llama.cpp"]
    assert len(lc) == 4 and all(r["tokenization_ok"] for r in lc)
    f32 = next(r for r in lc if r["artifact"].endswith("f32.gguf"))
    assert f32["greedy_agreement"] == 1.0 and f32["kl_to_adapter"] < 1e-4


@pytest.fixture
def no_llama_cpp(monkeypatch):
    """As on a machine without llama-cpp-python: importing llama_cpp fails."""
    import sys

    monkeypatch.setitem(sys.modules, "llama_cpp", None)


def test_q4_k_m_without_llama_cpp_says_what_it_needs(tiny_run, tmp_path, no_llama_cpp):
    req = ExportRequest(run=str(tiny_run), format="gguf", quant=("q8_0", "q4_k_m"), out=str(tmp_path / "q4"))
    with pytest.raises(ConfigError, match="q4_k_m needs llama.cpp's quantizer: `pip install llama-cpp-python`"):
        export_run(req, echo=quiet)
    assert not (tmp_path / "q4").exists()  # refused before any work


def test_gguf_check_falls_back_to_the_reader_without_llama_cpp(tiny_run, tmp_path, no_llama_cpp, ref):
    lines = []
    rec = export_run(ExportRequest(run=str(tiny_run), format="gguf", quant=("f16",), out=str(tmp_path / "g")), echo=lines.append, check=ref)
    assert [r["engine"] for r in rec["check"]["results"]] == ["gguf-reader"] and rec["check"]["passed"]
    assert any("llama-cpp-python is not installed" in ln for ln in lines)
    with pytest.raises(ConfigError, match="needs llama-cpp-python"):
        export_run(ExportRequest(run=str(tiny_run), format="gguf", quant=("f16",), out=str(tmp_path / "h"), gguf_check="llama.cpp"),
                   echo=quiet, check=ref)


@pytest.mark.skipif(not HAVE_LLAMA, reason="llama-cpp-python is not installed")
def test_q4_k_m_is_quantized_by_llama_cpp_and_checked_in_it(tiny_run, tmp_path, ref):
    from grpo_core.export.gguf import gguf_metadata

    rec = export_run(ExportRequest(run=str(tiny_run), format="gguf", quant=("q4_k_m",), out=str(tmp_path / "q4")), echo=quiet, check=ref)
    (r,) = rec["check"]["results"]
    assert r["engine"] == "llama.cpp" and r["precision"] == "4bit" and r["passed"] and r["base_ratio"] < 0.1
    assert gguf_metadata(tmp_path / "q4" / "model-grpo-q4_k_m.gguf")["general.file_type"] == 15  # MOSTLY_Q4_K_M
    assert [p.name for p in (tmp_path / "q4").glob("*.gguf")] == ["model-grpo-q4_k_m.gguf"]  # the f32 source was removed


_DIE_WITH_SIGILL = "import os, signal\nos.kill(os.getpid(), signal.SIGILL)\n"


def test_a_llama_cpp_build_for_another_cpu_is_an_error_not_a_crash(tiny_run, tmp_path, monkeypatch, ref):
    """A llama.cpp build with instructions this CPU lacks dies with SIGILL; that happens in a child process."""
    from grpo_core.export import export as export_module, llama_cpp

    monkeypatch.setattr(llama_cpp, "_PROBE", _DIE_WITH_SIGILL)
    monkeypatch.setattr(export_module, "llama_cpp_available", lambda: True)
    lines = []
    rec = export_run(ExportRequest(run=str(tiny_run), format="gguf", quant=("f16",), out=str(tmp_path / "g")), echo=lines.append, check=ref)
    assert [r["engine"] for r in rec["check"]["results"]] == ["gguf-reader"] and rec["check"]["passed"]
    said = next(ln for ln in lines if "SIGILL" in ln)
    assert "CMAKE_ARGS=-DGGML_NATIVE=OFF" in said and "read back with gguf.GGUFReader instead" in said
    with pytest.raises(ConfigError, match=r"--gguf-check llama.cpp: llama.cpp died with SIGILL.*--gguf-check reader"):
        export_run(ExportRequest(run=str(tiny_run), format="gguf", quant=("f16",), out=str(tmp_path / "h"), gguf_check="llama.cpp"),
                   echo=quiet, check=ref)
    assert (tmp_path / "h" / "model-grpo-f16.gguf").is_file()  # what was written stays


def test_llama_cpp_probe_reports_a_file_it_cannot_load(tmp_path):
    from grpo_core.export.llama_cpp import llama_cpp_failure

    bad = tmp_path / "not-a-model.gguf"
    bad.write_bytes(b"GGUF but not really")
    failure = llama_cpp_failure(bad)
    assert failure is not None and "not-a-model.gguf" in failure and "exit code 1" in failure


@pytest.mark.skipif(not HAVE_LLAMA, reason="llama-cpp-python is not installed")
def test_a_quantizer_that_dies_is_an_error_and_leaves_no_partial_file(tiny_run, tmp_path, monkeypatch, ref):
    from grpo_core.export import llama_cpp

    monkeypatch.setattr(llama_cpp, "_QUANTIZE", _DIE_WITH_SIGILL)
    with pytest.raises(ConfigError, match="died with SIGILL while quantizing .* to q4_k_m.*GGML_NATIVE=OFF"):
        export_run(ExportRequest(run=str(tiny_run), format="gguf", quant=("q4_k_m",), out=str(tmp_path / "q4")), echo=quiet, check=ref)
    assert not (tmp_path / "q4" / "model-grpo-q4_k_m.gguf").exists()


# --- broken exports are caught -------------------------------------------------------------------

def _base_only(trained):
    import torch
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(trained.base, dtype=torch.float32)  # the adapter "dropped"


@pytest.mark.parametrize("fmt,quant", [("merged_16bit", ()), ("gguf", ("q8_0",))])
def test_a_merge_that_drops_the_lora_fails_the_check(tiny_run, tmp_path, monkeypatch, fmt, quant, torch1, ref):
    import grpo_core.export.export as ex

    monkeypatch.setattr(ex, "merge_peft", _base_only)
    out = tmp_path / "broken"
    lines = []
    with pytest.raises(ExportCheckError, match="post-export check FAILED") as e:
        export_run(ExportRequest(run=str(tiny_run), format=fmt, quant=quant, out=str(out), gguf_check="reader"), echo=lines.append, check=ref)
    assert e.value.exit_code == 3
    (r,) = _record(out)["check"]["results"]
    assert not r["passed"] and r["base_ratio"] > 0.9
    assert any("behaves like the base model" in f for f in r["failures"])
    assert "FAILED" in (out / "README.md").read_text()
    assert any("behaves like the base model" in ln for ln in lines)


def test_rounding_as_large_as_the_adapters_effect_is_named_as_such(tiny_base, tmp_path, torch1):
    """An export far from the adapter yet not near the base is rounding noise, not a dropped LoRA: the failure says so."""
    from tiny_adapters import make_adapter_run

    from grpo_core.export.check import ProbeCheck
    from grpo_core.run_folder import resolve_trained

    check = ProbeCheck(resolve_trained(make_adapter_run(tmp_path / "weak", tiny_base, scale=0.01)), echo=quiet)
    gen = torch1.Generator().manual_seed(0)
    noise = [torch1.randn(p.ref_logp.shape, generator=gen) for p in check.probes]
    sigma = 1e-3
    while True:  # grow the noise until it is as large as the adapter's effect
        cand = [torch1.log_softmax(p.ref_logp + sigma * n, dim=-1) for p, n in zip(check.probes, noise)]
        if check._kl([p.ref_logp for p in check.probes], cand) > check.adapter_effect:
            break
        sigma *= 1.5
    r = check.judge("noisy.gguf", "test", "8bit", cand, [p.ref_tokens for p in check.probes])
    assert not r.passed and r.base_ratio > 0.5
    assert any("no larger than this precision's rounding" in f and "export a finer precision (f16)" in f for f in r.failures)
    assert not any("behaves like the base model" in f for f in r.failures)


def test_a_merge_that_changes_outputs_beyond_tolerance_fails(tiny_run, tmp_path, monkeypatch, torch1, ref):
    import grpo_core.export.export as ex

    real = ex.merge_peft

    def noisy(trained):
        m = real(trained)
        g = torch1.Generator().manual_seed(0)
        with torch1.no_grad():
            for n, p in m.named_parameters():
                if p.ndim == 2:
                    p.add_(torch1.randn(p.shape, generator=g) * 0.02)  # about 3x the q8_0 rounding error's scale
        return m

    monkeypatch.setattr(ex, "merge_peft", noisy)
    with pytest.raises(ExportCheckError):
        export_run(ExportRequest(run=str(tiny_run), format="merged_16bit", out=str(tmp_path / "noisy")), echo=quiet, check=ref)
    (r,) = _record(tmp_path / "noisy")["check"]["results"]
    assert any("beyond tolerance" in f for f in r["failures"]), r["failures"]


def test_an_adapter_that_changes_nothing_cannot_be_certified(tiny_base, tmp_path, torch1):
    run = make_adapter_run(tmp_path / "noop", tiny_base, scale=0.0)  # B = 0: LoRA's initial, no-op state
    with pytest.raises(ExportCheckError):
        export_run(ExportRequest(run=str(run), format="lora", out=str(tmp_path / "o"), probe_tokens=4), echo=quiet)
    (r,) = _record(tmp_path / "o")["check"]["results"]
    assert any("does not change the base model's outputs" in f for f in r["failures"])


# --- what needs what -------------------------------------------------------------------------------

def test_merged_4bit_on_cpu_names_what_it_needs(tiny_run, tmp_path):
    from grpo_core.runtime.hardware import cuda_available

    if cuda_available():
        pytest.skip("has a GPU")
    with pytest.raises(ConfigError, match="CUDA GPU") as e:
        export_run(ExportRequest(run=str(tiny_run), format="merged_4bit", out=str(tmp_path / "x")), echo=quiet)
    assert "merged_16bit" in str(e.value)
    assert not (tmp_path / "x").exists()


def test_gguf_refuses_unsupported_architectures_and_unknown_types(tiny_run, tmp_path):
    from transformers import GPT2Config

    from grpo_core.export.gguf import gguf_arch

    with pytest.raises(ConfigError, match="Qwen2ForCausalLM, LlamaForCausalLM"):
        gguf_arch(GPT2Config(architectures=["GPT2LMHeadModel"]))
    with pytest.raises(ConfigError, match="unknown GGUF type"):
        export_run(ExportRequest(run=str(tiny_run), format="gguf", quant=("q9_9",), out=str(tmp_path / "y")), echo=quiet)
    with pytest.raises(ConfigError, match="--quant applies to --format gguf only"):
        export_run(ExportRequest(run=str(tiny_run), format="lora", quant=("f16",), out=str(tmp_path / "y")), echo=quiet)


def test_llama_qk_permutation_matches_interleaved_rope(torch1):
    """HF rotates halves (x_i, x_{i+d/2}); llama.cpp's Llama rotates pairs (x_{2i}, x_{2i+1}). The permuted
    projection under interleaved RoPE must give the permuted result of the original under rotate-half."""
    import numpy as np

    from grpo_core.export.gguf import permute_qk, unpermute_qk

    rng = np.random.default_rng(0)
    n_head, d, hidden, pos = 3, 8, 12, 5
    w = rng.normal(size=(n_head * d, hidden))
    x = rng.normal(size=hidden)
    theta = 10000.0 ** (-np.arange(0, d, 2) / d) * pos
    cos, sin = np.cos(theta), np.sin(theta)

    def hf_rope(q):  # rotate_half on each head
        q = q.reshape(n_head, d)
        a, b = q[:, : d // 2], q[:, d // 2 :]
        return np.concatenate([a * cos - b * sin, b * cos + a * sin], axis=1)

    def interleaved_rope(q):
        q = q.reshape(n_head, d // 2, 2)
        a, b = q[..., 0], q[..., 1]
        return np.stack([a * cos - b * sin, b * cos + a * sin], axis=-1).reshape(n_head, d)

    hf = hf_rope(w @ x)
    ll = interleaved_rope(permute_qk(w, n_head) @ x)
    # the same rotated vector, in the interleaved order: permuting hf's result per head gives ll
    assert np.allclose(permute_qk(hf.reshape(-1, 1), n_head).reshape(n_head, d), ll)
    assert np.allclose(unpermute_qk(permute_qk(w, n_head), n_head), w)


def test_llama_architecture_round_trips_through_gguf(tmp_path, torch1, tiny_base):
    """A tiny Llama (the Qwen2 tokenizer is fine for the format) written as GGUF f32 and read back."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from grpo_core.export.gguf import load_gguf_as_hf, write_gguf

    tok = AutoTokenizer.from_pretrained(tiny_base)
    torch1.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, max_position_embeddings=256, tie_word_embeddings=False,
                      rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                    "original_max_position_embeddings": 64},
                      architectures=["LlamaForCausalLM"])
    m = LlamaForCausalLM(cfg).eval()
    info = write_gguf(m.state_dict(), m.config, tok, tmp_path / "l.gguf", "f32")
    assert info.arch == "llama" and info.tensors == 2 * 9 + 3 + 1  # 9 per block, embd/norm/output, rope_freqs
    back = load_gguf_as_hf(info.path, m.config)
    ids = torch1.tensor([[1, 5, 9, 30, 44, 7]])
    with torch1.no_grad():
        assert torch1.allclose(m(ids).logits, back(ids).logits, atol=1e-5)
    if HAVE_LLAMA:
        import numpy as np
        from llama_cpp import Llama

        llm = Llama(model_path=str(info.path), n_ctx=64, logits_all=True, verbose=False, n_threads=1)
        llm.eval(ids[0].tolist())
        got = np.array(llm.scores[: ids.shape[1]])
        with torch1.no_grad():
            want = m(ids).logits[0].numpy()
        assert np.abs(got - want).max() < 1e-3  # q/k permutation and llama3 rope factors as llama.cpp expects


# --- hub and command -----------------------------------------------------------------------------

def test_push_to_hub_takes_the_token_from_the_environment_only(tiny_run, tmp_path, monkeypatch, capsys, torch1, ref):
    import huggingface_hub

    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="HF_TOKEN"):
        export_run(ExportRequest(run=str(tiny_run), format="lora", out=str(tmp_path / "n"), push_to_hub="me/x"), echo=quiet)
    calls = {}

    class FakeApi:
        def __init__(self, token=None):
            calls["token"] = token

        def create_repo(self, repo_id, **kw):
            calls["repo"] = (repo_id, kw)
            return f"https://huggingface.co/{repo_id}"

        def upload_folder(self, folder_path, repo_id, **kw):
            calls["files"] = sorted(os.listdir(folder_path))
            raise RuntimeError("401 bad credentials for secret-token-123")

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    monkeypatch.setenv("HF_TOKEN", "secret-token-123")
    lines = []
    with pytest.raises(ConfigError) as e:
        export_run(ExportRequest(run=str(tiny_run), format="lora", out=str(tmp_path / "p"), push_to_hub="me/x"), echo=lines.append, check=ref)
    assert calls["token"] == "secret-token-123" and calls["repo"][0] == "me/x" and calls["repo"][1]["private"] is True
    assert "README.md" in calls["files"] and "export.json" in calls["files"]
    assert "secret-token-123" not in str(e.value) and "***" in str(e.value)
    assert not any("secret-token-123" in ln for ln in lines) and "secret-token-123" not in capsys.readouterr().out
    for f in (tmp_path / "p").iterdir():
        assert b"secret-token-123" not in f.read_bytes(), f


def test_export_command_exit_codes(tiny_run, tmp_path, monkeypatch, torch1, ref):
    from click.testing import CliRunner

    import grpo_core.export.export as ex
    from grpo_core.cli import cli, register_commands

    register_commands()
    monkeypatch.setattr(ex, "ProbeCheck", lambda *a, **k: ref)  # the reference was computed once for this module
    res = CliRunner().invoke(cli, ["export", str(tiny_run), "--format", "lora", "--out", str(tmp_path / "ok"), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["check"]["passed"] is True
    monkeypatch.setattr(ex, "merge_peft", _base_only)
    res = CliRunner().invoke(cli, ["export", str(tiny_run), "--format", "merged_16bit", "--out", str(tmp_path / "bad")])
    assert res.exit_code == 3 and "behaves like the base model" in res.output and "FAILED" in res.output
    res = CliRunner().invoke(cli, ["export", str(tiny_run), "--format", "merged_4bit"])
    if not __import__("torch").cuda.is_available():
        assert res.exit_code == 2 and "CUDA GPU" in res.output
