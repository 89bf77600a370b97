"""The reference Qwen2.5-3B GSM8K workflow, end to end, through grpo-core.

    python examples/qwen2.5-3b-gsm8k/train.py            # on a CUDA GPU with `pip install 'grpo-core[gpu]' grpo-rewards-math`

1. train with GRPO (run.yaml beside this file: 4-bit, LoRA r=64, vLLM fast inference, five rewards);
2. compare the base model and the saved LoRA on the same GSM8K test prompts (inference before and after);
3. export: the LoRA, a merged 16-bit model, and GGUF (q8_0, f16) — each export is checked against
   the adapter before it is accepted.
"""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = "outputs/qwen2.5-3b-grpo"


def grpo_core(*args: str) -> None:
    print("+ grpo-core", " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "grpo_core", *args], check=True)


if __name__ == "__main__":
    grpo_core("run", "--config", str(HERE / "run.yaml"), "--output-dir", OUT)
    grpo_core("eval", "--adapter", OUT, "--dataset", "gsm8k:test", "--limit", "100", "--compare-base")
    grpo_core("export", OUT, "--format", "lora")
    grpo_core("export", OUT, "--format", "merged_16bit")
    grpo_core("export", OUT, "--format", "gguf", "--quant", "q8_0,f16")
