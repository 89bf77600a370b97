"""Evaluation: accuracy, pass@k and maj@k with a verifier (:mod:`~grpo_core.evaluation.evaluate`), and the before/after report of a run."""
