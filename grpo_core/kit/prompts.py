"""System prompts and the reply format they ask for."""

XML_SYSTEM_PROMPT = """Respond in the following format:
<reasoning>
...
</reasoning>
<answer>
...
</answer>"""

XML_FORMAT_EXAMPLE = "<reasoning>\n{reasoning}\n</reasoning>\n<answer>\n{answer}\n</answer>"


def format_xml(reasoning: str, answer: str) -> str:
    """A reply in the reference format, e.g. for SFT targets and gold smoke tests."""
    return XML_FORMAT_EXAMPLE.format(reasoning=reasoning.strip(), answer=str(answer).strip())


def chat_prompt(question: str, system_prompt: str | None = XML_SYSTEM_PROMPT) -> list[dict]:
    """Chat messages for one question: the system prompt (unless None) and the user turn."""
    msgs = []
    if system_prompt:
        msgs.append({"role": "system", "content": system_prompt})
    msgs.append({"role": "user", "content": question})
    return msgs
