"""The runtime: killable worker processes with hard deadlines, and what the machine offers (CUDA, Unsloth, the model)."""
