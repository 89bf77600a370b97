"""The conformance kit: each check passes good plugins and names the fix for bad ones."""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
import time

import pytest

from grpo_core import Verdict, Verifier, hookimpl
from grpo_core.kit.datasets import DatasetAdapter
from grpo_core.kit.extraction import completion_text, extract_answer
from grpo_core.plugins.registry import Provenance, make_reward_spec
from grpo_core.testing import ConformanceError, check_dataset, check_reward, check_verifier

REWARD_CHECKS = ["signature", "values", "determinism", "chat", "edge cases", "requires", "picklable", "timeout"]


def spec(func, **meta):
    return make_reward_spec(func, None, Provenance("kit-test", None, None), meta)


def failure(target, **kw) -> str:
    checker = {"verifier": check_verifier, "dataset": check_dataset}.get(kw.pop("kind", "reward"), check_reward)
    with pytest.raises(ConformanceError) as exc:
        checker(target, **kw)
    return str(exc.value)


# --- rewards that keep the contract (module level, so they pickle) -----------------


def matches_gold(completions, answer=None, **kwargs):
    """1.0 when the answer block equals the gold answer."""
    return [1.0 if extract_answer(completion_text(c)) == a else 0.0 for c, a in zip(completions, answer)]


async def async_length(completions, **kwargs):
    await asyncio.sleep(0)
    return [min(1.0, len(completion_text(c)) / 1000) for c in completions]


def test_builtin_rewards_pass_every_check():
    for name in ("xml", "soft_format", "strict_format", "exact_format"):
        assert check_reward(name).passed == REWARD_CHECKS


def test_reward_with_columns_async_and_cpu_bound_pass():
    assert check_reward(spec(matches_gold, requires=("answer",)), answer="42").passed == REWARD_CHECKS
    assert check_reward(spec(async_length, timeout=5)).passed == REWARD_CHECKS
    assert check_reward(spec(matches_gold, requires=("answer",), cpu_bound=True, timeout=20), answer="7").passed == REWARD_CHECKS


def test_registered_name_and_grpo_register_fixture(grpo_register):
    class Plugin:
        @staticmethod
        @hookimpl
        def register_rewards(register):
            register(matches_gold, requires=("answer",))

    grpo_register(Plugin, name="kit-fixture")
    assert check_reward("matches_gold", answer="3").name == "matches_gold"
    # the function itself is looked up in the registry, so its metadata (requires) is used
    msg = failure(matches_gold)
    assert "requires=('answer',)" in msg and "check_reward('matches_gold', answer=...)" in msg


def test_grpo_register_fixture_unregisters():
    from grpo_core.plugins import pm

    assert pm.get_plugin("kit-fixture") is None


# --- rewards that break it ------------------------------------------------------------


def no_kwargs(completions):
    return [0.0] * len(completions)


def short_list(completions, **kwargs):
    return [0.0]


def strings(completions, **kwargs):
    return ["1"] * len(completions)


def nan_values(completions, **kwargs):
    return [float("nan")] * len(completions)


def text_only(completions, **kwargs):
    return [1.0 if c.startswith("<reasoning>") else 0.0 for c in completions]


def fails_on_empty(completions, **kwargs):
    return [1.0 / len(completion_text(c)) for c in completions]


def noisy(completions, **kwargs):
    return [random.random() for _ in completions]


def reads_undeclared_column(completions, **kwargs):
    return [float(a == "42") for a in kwargs["answer"]]


def needs_answer_param(completions, answer, **kwargs):
    return [0.0] * len(completions)


def slow_on_huge(completions, **kwargs):
    if any(len(completion_text(c)) > 100_000 for c in completions):
        time.sleep(1.5)
    return [0.0] * len(completions)


@pytest.mark.parametrize(
    "target, columns, check, fix",
    [
        (no_kwargs, {}, "signature", "end the parameter list with **kwargs"),
        (needs_answer_param, {"answer": "1"}, "signature", "register it with requires=('answer',)"),
        (short_list, {}, "values", "returned 1 values for 4 completions"),
        (strings, {}, "values", "value 0 is str '1', not a float"),
        (nan_values, {}, "values", "return None for 'no opinion', never NaN"),
        (text_only, {}, "chat", "grpo_core.kit.completion_text(completion)"),
        (fails_on_empty, {}, "edge cases", "ZeroDivisionError: float division by zero on the 'empty' completion"),
        (noisy, {}, "determinism", "derive any randomness from the inputs"),
        (reads_undeclared_column, {"answer": "42"}, "requires", "add every column it reads to requires"),
    ],
)
def test_each_broken_reward_gets_its_fix(target, columns, check, fix):
    msg = failure(target, **columns)
    assert f"[{check}]" in msg and fix in msg, msg
    assert "fix:" in msg


def test_unpicklable_reward():
    def closure(completions, **kwargs):
        return [0.0] * len(completions)

    msg = failure(closure)
    assert "[picklable]" in msg and "define it at module level" in msg, msg


def test_reward_past_its_timeout():
    msg = failure(spec(slow_on_huge, timeout=0.5))
    assert "[timeout]" in msg and "its declared timeout of 0.5s on the edge cases" in msg, msg
    assert "cpu_bound=True" in msg


def test_the_message_lists_every_problem_and_what_passed():
    msg = failure(spec(noisy, timeout=5))
    assert msg.startswith("reward 'noisy' breaks the grpo-core contract (1 problem(s)):")
    assert "passed: signature, values, chat, edge cases, requires, picklable, timeout" in msg


# --- verifiers ------------------------------------------------------------------------


def test_builtin_verifier_passes():
    rep = check_verifier("arithmetic", golds=["42", "-3", "1,000"])
    assert rep.passed == ["keyword-only API", "gold verifies against itself", "never raises", "never hangs", "verdict"]


class PositionalVerifier:
    name = "positional"

    def extract(self, text):
        return extract_answer(text)

    def verify(self, gold, pred):
        return Verdict.matched()

    def check(self, *, gold, response):
        return Verdict.matched()


class RaisingVerifier(Verifier):
    name = "raising"

    def quick_compare(self, gold, pred):
        return Verdict.matched() if float(gold) == float(pred) else Verdict.different(f"{pred} != {gold}")

    def verify(self, *, gold, pred):  # bypasses the base class's safety net
        return self.quick_compare(str(gold), str(pred))


class SilentVerifier(Verifier):
    name = "silent"

    def quick_compare(self, gold, pred):
        return Verdict(gold == pred, Verdict.matched().status if gold == pred else Verdict.different().status, "")


class HangingVerifier(Verifier):
    name = "hanging"
    timeout = 0.1

    def verify(self, *, gold, pred):
        if pred and "^" in str(pred):
            time.sleep(3)
        return Verdict.matched() if gold == pred else Verdict.different("differ")


class NeverEqual(Verifier):
    name = "never_equal"

    def quick_compare(self, gold, pred):
        return Verdict.different("never")


@pytest.mark.parametrize(
    "verifier, check, fix",
    [
        (PositionalVerifier(), "keyword-only API", "def verify(self, *, gold, pred)"),
        (RaisingVerifier(), "never raises", "return Verdict.error(exc)"),
        (SilentVerifier(), "verdict", "give every Verdict a short reason"),
        (NeverEqual(), "gold verifies against itself", "either the gold answer is malformed"),
    ],
)
def test_each_broken_verifier_gets_its_fix(verifier, check, fix):
    msg = failure(verifier, kind="verifier", golds=["42"])
    assert f"[{check}]" in msg and fix in msg, msg


def test_hanging_verifier(monkeypatch):
    import grpo_core.testing.conformance as kit

    monkeypatch.setattr(kit, "VERIFIER_GRACE", 0.4)
    msg = failure(HangingVerifier(), kind="verifier", golds=["42"])
    assert "[never hangs]" in msg and "did not return within 0.5s" in msg and "killable worker" in msg, msg


# --- datasets -------------------------------------------------------------------------


class GoodDataset(DatasetAdapter):
    name = "kit_good"
    verifier = "arithmetic"

    def rows(self, split, **options):
        for i in range(5):
            yield {"question": f"What is {i} + {i}?", "answer": str(2 * i), "id": f"kit/{split}/{i}"}


class RandomIds(GoodDataset):
    def rows(self, split, **options):
        for r in super().rows(split):
            yield {**r, "id": f"{r['id']}-{random.random()}"}


class WordAnswers(GoodDataset):
    def rows(self, split, **options):
        for r in super().rows(split):
            yield {**r, "answer": "seven" if r["id"].endswith("3") else r["answer"]}


class UnknownVerifier(GoodDataset):
    verifier = "no_such_verifier"


class NoSource:
    name = "nosource"
    verifier = "arithmetic"

    def load(self, split=None, limit=None, **kw):
        from datasets import Dataset

        return Dataset.from_list([{"prompt": [{"role": "user", "content": "q"}], "answer": "1", "id": "a"}])


def test_builtin_and_good_datasets_pass():
    assert check_dataset("arithmetic", split="test", limit=10).passed == ["schema", "gold answers parse", "stable ids"]
    assert check_dataset(GoodDataset(), split="train").passed == ["schema", "gold answers parse", "stable ids"]


@pytest.mark.parametrize(
    "adapter, check, fix",
    [
        (RandomIds(), "stable ids", "derive ids from the data"),
        (WordAnswers(), "gold answers parse", "1 of 5 gold answers do not verify against themselves with 'arithmetic': id='kit/train/3'"),
        (UnknownVerifier(), "gold answers parse", "name a registered verifier"),
        (NoSource(), "schema", "missing ['source']"),
    ],
)
def test_each_broken_dataset_gets_its_fix(adapter, check, fix):
    msg = failure(adapter, kind="dataset", split="train")
    assert f"[{check}]" in msg and fix in msg, msg


def test_unknown_split_names_the_splits():
    msg = failure("arithmetic", kind="dataset", split="validation")
    assert "it has no split 'validation'" in msg and "split='train' (it has train, test)" in msg, msg


# --- the pytest plugin ----------------------------------------------------------------


def test_kit_is_a_light_pytest_plugin():
    from importlib.metadata import entry_points

    assert [ep.value for ep in entry_points(group="pytest11") if ep.name == "grpo_core"] == ["grpo_core.testing.pytest_plugin"]
    code = "import grpo_core.testing.pytest_plugin, json, sys; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    heavy = {"torch", "transformers", "trl", "datasets", "numpy"} & set(json.loads(out))
    assert not heavy, f"importing the pytest plugin pulled in {heavy}"
