"""The reward engine: isolation, concurrency, the contract, error policies, hard timeouts."""

from __future__ import annotations

import asyncio
import threading

import pytest

import helpers_rewards as h
from grpo_core.rewards.engine import RewardEngine, RewardError
from grpo_core.errors import GrpoCoreError
from grpo_core.plugins.registry import Provenance, make_reward_spec

PROV = Provenance("testplug", "grpo-test-plugin", "9.9")


def spec(func, name=None, **meta):
    return make_reward_spec(func, name, PROV, meta)


def engine(*specs_weights, on_error="none"):
    return RewardEngine([(s, w) for s, w in specs_weights], on_error=on_error)


def ones(completions, **kwargs):
    return [1.0] * len(completions)


def picky(completions, **kwargs):
    """Raises on the whole batch if any completion says 'bad' (so the engine must retry per sample)."""
    if any("bad" in c for c in completions):
        raise ValueError("cannot score 'bad'")
    return [2.0] * len(completions)


def test_weighted_totals_and_columns():
    seen = {}

    def uses_answer(completions, answer, prompts, **kwargs):
        seen.update(answer=answer, prompts=prompts, extra=kwargs.get("extra"))
        return [1.0 if c == a else 0.0 for c, a in zip(completions, answer)]

    e = engine((spec(uses_answer), 2.0), (spec(ones), 0.5))
    res = e.score(["4", "5"], prompts=["p1", "p2"], answer=["4", "4"], extra="x")
    assert res.values == {"uses_answer": [1.0, 0.0], "ones": [1.0, 1.0]}
    assert res.totals == [2.5, 0.5]
    assert seen == {"answer": ["4", "4"], "prompts": ["p1", "p2"], "extra": "x"}
    assert e.names == ["uses_answer", "ones"] and e.weights == {"uses_answer": 2.0, "ones": 0.5}


def test_a_raising_reward_loses_only_the_failing_samples():
    e = engine((spec(picky), 1.0), (spec(ones), 1.0))
    res = e.score(["good", "bad", "fine"])
    assert res.values["picky"] == [2.0, None, 2.0]
    assert res.values["ones"] == [1.0, 1.0, 1.0]
    assert res.totals == [3.0, 1.0, 3.0]  # None is skipped, like TRL's nansum
    st = res.stats["picky"]
    assert st.errors == 1 and st.nones == 1 and "cannot score 'bad'" in st.last_error
    m = e.pop_metrics()
    assert m["rewards/picky/errors"] == 1.0 and m["rewards/picky/none_frac"] == pytest.approx(1 / 3)
    assert m["rewards/ones/errors"] == 0.0
    assert e.pop_metrics() == {}  # popped


def test_async_rewards_run_concurrently():
    """Both coroutines must be in flight at the same time (no wall-clock assertions)."""
    state = {"running": 0, "peak": 0}
    both_started = asyncio.Event  # created lazily on the engine's loop

    events = {}

    def make(name):
        async def reward(completions, **kwargs):
            ev = events.setdefault("ev", both_started())
            state["running"] += 1
            state["peak"] = max(state["peak"], state["running"])
            if state["running"] == 2:
                ev.set()
            # wait for the other one; sequential execution would time out here
            await asyncio.wait_for(ev.wait(), timeout=10)
            state["running"] -= 1
            return [1.0] * len(completions)

        reward.__name__ = name
        return reward

    e = engine((spec(make("a1")), 1.0), (spec(make("a2")), 1.0))
    try:
        res = e.score(["x", "y"])
    finally:
        e.close()
    assert state["peak"] == 2
    assert res.values == {"a1": [1.0, 1.0], "a2": [1.0, 1.0]}
    assert res.stats["a1"].errors == 0


def test_async_reward_timeout_and_error():
    async def slow(completions, **kwargs):
        await asyncio.sleep(30)

    async def broken(completions, **kwargs):
        raise RuntimeError("async bug")

    e = engine((spec(slow, timeout=0.2), 1.0), (spec(broken), 1.0))
    try:
        res = e.score(["a", "b"])
    finally:
        e.close()
    assert res.values == {"slow": [None, None], "broken": [None, None]}
    assert res.stats["slow"].timeouts == 2 and "timed out" in res.stats["slow"].last_error
    assert res.stats["broken"].errors == 2 and "async bug" in res.stats["broken"].last_error


def wrong_length(completions, **kwargs):
    return [1.0]


def not_a_list(completions, **kwargs):
    return 1.0


@pytest.mark.parametrize("func, phrase", [(wrong_length, "returned 1 values for 3 completions"), (not_a_list, "returned float")])
def test_contract_violations_name_the_plugin(func, phrase, capsys):
    e = engine((spec(func), 1.0))
    res = e.score(["a", "b", "c"])
    assert res.values[func.__name__] == [None, None, None]
    assert res.stats[func.__name__].errors == 3
    err = capsys.readouterr().err
    assert phrase in err and "grpo-test-plugin 9.9" in err and repr(func.__name__) in err
    with pytest.raises(RewardError, match=r"grpo-test-plugin 9\.9"):
        engine((spec(func), 1.0), on_error="raise").score(["a", "b", "c"])


def test_non_numeric_and_non_finite_values_become_errors():
    def odd(completions, **kwargs):
        return [float("nan"), "x", float("inf"), True, None]

    res = engine((spec(odd), 1.0)).score(list("abcde"))
    assert res.values["odd"] == [None, None, None, None, None]  # a bool is not a score (TRL would read True as 1.0)
    assert res.stats["odd"].errors == 4 and res.stats["odd"].bad_values == 4 and res.stats["odd"].nones == 5


def test_error_policies():
    completions = ["good", "bad"]
    assert engine((spec(picky), 1.0), on_error="none").score(completions).values["picky"] == [2.0, None]
    assert engine((spec(picky), 1.0), on_error="zero").score(completions).values["picky"] == [2.0, 0.0]
    with pytest.raises(RewardError, match=r"'picky' from grpo-test-plugin 9\.9 failed on 1 of 2 samples"):
        engine((spec(picky), 1.0), on_error="raise").score(completions)
    # a clean batch does not raise under "raise"
    assert engine((spec(picky), 1.0), on_error="raise").score(["good"]).values["picky"] == [2.0]
    with pytest.raises(GrpoCoreError, match="on_error must be one of none, zero, raise"):
        RewardEngine([(spec(ones), 1.0)], on_error="ignore")
    with pytest.raises(GrpoCoreError, match="at least one reward"):
        RewardEngine([])


def test_thread_reward_limit_is_bounded():
    """A plain reward runs on the engine's reward thread under the default limit; the batch moves on."""
    release = threading.Event()

    def stuck(completions, **kwargs):
        release.wait(30)
        return [1.0] * len(completions)

    try:
        res = RewardEngine([(spec(stuck), 1.0), (spec(ones), 1.0)], default_timeout=0.2).score(["a"])
    finally:
        release.set()
    assert res.values["stuck"] == [None] and res.stats["stuck"].timeouts == 1
    assert res.values["ones"] == [1.0]


def test_cpu_bound_hard_timeout_and_isolation():
    e = engine(
        (spec(h.sleepy_reward, cpu_bound=True, timeout=1.0), 1.0),
        (spec(h.raising_reward, cpu_bound=True, timeout=20), 1.0),
        (spec(h.length_reward, cpu_bound=True), 1.0),
        (spec(ones), 1.0),
    )
    res = e.score(["ok", "hang", "boom"])
    assert res.values["sleepy_reward"] == [1.0, None, 1.0]
    assert res.stats["sleepy_reward"].timeouts == 1 and res.stats["sleepy_reward"].errors == 0
    assert res.values["raising_reward"] == [1.0, 1.0, None]
    assert res.stats["raising_reward"].errors == 1 and "boom in completion" in res.stats["raising_reward"].last_error
    assert res.values["length_reward"] == [2.0, 4.0, 4.0]
    assert res.values["ones"] == [1.0, 1.0, 1.0]
    m = e.pop_metrics()
    assert m["rewards/sleepy_reward/timeouts"] == 1.0


def test_cpu_bound_reward_must_be_picklable():
    def local(completions, **kwargs):
        return [0.0] * len(completions)

    with pytest.raises(GrpoCoreError, match="cpu_bound but cannot be sent to a worker"):
        engine((spec(local, cpu_bound=True), 1.0))


def test_column_length_mismatch_is_an_error():
    with pytest.raises(RewardError, match="column 'answer' has 1 values for 2 completions"):
        engine((spec(ones), 1.0)).score(["a", "b"], answer=["x"])


def test_chat_completions_reach_the_reward():
    from grpo_core.default_plugins.format_rewards import exact_format

    reply = [{"role": "assistant", "content": "<reasoning>a</reasoning><answer>1</answer>"}]
    res = engine((spec(exact_format), 1.0)).score([reply, [{"role": "assistant", "content": "no"}]])
    assert res.values["exact_format"] == [3.0, 0.0]


def test_from_selection_uses_registry_names(plugin_state):
    e = RewardEngine.from_selection("xml:0.5,builtin/soft_format")
    assert e.names == ["xml", "builtin/soft_format"] and e.weights == {"xml": 0.5, "builtin/soft_format": 1.0}
    res = e.score(["<reasoning>a</reasoning><answer>1</answer>"])
    assert res.totals == [0.75]


def test_reset_stats_forgets_earlier_scoring():
    from grpo_core.rewards.engine import RewardEngine
    from grpo_core.plugins.registry import Provenance, make_reward_spec

    def one(completions, **kw):
        return [1.0] * len(completions)

    engine = RewardEngine([(make_reward_spec(one, None, Provenance("t", None, None), {}), 1.0)])
    engine.score(["a", "b"])
    assert engine.totals["one"].samples == 2
    engine.reset_stats()
    assert engine.totals["one"].samples == 0 and engine.pop_metrics() == {}
