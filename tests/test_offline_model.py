"""A model path that does not exist, shaped like a hub id (owner/name), offline: "no such folder" at once."""

from __future__ import annotations

import pytest

from grpo_core.errors import ConfigError
from grpo_core.runtime import hardware


def test_a_typod_local_path_offline_says_no_such_folder(tmp_path, monkeypatch):
    (tmp_path / "runs").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(hardware, "hub_reachable", lambda timeout=3.0: pytest.fail("offline: the hub is not asked"))
    with pytest.raises(ConfigError, match=r"no such folder 'runs/my-modl' \('runs' exists: a typo"):
        hardware.resolve_model("runs/my-modl")


def test_no_network_is_offline_too(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(hardware, "hub_reachable", lambda timeout=3.0: False)
    with pytest.raises(ConfigError, match="no such folder 'Qwen/Qwen2.5-3B-Instruct'"):
        hardware.resolve_model("Qwen/Qwen2.5-3B-Instruct")


def test_a_cached_or_reachable_hub_id_passes(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    (tmp_path / "models--Qwen--Qwen2.5-3B-Instruct").mkdir()
    assert hardware.resolve_model("Qwen/Qwen2.5-3B-Instruct") == "Qwen/Qwen2.5-3B-Instruct"
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(hardware, "hub_reachable", lambda timeout=3.0: True)
    assert hardware.resolve_model("owner/other") == "owner/other"
