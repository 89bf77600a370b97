"""``grpo-core launch``'s work: the layout (accelerate config, the vLLM server's and the ranks' commands) and the
supervisor that starts, watches and stops them. Imports nothing heavy; no training code (``train``) is imported."""
