"""grpo-rewards-code: rewards that run the model's code in a local sandbox
(``code_tests``, ``code_format``), the ``python_tests`` verifier and the
HumanEval / MBPP dataset adapters for grpo-core.

Importing this package is cheap: no sandbox is started until code is run,
and the isolation layer is chosen (and announced) on first use.
"""

__version__ = "0.1.0"
