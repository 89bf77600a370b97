"""Export of a trained run: merged weights, GGUF (:mod:`~grpo_core.export.gguf`), the post-export check, the hub."""
