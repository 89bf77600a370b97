"""--model FILE.gguf: which paths count as a GGUF model, and what is refused (no conversion here;
the real conversion is in the real_model tier, tests/test_real_model.py)."""

from __future__ import annotations

import pytest

from grpo_core.errors import ConfigError
from grpo_core.runtime.gguf_model import cache_root, gguf_file_in


def test_a_gguf_file_or_a_folder_holding_one(tmp_path):
    f = tmp_path / "m" / "model.Q4_1.gguf"
    f.parent.mkdir()
    f.write_bytes(b"GGUF")
    assert gguf_file_in(f) == f
    assert gguf_file_in(f.parent) == f
    (f.parent / "config.json").write_text("{}")
    assert gguf_file_in(f.parent) is None  # a Hugging Face folder stays one
    assert gguf_file_in(tmp_path / "nothing-here") is None
    other = tmp_path / "weights.safetensors"
    other.write_bytes(b"x")
    assert gguf_file_in(other) is None


def test_a_folder_with_several_gguf_files_asks_which(tmp_path):
    for name in ("a.gguf", "b.gguf"):
        (tmp_path / name).write_bytes(b"GGUF")
    with pytest.raises(ConfigError, match="holds 2 GGUF files .*a.gguf, b.gguf"):
        gguf_file_in(tmp_path)


def test_cache_location_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("GRPO_CORE_CACHE", str(tmp_path))
    assert cache_root() == tmp_path / "models"
