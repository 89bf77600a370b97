"""grpo-rewards-math: answer verifiers (gsm8k, aime, math), correctness rewards
and GSM8K / AIME / MATH-500 dataset adapters for grpo-core.

Importing this package is cheap: sympy and Math-Verify are imported only
inside the symbolic comparison, which runs in the core's worker processes.
"""

__version__ = "0.1.0"
