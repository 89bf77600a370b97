"""The built-in format rewards against an adversarial table.

Each row: a reply, then the expected (xml, soft_format, strict_format,
exact_format). Every reply is scored as a plain string and as chat messages.
"""

from __future__ import annotations

import pytest

from grpo_core.default_plugins.format_rewards import exact_format, soft_format, strict_format, xml

PERFECT = "<reasoning>\n2 + 2 = 4\n</reasoning>\n<answer>\n4\n</answer>"
MAX = {"xml": 0.5, "soft": 0.5, "strict": 0.5, "exact": 3.0}
FUNCS = {"xml": xml, "soft": soft_format, "strict": strict_format, "exact": exact_format}


def trailing(n):
    return 0.5 - 0.001 * n


CASES = [
    # --- what the format asks for gets the maximum
    ("perfect", PERFECT, (0.5, 0.5, 0.5, 3.0)),
    ("perfect + final newline", PERFECT + "\n", (0.5, 0.5, 0.5, 3.0)),
    ("one line, no newlines", "<reasoning>2+2=4</reasoning><answer>4</answer>", (0.5, 0.5, 0.0, 3.0)),
    ("perfect, multi-line reasoning", "<reasoning>\na\nb\nc\n</reasoning>\n<answer>\n4\n</answer>", (0.5, 0.5, 0.5, 3.0)),
    ("whitespace between blocks", "<reasoning>a</reasoning>  \n\n <answer>4</answer>", (0.5, 0.5, 0.0, 3.0)),
    # --- empty and whitespace-only blocks pay nothing
    ("empty tags", "<reasoning></reasoning><answer></answer>", (0.0, 0.0, 0.0, 0.0)),
    ("whitespace-only blocks", "<reasoning>\n \n</reasoning>\n<answer>\n\t\n</answer>", (0.0, 0.0, 0.0, 0.0)),
    ("empty answer", "<reasoning>\nok\n</reasoning>\n<answer>\n\n</answer>", (0.25, 0.0, 0.0, 0.0)),
    ("empty reasoning", "<reasoning>\n\n</reasoning>\n<answer>\n4\n</answer>", (0.25, 0.0, 0.0, 0.0)),
    ("bare tags only", "<reasoning><answer></answer></reasoning>", (0.0, 0.0, 0.0, 0.0)),
    # --- repeated blocks
    ("two full pairs", "<reasoning>a</reasoning><answer>1</answer><reasoning>b</reasoning><answer>2</answer>", (0.0, 0.0, 0.0, 0.0)),
    ("two answers", "<reasoning>a</reasoning><answer>1</answer><answer>2</answer>", (0.25, 0.0, 0.0, 0.0)),
    ("two reasonings", "<reasoning>a</reasoning><reasoning>b</reasoning><answer>1</answer>", (0.25, 0.0, 0.0, 0.0)),
    ("repeated closing tag", "<reasoning>a</reasoning></reasoning><answer>1</answer>", (0.25, 0.0, 0.0, 0.0)),
    ("100 answer blocks", "<reasoning>a</reasoning>" + "<answer>1</answer>" * 100, (0.25, 0.0, 0.0, 0.0)),
    # --- nesting
    ("answer nested in reasoning", "<reasoning>a<answer>1</answer></reasoning>", (0.0, 0.0, 0.0, 0.0)),
    ("reasoning nested in answer", "<answer><reasoning>a</reasoning>1</answer>", (0.0, 0.0, 0.0, 0.0)),
    ("interleaved", "<reasoning>a<answer>b</reasoning>c</answer>", (0.0, 0.0, 0.0, 0.0)),
    # --- mismatched closing tags
    ("reasoning closed by </answer>", "<reasoning>x</answer>", (0.0, 0.0, 0.0, 0.0)),
    ("swapped closers", "<reasoning>x</answer><answer>y</reasoning>", (0.0, 0.0, 0.0, 0.0)),
    ("close before open", "</reasoning>a<reasoning></answer>1<answer>", (0.0, 0.0, 0.0, 0.0)),
    ("wrong case", "<Reasoning>a</Reasoning><ANSWER>1</ANSWER>", (0.0, 0.0, 0.0, 0.0)),
    ("tag with attribute", '<reasoning>a</reasoning><answer type="x">1</answer>', (0.25, 0.0, 0.0, 0.0)),
    # --- order
    ("answer before reasoning", "<answer>1</answer><reasoning>a</reasoning>", (0.25 - 0.024, 0.0, 0.0, 0.0)),
    # --- text outside the blocks
    ("trailing text", PERFECT + "\nthanks!", (trailing(7), 0.5, 0.0, 0.0)),
    ("huge trailing text is capped", PERFECT + "x" * 10_000, (0.25, 0.5, 0.0, 0.0)),
    ("text before", "Sure. " + PERFECT, (0.5, 0.0, 0.0, 0.0)),
    ("text between", "<reasoning>a</reasoning> so <answer>1</answer>", (0.5, 0.0, 0.0, 0.0)),
    # --- strict wants the exact newlines
    ("strict: no newline after <reasoning>", "<reasoning>a\n</reasoning>\n<answer>\n1\n</answer>", (0.5, 0.5, 0.0, 3.0)),
    ("strict: no newline before </reasoning>", "<reasoning>\na</reasoning>\n<answer>\n1\n</answer>", (0.5, 0.5, 0.0, 3.0)),
    ("strict: no newline between blocks", "<reasoning>\na\n</reasoning><answer>\n1\n</answer>", (0.5, 0.5, 0.0, 3.0)),
    ("strict: blank line between blocks", "<reasoning>\na\n</reasoning>\n\n<answer>\n1\n</answer>", (0.5, 0.5, 0.0, 3.0)),
    ("strict: no newline before </answer>", "<reasoning>\na\n</reasoning>\n<answer>\n1</answer>", (0.5, 0.5, 0.0, 3.0)),
    ("strict: doubled newlines inside", "<reasoning>\n\na\n\n</reasoning>\n<answer>\n1\n</answer>", (0.5, 0.5, 0.0, 3.0)),
    ("strict: two newlines at the end", PERFECT + "\n\n", (0.5, 0.5, 0.0, 3.0)),
    ("strict: leading newline", "\n" + PERFECT, (0.5, 0.5, 0.0, 3.0)),
    # --- missing pieces
    ("no tags", "the answer is 4", (0.0, 0.0, 0.0, 0.0)),
    ("empty string", "", (0.0, 0.0, 0.0, 0.0)),
    ("reasoning only", "<reasoning>\na\n</reasoning>", (0.25, 0.0, 0.0, 0.0)),
    ("answer only", "<answer>\n4\n</answer>", (0.25, 0.0, 0.0, 0.0)),
    ("unclosed answer", "<reasoning>a</reasoning><answer>4", (0.25, 0.0, 0.0, 0.0)),
    ("unclosed reasoning, answer", "<reasoning>a <answer>4</answer>", (0.25, 0.0, 0.0, 0.0)),
]


def _as_chat(text):
    return [{"role": "assistant", "content": text}]


@pytest.mark.parametrize("name, reply, expected", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("form", ["str", "chat"])
def test_format_table(name, reply, expected, form):
    completion = reply if form == "str" else _as_chat(reply)
    got = tuple(f([completion])[0] for f in FUNCS.values())
    assert got == pytest.approx(expected), f"{name}: (xml, soft, strict, exact) = {got}"
    for key, value in zip(FUNCS, got):
        assert value <= MAX[key]  # nothing beats the perfect reply


def test_only_the_perfect_reply_gets_every_maximum():
    for name, reply, expected in CASES:
        full = all(v == pytest.approx(MAX[k]) for k, v in zip(FUNCS, expected))
        assert full == (name.startswith("perfect")), name


def test_batches_keep_order_and_length():
    batch = [PERFECT, "junk", _as_chat(PERFECT), "<reasoning></reasoning><answer></answer>"]
    assert exact_format(batch) == [3.0, 0.0, 3.0, 0.0]
    assert xml(batch, prompts=[None] * 4, answer=["4"] * 4) == [0.5, 0.0, 0.5, 0.0]
    assert soft_format([]) == []


@pytest.mark.parametrize(
    "completion, expected_exact",
    [
        ([{"role": "assistant", "content": "<reasoning>a</reasoning>"}, {"role": "assistant", "content": "<answer>1</answer>"}], 3.0),
        ([{"role": "user", "content": PERFECT}, {"role": "assistant", "content": "no format"}], 0.0),  # only the assistant counts
        ([{"role": "assistant", "content": [{"type": "text", "text": PERFECT}]}], 3.0),  # content parts
        ([{"content": PERFECT}], 3.0),  # role omitted: the assistant's
        ({"role": "assistant", "content": PERFECT}, 3.0),  # a single message
        ([{"role": "assistant", "content": None}], 0.0),
        (None, 0.0),
        ([], 0.0),
    ],
)
def test_chat_message_shapes(completion, expected_exact):
    assert exact_format([completion]) == [expected_exact]


def test_registered_with_descriptions(plugin_state):
    import grpo_core

    for name in ("xml", "soft_format", "strict_format", "exact_format"):
        spec = grpo_core.get_reward(name)
        assert spec.description and spec.default_weight == 1.0 and not spec.cpu_bound


def test_linear_time_on_adversarial_input():
    """Thousands of tags must not make the scan quadratic (each call well under a second)."""
    import time

    nasty = "<reasoning>" * 20_000 + "</answer>" * 20_000 + "<answer>x" * 20_000
    t0 = time.perf_counter()
    for f in FUNCS.values():
        assert f([nasty]) == [0.0]
    assert time.perf_counter() - t0 < 5
