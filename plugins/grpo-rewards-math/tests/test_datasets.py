from __future__ import annotations

import json

import pytest

import grpo_core
from grpo_core.errors import ConfigError, PreflightError
from grpo_rewards_math.datasets import DATA, gsm8k_gold, gsm8k_solution

COLUMNS = {"prompt", "answer", "id", "source", "verifier"}


@pytest.mark.parametrize(
    "name,split,rows,verifier",
    [("gsm8k", "test", 1319, "gsm8k"), ("gsm8k", "train", 7473, "gsm8k"), ("aime", "2024", 30, "aime"),
     ("aime", "2025", 30, "aime"), ("aime", "all", 60, "aime"), ("math500", "test", 500, "math")],
)
def test_bundled_splits_load_whole_and_every_gold_verifies(name, split, rows, verifier):
    # gold_policy="error" raises if any gold answer fails to verify against itself
    ds = grpo_core.get_dataset(name).load(split, gold_policy="error", verbose=False)
    assert len(ds) == rows
    assert COLUMNS <= set(ds.column_names)
    assert set(ds["verifier"]) == {verifier}
    assert len(set(ds["id"])) == rows
    p = ds[0]["prompt"]
    assert p[0]["role"] == "system" and "<answer>" in p[0]["content"] and p[1]["role"] == "user"


def test_gsm8k_answer_and_solution():
    ds = grpo_core.get_dataset("gsm8k").load("test", limit=5, verbose=False)
    assert ds[0]["answer"] == "18"
    sol = ds[0]["solution"]
    assert "<<" not in sol and ">>" not in sol and "####" not in sol
    assert sol.startswith("<reasoning>\n") and sol.endswith("<answer>\n18\n</answer>")
    # the reference reply earns full correctness
    from grpo_rewards_math.rewards import correctness

    assert correctness(ds["solution"], answer=ds["answer"]) == [2.0] * 5
    assert gsm8k_gold("a\n#### 1,234") == "1234"
    assert "<<" not in gsm8k_solution("2*3=<<2*3=6>>6\n#### 6")


def test_system_prompt_is_configurable():
    ds = grpo_core.get_dataset("math500").load("test", limit=2, system_prompt="Think.", verbose=False)
    assert ds[0]["prompt"][0] == {"role": "system", "content": "Think."}
    assert ds[0]["id"].startswith("test/") and "level" in ds.column_names


def test_aime_gold_leading_zero_and_range():
    ds = grpo_core.get_dataset("aime").load("all", verbose=False)
    assert dict(zip(ds["id"], ds["answer"]))["aime-2024-I-1"] == "204"
    assert all(0 <= int(a) <= 999 for a in ds["answer"])


def test_local_path_folder(tmp_path):
    rows = [{"question": "1+1?", "answer": "1+1=<<1+1=2>>2\n#### 2"}, {"question": "bad", "answer": "oops\n#### x"}]
    (tmp_path / "test.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    ad = grpo_core.get_dataset("gsm8k")
    ds = ad.load("test", path=str(tmp_path), verbose=False)  # the bad gold is dropped
    assert ds["answer"] == ["2"] and ds[0]["source"].endswith(":test")
    assert len(ad.load("test", path=str(tmp_path), gold_policy="report", verbose=False)) == 2
    with pytest.raises(PreflightError):
        ad.load("test", path=str(tmp_path), gold_policy="error", verbose=False)


def test_unknown_option_and_split():
    with pytest.raises(ConfigError):
        grpo_core.get_dataset("aime").load("2024", hubb=True)
    with pytest.raises(ConfigError):
        grpo_core.get_dataset("math500").load("train")


def test_licences_are_bundled():
    for d in ("gsm8k", "aime", "math500"):
        assert "MIT" in (DATA / d / "LICENSE").read_text() or "Permission is hereby granted" in (DATA / d / "LICENSE").read_text()
    assert (DATA / "README.md").exists()


@pytest.mark.parametrize("name,split", [("gsm8k", "test"), ("aime", "2024"), ("math500", "test")])
def test_unknown_option_error_names_it_and_lists_the_valid_ones(name, split, tmp_path):
    with pytest.raises(ConfigError) as e:
        grpo_core.get_dataset(name).load(split, path=str(tmp_path), hubb=True, verbose=False)
    msg = str(e.value)
    assert msg.startswith(f"{name}: unknown options ['hubb']")
    assert "path=" in msg and "hub=" in msg


def _write_jsonl(path, rows):
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")


def test_pick_source_path_wins_over_hub_and_bundled_is_the_default(tmp_path):
    from grpo_rewards_math.datasets import pick_source

    _write_jsonl(tmp_path / "part.jsonl", [{"q": "a"}, {"q": "b"}])
    bundled = tmp_path / "bundled.jsonl"
    _write_jsonl(bundled, [{"q": "bundled"}])
    spec = dict(stem="part", bundled=bundled, bundled_source="x/part", hub_repo="no/such-repo", hub_split="train",
                hub_source="no/such-repo")
    # path= is read even with hub=True, so no network is touched
    raw, source = pick_source("x", {"path": str(tmp_path), "hub": True}, **spec)
    assert list(raw) == [{"q": "a"}, {"q": "b"}] and source == f"{tmp_path}:part"
    raw, source = pick_source("x", {"path": None, "hub": False}, **spec)
    assert list(raw) == [{"q": "bundled"}] and source == "x/part"
    with pytest.raises(ConfigError, match=r"x: unknown options \['extra', 'zzz'\].*path=.*hub="):
        pick_source("x", {"zzz": 1, "extra": 2, "path": str(tmp_path)}, **spec)


def test_aime_local_folder_reads_one_file_per_year(tmp_path):
    _write_jsonl(tmp_path / "aime_2024.jsonl", [{"problem": "p1", "answer": 7, "problem_idx": 3}, {"problem": "p2", "answer": "012"}])
    ds = grpo_core.get_dataset("aime").load("2024", path=str(tmp_path), verbose=False)
    assert ds["id"] == ["aime-2024-3", "aime-2024-2"] and ds["answer"] == ["7", "012"]
    assert set(ds["source"]) == {f"{tmp_path}:aime_2024"}
    with pytest.raises(ConfigError, match="aime_2025"):  # "all" wants both years' files
        grpo_core.get_dataset("aime").load("all", path=str(tmp_path), verbose=False)


def test_math500_local_file_path(tmp_path):
    f = tmp_path / "mine.jsonl"
    _write_jsonl(f, [{"problem": "What is 1/2+1/2?", "answer": "1", "subject": "Algebra", "level": 2}])
    ds = grpo_core.get_dataset("math500").load("test", path=str(f), verbose=False)
    assert ds["answer"] == ["1"] and ds["id"] == ["math500-0"] and ds["level"] == [2]
    assert ds[0]["source"] == f"{f}:test" and ds[0]["prompt"][1]["content"].startswith("What is 1/2+1/2?")
    with pytest.raises(ConfigError, match="does not exist"):
        grpo_core.get_dataset("math500").load("test", path=str(tmp_path / "missing.jsonl"), verbose=False)
