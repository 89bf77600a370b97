"""The built-in file adapters: your own JSON Lines, Parquet or datasets folder, with column mapping."""

from __future__ import annotations

import json

import pytest

from grpo_core import get_dataset
from grpo_core.errors import ConfigError
from grpo_core.kit.datasets import parse_dataset_spec


@pytest.fixture
def problems(tmp_path):
    path = tmp_path / "mine.jsonl"
    path.write_text("\n".join(json.dumps({"q": f"{i} + 1?", "gold": str(i + 1), "key": f"p{i}"}) for i in range(5)))
    return path


def test_jsonl_spec_names_the_file_inline_with_column_mapping(grpo_register, problems):
    name, split = parse_dataset_spec(f"jsonl:{problems}")
    ds = get_dataset(name).load(split, question="q", answer="gold", id="key", limit=3, verbose=False)
    assert ds["id"] == ["p0", "p1", "p2"] and ds["answer"] == ["1", "2", "3"]
    assert ds[0]["prompt"][-1]["content"] == "0 + 1?" and ds[0]["verifier"] == "arithmetic"


def test_the_path_may_come_as_an_option_and_ids_may_be_row_numbers(grpo_register, problems):
    ds = get_dataset("jsonl").load(path=str(problems), question="q", answer="gold", id="row", verbose=False)
    assert ds["id"] == ["0", "1", "2", "3", "4"]


def test_an_unmapped_column_is_named_with_the_option_that_maps_it(grpo_register, problems):
    with pytest.raises(ConfigError, match=r"row 0 has no 'question', 'answer', 'id' column \(it has gold, key, q\).*"
                                          r"--dataset-option question=YOUR_COLUMN"):
        get_dataset("jsonl").load(str(problems), verbose=False)


def test_parquet_and_a_datasets_folder(grpo_register, problems, tmp_path):
    from datasets import Dataset

    rows = [{"question": "2 + 2?", "answer": "4", "id": "a"}, {"question": "3 + 3?", "answer": "6", "id": "b"}]
    Dataset.from_list(rows).to_parquet(str(tmp_path / "p.parquet"))
    Dataset.from_list(rows).save_to_disk(str(tmp_path / "folder"))
    assert get_dataset("parquet").load(str(tmp_path / "p.parquet"), verbose=False)["id"] == ["a", "b"]
    assert get_dataset("hf").load(str(tmp_path / "folder"), verbose=False)["answer"] == ["4", "6"]


def test_the_verifier_is_an_option(grpo_register, problems):
    ds = get_dataset("jsonl").load(str(problems), question="q", answer="gold", id="key", verifier="arithmetic", verbose=False)
    assert set(ds["verifier"]) == {"arithmetic"}
    with pytest.raises(Exception, match="nope"):
        get_dataset("jsonl").load(str(problems), question="q", answer="gold", id="key", verifier="nope", verbose=False)


def test_a_file_given_as_a_dataset_name_says_how_to_load_it(grpo_register, problems):
    with pytest.raises(ConfigError, match=r"'my.jsonl' is not a dataset name but looks like a file; load a file with --dataset jsonl:my.jsonl"):
        get_dataset("my.jsonl")
    with pytest.raises(ConfigError, match="no such file or folder"):
        get_dataset("jsonl").load("missing.jsonl")


def test_a_run_on_a_jsonl_file_passes_preflight_and_skips_the_evaluation_with_a_note(grpo_register, tmp_path):
    from grpo_core.config.settings import build_config
    from grpo_core.train import runner

    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(json.dumps({"question": f"What is {i} + 2?", "answer": str(i + 2), "id": f"r{i}"}) for i in range(8)))
    cfg = build_config(flags={"dataset": f"jsonl:{path}", "plugins": "xml,soft_format", "num_generations": 4,
                              "per_device_train_batch_size": 8, "max_completion_length": 12, "output_dir": str(tmp_path / "run")})
    lines: list[str] = []
    info = runner.run(cfg, dry_run=True, echo=lines.append)
    assert info["dataset"]["rows"] == 8 and info["dataset"]["adapter"] == "jsonl"
    assert any(ln.startswith("evaluation: skipped: dataset 'jsonl' has no test split") for ln in lines)
