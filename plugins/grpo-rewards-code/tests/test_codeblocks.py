from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from grpo_rewards_code.codeblocks import code_blocks, format_score, last_python_block


def test_last_closed_python_block_wins():
    text = "Plan:\n```python\nx = 1\n```\nBetter:\n```python\ndef f():\n    return 2\n```\nDone."
    assert last_python_block(text) == "def f():\n    return 2\n"


def test_other_languages_and_unclosed_fences_are_not_code():
    assert last_python_block("```bash\nrm -rf /\n```") is None
    assert last_python_block("```python\nx = 1\n") is None
    assert last_python_block("no code at all") is None
    assert last_python_block("```\nprint(1)\n```") == "print(1)\n"  # untagged reads as Python
    assert last_python_block("```py\nprint(1)\n```\n```text\nout\n```") == "print(1)\n"


def test_format_score_levels():
    assert format_score("```python\ndef f(x):\n    return x\n```") == 1.0
    assert format_score("```python\ndef f(x) return x\n```") == 0.5  # does not parse
    assert format_score("```python\na = 1\n```\n```python\nb = 2\n```") == 0.5  # two blocks
    assert format_score("```python\n\n```") == 0.5  # empty
    assert format_score("```python\nx = 1") == 0.0  # never closed
    assert format_score("def f(x): return x") == 0.0


@settings(max_examples=60)
@given(st.text(alphabet=st.sampled_from("`\npyton x=1"), max_size=300))
def test_any_text_is_read_without_error(text):
    blocks = code_blocks(text)
    assert all(not b.closed for b in blocks[-1:]) or all(b.closed for b in blocks[:-1])
    assert format_score(text) in (0.0, 0.5, 1.0)
    code = last_python_block(text)
    assert code is None or code in text


@settings(max_examples=60)
@given(st.text(max_size=200).filter(lambda s: "```" not in s))
def test_a_block_round_trips(body):
    body = body if body.endswith("\n") else body + "\n"
    assert last_python_block(f"intro\n```python\n{body}```\noutro") == body
