"""The bundled arithmetic task: generator, splits, verifier and adapter (no training)."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import pytest

from grpo_core.default_plugins import arithmetic as ar
from conftest import run_cli

from grpo_core.kit import VerdictStatus


def test_generator_is_deterministic():
    a = [ar.make_problem(random.Random(7)) for _ in range(3)]
    b = [ar.make_problem(random.Random(7)) for _ in range(3)]
    assert a == b
    assert ar._generate(5, 200) == ar._generate(5, 200)


def test_splits_are_fixed_across_processes():
    code = (
        "from grpo_core.default_plugins.arithmetic import problems;"
        "import hashlib,json;"
        "print(hashlib.sha256(json.dumps([problems('train')[:500], problems('test')]).encode()).hexdigest())"
    )
    runs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout for _ in range(2)}
    assert len(runs) == 1
    import hashlib
    import json

    here = hashlib.sha256(json.dumps([ar.problems("train")[:500], ar.problems("test")]).encode()).hexdigest()
    assert runs == {here + "\n"}


def test_split_sizes_and_disjoint():
    train, test = ar.problems("train"), ar.problems("test")
    assert len(train) == ar.TRAIN_SIZE and len(test) == ar.TEST_SIZE
    tq, sq = {p["question"] for p in train}, {p["question"] for p in test}
    assert len(tq) == len(train) and len(sq) == len(test)  # no duplicates inside a split
    assert not tq & sq
    assert len({p["id"] for p in train} | {p["id"] for p in test}) == len(train) + len(test)
    with pytest.raises(ValueError):
        ar.problems("validation")


def test_every_kind_present_and_answers_consistent():
    kinds = {p["kind"] for p in ar.problems("test")}
    assert kinds == {"add", "sub", "add_sub", "sub_add", "mul", "mul_add"}
    for p in ar.problems("train")[:2000]:
        lines = p["solution"].split("<reasoning>\n")[1].split("\n</reasoning>")[0].split("\n")
        for line in lines:  # each reasoning line is a correct equation
            left, right = line.split(" = ")
            a, op, b = left.split(" ")
            assert {"+": int(a) + int(b), "-": int(a) - int(b), "*": int(a) * int(b)}[op] == int(right)
        assert lines[-1].endswith(" = " + p["answer"])
        assert int(p["answer"]) >= 0


VERIFIER_TABLE = [
    ("42", "42", VerdictStatus.MATCHED),
    ("42", " 42 ", VerdictStatus.MATCHED),
    ("1234", "1,234", VerdictStatus.MATCHED),
    ("12", "$12", VerdictStatus.MATCHED),
    ("7", "7.0", VerdictStatus.MATCHED),
    ("7", "7.", VerdictStatus.MATCHED),
    ("7", "+7", VerdictStatus.MATCHED),
    ("-3", "-3", VerdictStatus.MATCHED),
    ("42", "43", VerdictStatus.DIFFERENT),
    ("42", "-42", VerdictStatus.DIFFERENT),
    ("7", "7.5", VerdictStatus.PRED_UNPARSEABLE),
    ("42", "forty-two", VerdictStatus.PRED_UNPARSEABLE),
    ("42", "4 2 apples", VerdictStatus.PRED_UNPARSEABLE),
    ("42", "9" * 50, VerdictStatus.PRED_UNPARSEABLE),
    ("42", "", VerdictStatus.NO_ANSWER),
    ("42", None, VerdictStatus.NO_ANSWER),
    ("abc", "42", VerdictStatus.GOLD_UNPARSEABLE),
    ("", "42", VerdictStatus.GOLD_UNPARSEABLE),
]


@pytest.mark.parametrize("gold,pred,status", VERIFIER_TABLE)
def test_verifier_table(gold, pred, status):
    v = ar.ArithmeticVerifier()
    verdict = v.verify(gold=gold, pred=pred)
    assert verdict.status is status, verdict
    assert verdict.equal == (status is VerdictStatus.MATCHED)


def test_quick_compare_decides_everything():
    v = ar.ArithmeticVerifier()
    for gold, pred, _ in VERIFIER_TABLE:
        if gold and pred:
            assert v.quick_compare(str(gold).strip(), str(pred).strip()) is not None


def test_verifier_check_on_replies():
    v = ar.ArithmeticVerifier()
    p = ar.problems("test")[0]
    assert v.check(gold=p["answer"], response=p["solution"]).equal
    assert v.check(gold=p["answer"], response=[{"role": "assistant", "content": p["solution"]}]).equal
    wrong = p["solution"].replace(f"<answer>\n{p['answer']}\n", "<answer>\n100000\n")
    assert v.check(gold=p["answer"], response=wrong).status is VerdictStatus.DIFFERENT
    bare = "no tags here, " + p["answer"]
    assert v.check(gold=p["answer"], response=bare, mode="strict").status is VerdictStatus.NO_ANSWER
    assert v.check(gold=p["answer"], response=bare).extracted_by == "last_number"  # flexible: the policy of grpo_core.kit.answers


def test_every_gold_verifies_against_itself_and_its_solution():
    v = ar.ArithmeticVerifier()
    for split in ("train", "test"):
        rows = ar.problems(split)
        assert all(v.parse_gold(r["answer"]) for r in rows[:3000])
        verdicts = v.check_batch([r["answer"] for r in rows], [r["solution"] for r in rows])
        assert all(vd.equal for vd in verdicts), split


def test_registered_through_the_hooks(plugin_state):
    regs = plugin_state("")
    assert isinstance(regs.verifiers.get("arithmetic").obj, ar.ArithmeticVerifier)
    ds = regs.datasets.get("arithmetic").obj
    assert isinstance(ds, ar.ArithmeticDataset) and ds.verifier == "arithmetic"
    assert regs.verifiers.get("arithmetic").provenance.distribution == "grpo-core"


def test_adapter_columns(plugin_state):
    plugin_state("")
    ds = ar.ArithmeticDataset().load("test", limit=20, verbose=False)
    assert len(ds) == 20
    for col in ("prompt", "answer", "id", "source", "verifier", "solution"):
        assert col in ds.column_names
    row = ds[0]
    gold = ar.problems("test")[0]
    assert row["prompt"][-1] == {"role": "user", "content": gold["question"]}
    assert row["prompt"][0]["role"] == "system"
    assert row["answer"] == gold["answer"] and row["id"] == "arithmetic/test/0"
    assert row["source"] == "arithmetic/test" and row["verifier"] == "arithmetic"
    assert row["solution"].startswith("<reasoning>\n") and row["solution"].endswith("\n</answer>")
    full = ar.ArithmeticDataset().load("train", limit=50, verbose=False)
    assert full[0]["id"] == "arithmetic/train/0"


def test_solution_gets_full_format_rewards():
    from grpo_core.default_plugins.format_rewards import soft_format, strict_format, xml

    sols = [p["solution"] for p in ar.problems("test")[:50]]
    assert xml(sols) == [0.5] * 50
    assert soft_format(sols) == [0.5] * 50
    assert strict_format(sols) == [0.5] * 50


def test_module_imports_nothing_heavy():
    code = (
        "import sys, grpo_core.default_plugins.arithmetic as a; a.problems('test');"
        "heavy = [m for m in ('torch', 'transformers', 'datasets', 'trl', 'numpy') if m in sys.modules];"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# --- the task's own correctness reward: grpo-core alone runs the default ----------------------------------------


def test_arithmetic_correctness_pays_two_for_the_right_integer_and_abstains_on_a_bad_gold():
    reply = "<reasoning>\n3 + 4\n</reasoning>\n<answer>\n{}\n</answer>"
    got = ar.arithmetic_correctness([reply.format("7"), reply.format("8"), "no tags at all", reply.format("7")], answer=["7", "7", "7", "seven"])
    assert got == [2.0, 0.0, 0.0, None]
    chat = [[{"role": "assistant", "content": reply.format("1,234")}]]
    assert ar.arithmetic_correctness(chat, answer=["1234"]) == [2.0]


def test_the_built_ins_register_the_tasks_reward_with_the_builtin_provenance(plugin_state):
    regs = plugin_state("")  # grpo-core alone: no plugin distribution is loaded
    spec = regs.rewards.get("arithmetic_correctness")
    assert (spec.provenance.distribution, spec.requires, spec.cpu_bound) == ("grpo-core", ("answer",), False)
    assert "correctness" not in regs.rewards.names()  # the math plugin's reward is not needed, nor shadowed


def test_the_default_preset_uses_the_tasks_own_reward():
    from grpo_core.config.presets import DEFAULT_PRESET, get_preset

    assert DEFAULT_PRESET == "tiny-cpu"
    assert get_preset(DEFAULT_PRESET)["plugins"] == "xml,soft_format,strict_format,arithmetic_correctness"


def test_the_default_run_needs_no_plugin(tmp_path):
    """`grpo-core run` with no arguments, with no plugin distribution loaded: pre-flight passes on the built-ins."""
    res = run_cli("run", "--dry-run", "--output-dir", str(tmp_path / "run"), env={"GRPO_CORE_LOAD_PLUGINS": ""}, timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    info = json.loads((tmp_path / "run" / "preflight.json").read_text())  # a dry run's record; run.json is a run's
    assert info["status"] == "dry-run"
    assert [(r["name"], r["distribution"]) for r in info["rewards"]] == [
        ("xml", "grpo-core"), ("soft_format", "grpo-core"), ("strict_format", "grpo-core"), ("arithmetic_correctness", "grpo-core"),
    ]

