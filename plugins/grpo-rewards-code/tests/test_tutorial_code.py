"""The code of docs/plugins/tutorial.md, "A reward that runs code" (kept in sync by
scripts/sync_doc_blocks.py): a reward that runs the reply's program and compares what it prints."""

from __future__ import annotations

# -- start stdout_reward --
from typing import Any

from grpo_core.kit import completion_text
from grpo_rewards_code.codeblocks import last_python_block
from grpo_rewards_code.sandbox import Limits, execute_many


def prints_expected(completions: list[Any], expected_output: list[str], timeout: float = 3.0,
                    **kwargs: Any) -> list[float | None]:
    """1.0 when the last Python block of the reply prints the row's expected output, else 0.0."""
    codes = [last_python_block(completion_text(c)) for c in completions]
    todo = [i for i, code in enumerate(codes) if code]
    runs = execute_many([(codes[i], []) for i in todo], Limits(timeout=timeout, cpu=int(timeout)))
    scores: list[float | None] = [0.0] * len(completions)
    for i, run in zip(todo, runs):
        if run is None:
            scores[i] = None  # the batch ran out of time before this one: no opinion
        elif run.program_ok and run.output.strip() == str(expected_output[i]).strip():
            scores[i] = 1.0
    return scores
# -- end stdout_reward --


def test_prints_expected():
    fence = "`" * 3
    replies = [f"{fence}python\nprint(6 * 7)\n{fence}", f"{fence}python\nprint(41)\n{fence}", "no code"]
    assert prints_expected(replies, expected_output=["42", "42", "42"]) == [1.0, 0.0, 0.0]
    out = prints_expected(["```python\nprint(6 * 7)\n```", "```python\nwhile True: pass\n```", "```python\nprint(41)\n```"],
                          expected_output=["42", "42", "42"], timeout=1.0)
    assert out == [1.0, 0.0, 0.0]


def test_register_block():
    from grpo_core.plugins.registry import Provenance, make_reward_spec

    # -- start stdout_register --
    from grpo_core import hookimpl

    @hookimpl
    def register_rewards(register):
        # not cpu_bound: the sandbox runs each program in its own process, under its own limits
        register(prints_expected, requires=("expected_output",), timeout=90.0, options={"timeout": 3.0})
    # -- end stdout_register --

    got = []
    register_rewards(lambda func, **meta: got.append(make_reward_spec(func, None, Provenance("t", None, None), meta)))
    assert got[0].name == "prints_expected" and got[0].requires == ("expected_output",)
