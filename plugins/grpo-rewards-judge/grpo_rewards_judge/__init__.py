"""grpo-rewards-judge: LLM-as-judge rewards against any OpenAI-compatible server."""

__version__ = "0.1.0"
