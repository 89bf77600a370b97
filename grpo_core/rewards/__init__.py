"""Rewards at run time: the engine that runs them, the ``--plugins`` selection, and ``grpo-core score``."""
