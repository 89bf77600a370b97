"""Rows missing a required column, and prompts that do not fit the model's positions, are refused plainly."""

from __future__ import annotations

import pytest

from grpo_core.errors import ConfigError, PreflightError
from grpo_core.kit.datasets import DatasetAdapter
from grpo_core.train.preflight import PreflightReport, check_model_positions


class NoAnswers(DatasetAdapter):
    name = "myproblems"
    verifier = ""

    def rows(self, split, **options):
        yield {"question": "1+1?", "answer": "2", "id": "a"}
        yield {"question": "2+2?", "solution": "4", "id": "b"}


class NoIds(NoAnswers):
    def rows(self, split, **options):
        yield {"question": "1+1?", "answer": "2"}


@pytest.mark.parametrize("adapter, column", [(NoAnswers(), "'answer'"), (NoIds(), "'id'")])
def test_a_row_missing_a_column_names_the_column_the_dataset_and_the_adapter(adapter, column):
    with pytest.raises(ConfigError, match=rf"dataset myproblems:train: row \d has no {column} column \(it has .*\)\. "
                                          rf"The dataset adapter 'myproblems' \(.*test_dataset_checks\.{type(adapter).__name__}\)"):
        adapter.load("train", verbose=False)


def test_prompt_plus_completion_past_the_models_positions_is_refused_with_the_fix():
    with pytest.raises(PreflightError, match=r"longest prompt \(669 tokens\) plus max_completion_length \(256\).*max_position_embeddings "
                                             r"\(256\)\. Use a model with more positions"):
        check_model_positions(256, 669, None, 256, PreflightReport())
    with pytest.raises(PreflightError, match=r"Use --max-completion-length 156 or less or --set max_prompt_length=56"):
        check_model_positions(256, 100, None, 200, PreflightReport())
    report = PreflightReport()
    check_model_positions(256, 669, 56, 200, report)  # the prompts are cut to 56 tokens: it fits
    assert report.facts["max_position_embeddings"] == 256
