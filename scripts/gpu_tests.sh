#!/usr/bin/env bash
# Run on the GPU machine (see docs/gpu.md): unpack the staged GPU stack, install grpo-core and the
# in-repo plugins into it, then run the command given (default: the GPU test suite).
#   bash scripts/gpu_tests.sh                       # pytest -m gpu
#   bash scripts/gpu_tests.sh python3 benchmarks/grpo_step.py --shape qwen2.5-0.5b
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f /tmp/site/.staged ] || bash /tmp/stage/assemble.sh
export PYTHONPATH=/tmp/site HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
if [ -d .whl ]; then python3 -m pip install -q --no-index --no-deps --no-compile --upgrade --target /tmp/site .whl/*.whl; fi
plugins=(); for p in plugins/*/; do [ -f "$p/pyproject.toml" ] && plugins+=("$p"); done
python3 -m pip install -q --no-deps --no-build-isolation --no-index --upgrade --target /tmp/site . "${plugins[@]}" 2>&1 | grep -v "WARNING: Target directory" || true
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
if [ $# -eq 0 ]; then set -- python3 -m pytest -m gpu -p no:cacheprovider -q -rA tests plugins; fi
"$@"
