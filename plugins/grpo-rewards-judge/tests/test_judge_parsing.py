"""Reading scores and preferences from judge replies, and the messages the judge gets (no server)."""

from __future__ import annotations

import pytest

from grpo_core import ConfigError
from grpo_rewards_judge.parsing import parse_score, parse_winner
from grpo_rewards_judge.rubrics import RUBRICS, pairwise_judgment, prompt_text, rubric_text, score_judgment


@pytest.mark.parametrize(
    "reply, expected",
    [
        ('{"score": 7}', (7.0, None)),  # what the constrained judge writes
        ('```json\n{"score": "4"}\n```', (4.0, None)),  # fenced, number as a string
        ('Reasoning... {"rating": 9, "why": "ok"}', (9.0, None)),  # another key, with prose around
        ("Score: 6", (6.0, None)),  # prose
        ("I would give it 8/10.", (8.0, None)),  # x/y
        ("  5. ", (5.0, None)),  # a bare number
        ('{"score": 12}', (None, "score 12 outside 1..10")),  # out of range
        ('{"score": "high"}', (None, "score is not a number: 'high'")),
        ('{"score": true}', (None, "score is not a number: 'True'")),  # bool is not a number
        ("The response is fine.", (None, "no score in the reply")),
        ("", (None, "empty reply")),
        (None, (None, "empty reply")),
        ('{"score": 3, "why": "the reply ran out of tok', (3.0, None)),  # a reply cut off by max_tokens
    ],
)
def test_parse_score(reply, expected):
    assert parse_score(reply, 1, 10) == expected


def test_parse_score_is_bounded_on_huge_replies():
    assert parse_score("{" * 200_000 + "Score: 3", 1, 10) == (None, "no score in the reply")  # past the cap


@pytest.mark.parametrize(
    "reply, expected",
    [
        ('{"winner": "A"}', ("A", None)),
        ('{"winner": "tie"}', ("tie", None)),
        ('{"winner": "b"}', ("B", None)),
        ("After comparing: [[B]]", ("B", None)),
        ("Winner: A", ("A", None)),
        ('{"winner": "both"}', (None, "winner is not A, B or tie: 'both'")),
        ("they are similar", (None, "no winner in the reply")),
    ],
)
def test_parse_winner(reply, expected):
    assert parse_winner(reply) == expected


def test_rubric_by_name_or_file(tmp_path):
    assert rubric_text("reasoning") == RUBRICS["reasoning"]
    f = tmp_path / "style.txt"
    f.write_text('Grade style only. Example reply: {"score": {max}}\n')
    assert rubric_text(str(f)).startswith("Grade style only")
    with pytest.raises(ConfigError, match="reasoning, correctness, helpfulness, pairwise"):
        rubric_text("resoning")
    (tmp_path / "empty.txt").write_text("  \n")
    with pytest.raises(ConfigError, match="is empty"):
        rubric_text(str(tmp_path / "empty.txt"))


def test_score_messages_hold_range_question_and_response():
    prompt = [{"role": "system", "content": "Answer in XML."}, {"role": "user", "content": "What is 2+2?"}]
    j = score_judgment("m", 'Braces {stay}: give {min}..{max}.', prompt, [{"role": "assistant", "content": "4"}], 1, 5)
    system, user = j.messages
    assert "Braces {stay}: give 1..5." in system["content"] and '{"score": N}' in system["content"]
    assert "from 1 to 5" in system["content"]
    assert user["content"] == "Question:\nWhat is 2+2?\n\nResponse:\n4"
    assert prompt_text("plain") == "plain"
    # the cache key changes with the model, the rubric, the range, the prompt and the completion
    keys = {j.key, score_judgment("m2", "r {min}", prompt, "4", 1, 5).key, score_judgment("m", "r {min}", prompt, "4", 1, 5).key,
            score_judgment("m", "r {min}", prompt, "4", 0, 5).key, score_judgment("m", "r {min}", "other", "4", 1, 5).key,
            score_judgment("m", "r {min}", prompt, "5", 1, 5).key}
    assert len(keys) == 6


def test_pairwise_order_is_derived_from_the_completion():
    seen = {pairwise_judgment("m", "r", "q", f"answer {i}", "ref").swapped for i in range(20)}
    assert seen == {True, False}  # both positions occur
    a, b = pairwise_judgment("m", "r", "q", "mine", "ref"), pairwise_judgment("m", "r", "q", "mine", "ref")
    assert a == b  # and the same completion is always asked the same way
    user = a.messages[1]["content"]
    assert ("Response A:\nref" in user) == a.swapped and ("Response A:\nmine" in user) != a.swapped
