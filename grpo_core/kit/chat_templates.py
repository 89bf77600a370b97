"""Chat templates by name or file, and checks on the rendered prompt."""

from __future__ import annotations

from pathlib import Path

from grpo_core.errors import ConfigError, UnknownNameError

CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

# Llama 3.1 instruct layout (no tools, no date header), as the Unsloth
# Llama-3.x notebooks apply it with get_chat_template("llama-3.1").
LLAMA_31 = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
)

TEMPLATES = {"chatml": CHATML, "qwen2.5": CHATML, "llama-3.1": LLAMA_31}
THINK_OPENERS = ("<think>", "<|begin_of_thought|>", "<reasoning>")


def resolve_template(name_or_path: str) -> str:
    """A chat template's text, by name (``chatml``, ``qwen2.5``, ``llama-3.1``) or from a ``.jinja`` file."""
    if name_or_path in TEMPLATES:
        return TEMPLATES[name_or_path]
    p = Path(name_or_path)
    if p.suffix in (".jinja", ".j2", ".txt") or p.exists():
        if not p.is_file():
            raise ConfigError(f"chat template file {name_or_path!r} does not exist.")
        return p.read_text()

    raise UnknownNameError("chat template", name_or_path, TEMPLATES)


def apply_template(tokenizer, name_or_path: str | None) -> None:
    """Set ``tokenizer.chat_template`` by name or file; ``None`` keeps the tokenizer's own."""
    if name_or_path:
        tokenizer.chat_template = resolve_template(name_or_path)
    if not getattr(tokenizer, "chat_template", None):
        raise ConfigError("the tokenizer has no chat template; pass --chat-template chatml (or llama-3.1, or a .jinja file).")


def opens_think_tag(rendered_prompt: str) -> str | None:
    """The thinking tag the template itself opens at the end of the prompt, if any."""
    tail = rendered_prompt.rstrip()[-40:]
    for t in THINK_OPENERS:
        if tail.endswith(t):
            return t
    return None


def render_prompt(tokenizer, prompt) -> str:
    """A dataset prompt as the model sees it: chat messages through the tokenizer's template, text as it is."""
    if isinstance(prompt, list):
        return tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    return str(prompt)
