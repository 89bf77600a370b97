"""The built-in plugins: the format rewards and the arithmetic task (its verifier, dataset and correctness reward).

They register through the same hooks as any third party and import only ``grpo_core`` and ``grpo_core.kit``;
:mod:`grpo_core.plugins.loading` loads them by name, and nothing imports them.
"""
