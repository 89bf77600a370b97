"""The Llama-3.2-3B variant end to end: SFT warm-up, GRPO, AIME evaluation, export.

    python examples/llama3.2-3b-gsm8k/train.py [--fp8]
"""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = "outputs/llama3.2-3b-grpo"


def grpo_core(*args: str) -> None:
    print("+ grpo-core", " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "grpo_core", *args], check=True)


if __name__ == "__main__":
    extra = ["--set", "load_in_fp8=true"] if "--fp8" in sys.argv else []
    grpo_core("run", "--config", str(HERE / "run.yaml"), "--output-dir", OUT, *extra)
    grpo_core("eval", "--adapter", OUT, "--dataset", "aime:2024", "--samples", "8", "--temperature", "0.8", "--compare-base")
    grpo_core("export", OUT, "--format", "merged_16bit")
