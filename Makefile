# The two set-up commands of the README. Both install what they need first.
.PHONY: setup demo test test-gpu

setup:
	bash scripts/setup.sh

# The main job: the embedded default, offline on CPU.
demo: setup
	.venv/bin/grpo-core run --output-dir runs/demo

# The test suite (what CI runs).
test: setup
	.venv/bin/python -m pytest -q

# GPU tests: run on a CUDA machine with the GPU stack installed.
test-gpu:
	python -m pytest -q -m gpu
