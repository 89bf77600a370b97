"""Shared fixtures for the grpo-core test suite.

``tests/`` has no ``__init__.py``, so pytest (rootdir-based "prepend" import
mode) puts this directory on ``sys.path``: ``helpers_rewards`` is importable
here and, because deadline workers inherit the parent's ``sys.path``, in the
worker processes too.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from grpo_core.testing.pytest_plugin import throwaway_registrations

# Tests never reach a hub: models and data are built or bundled locally.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

if "torch" in sys.modules:  # never import torch here: most tests must run without it
    sys.modules["torch"].set_num_threads(1)

TESTS = Path(__file__).resolve().parent
DEMO_PLUGIN_DIR = TESTS / "fixtures" / "grpo-core-demo-plugin"
DEMO_DIST = "grpo-core-demo-plugin"


@pytest.fixture
def plugin_state(monkeypatch):
    """Forget loaded plugins before and after the test.

    The test starts hermetic: ``GRPO_CORE_LOAD_PLUGINS=''`` (built-ins only,
    whatever else this environment has installed). Returns a helper
    ``load(value)`` that sets (or, with ``None``, unsets) the variable,
    forgets loaded plugins and returns the freshly collected registries.
    """
    import grpo_core.plugins as plugins

    monkeypatch.setenv(plugins.LOAD_ENV, "")
    plugins.reset_for_tests()

    def load(value: str | None):
        if value is None:
            monkeypatch.delenv(plugins.LOAD_ENV, raising=False)
        else:
            monkeypatch.setenv(plugins.LOAD_ENV, value)
        plugins.reset_for_tests()
        return plugins.registries()

    yield load
    plugins.reset_for_tests()


@pytest.fixture
def grpo_register(plugin_state):
    """The conformance kit's ``grpo_register`` (one way to register a throwaway plugin), hermetic in this suite.

    It stands on ``plugin_state``: the test sees the built-ins only, whatever else
    this environment has installed, and everything registered is unregistered
    when the test ends. Usage::

        class P:
            @hookimpl
            def register_rewards(register):
                register(my_reward)

        grpo_register(P, name="p")
    """
    yield from throwaway_registrations()


def run_cli(*args: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run ``python -m grpo_core ARGS`` in a fresh interpreter (real entry-point discovery)."""
    full_env = {k: v for k, v in os.environ.items() if k != "GRPO_CORE_LOAD_PLUGINS"}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "grpo_core", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def demo_plugin_installed(tmp_path_factory):
    """pip-install the demo plugin (a real, non-editable wheel install) for this session.

    It goes to a private ``--target`` folder that is put on ``sys.path`` (and
    on ``PYTHONPATH`` for subprocesses) rather than into the shared venv's
    site-packages, so test runs of other people on the same checkout never see
    it. Entry-point discovery reads ``*.dist-info`` from every ``sys.path``
    entry alike, so this is the same code path as a site-packages install.
    Yields the target folder.
    """
    import importlib
    import shutil

    work = tmp_path_factory.mktemp("demo-plugin")
    src = work / "src"
    shutil.copytree(DEMO_PLUGIN_DIR, src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    target = work / "site"
    res = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "-q",
         "--target", str(target), str(src)],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, f"installing the demo plugin failed:\n{res.stdout}\n{res.stderr}"
    assert list(target.glob("grpo_core_demo_plugin-0.3.1.dist-info")), sorted(p.name for p in target.iterdir())
    sys.path.insert(0, str(target))
    importlib.invalidate_caches()
    try:
        yield target
    finally:
        sys.path.remove(str(target))
        for mod in [m for m in sys.modules if m.split(".")[0] == "grpo_core_demo_plugin"]:
            del sys.modules[mod]
        importlib.invalidate_caches()


def env_with(target: Path | None = None, **env: str) -> dict:
    """Environment for a subprocess: the demo plugin's folder on PYTHONPATH (if given) plus ``env``."""
    out = {}
    if target is not None:
        out["PYTHONPATH"] = os.pathsep.join([str(target)] + [p for p in sys.path if p])
    out.update(env)
    return out


@pytest.fixture(scope="session")
def cuda_gpu():
    """torch, after checking a CUDA GPU is visible: a `gpu` test on a machine without one fails, it does not skip."""
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.fail("the gpu tests need a CUDA GPU; run them on the GPU machine (`pytest -m gpu`)")
    return torch
