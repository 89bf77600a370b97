"""Reward options and dataset options: declared at registration, set by YAML, flags and --set, checked, carried typed."""

from __future__ import annotations

import json
import sys

import pytest
from click.testing import CliRunner

from grpo_core import hookimpl
from grpo_core.cli import cli, register_commands
from grpo_core.config.settings import build_config
from grpo_core.errors import RegistrationError, SelectionError
from grpo_core.rewards.engine import RewardEngine
from grpo_core.rewards.selection import RewardSelection, resolve


# -- start reward-options --
def length_cap(completions, max_chars=200, penalty=1.0, **kwargs):
    """1.0 for a completion within max_chars, -penalty beyond it."""
    texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
    return [1.0 if len(t) <= max_chars else -penalty for t in texts]


@hookimpl
def register_rewards(register):
    register(length_cap, options={"max_chars": 200, "penalty": 1.0})
# -- end reward-options --
# Set them with:  --reward-option length_cap.max_chars=20   (or YAML reward_options: {length_cap: {max_chars: 20}})


@pytest.fixture
def length_plugin(grpo_register):
    grpo_register(sys.modules[__name__], name="lengthy")  # this module is the plugin: its register_rewards above


@pytest.fixture
def invoke(plugin_state):
    register_commands()
    runner = CliRunner()
    return lambda *args: runner.invoke(cli, list(args), prog_name="grpo-core")


def test_the_engine_calls_a_reward_with_its_options(length_plugin):
    long = "x" * 50
    assert RewardEngine.from_selection("length_cap").score([long]).values["length_cap"] == [1.0]  # the defaults
    sel = RewardSelection.parse("length_cap", {"length_cap": {"max_chars": "20", "penalty": "2.5"}})  # CLI strings
    engine = RewardEngine.from_selection(sel)
    assert engine.score([long, "short"]).values["length_cap"] == [-2.5, 1.0]
    assert engine.rewards[0].spec.options == {"max_chars": 20, "penalty": 2.5}  # read as the defaults' types


def test_options_are_resolved_once_and_checked(length_plugin):
    sel = RewardSelection.parse("length_cap,xml", {"length_cap": {"max_chars": 10}})
    first = resolve(sel)
    assert resolve(sel) is first  # one resolution per registry
    assert first[0].options == {"max_chars": 10, "penalty": 1.0} and first[1].options == {}
    with pytest.raises(SelectionError, match=r"has no option 'max_char'; its options: max_chars \(default 200\), penalty \(default 1.0\)"):
        resolve(RewardSelection.parse("length_cap", {"length_cap": {"max_char": 10}}))
    with pytest.raises(SelectionError, match=r"option 'max_chars' must be a whole number \(its default is 200\); got 'ten'"):
        resolve(RewardSelection.parse("length_cap", {"length_cap": {"max_chars": "ten"}}))
    with pytest.raises(SelectionError, match=r"reward_options names reward 'lenght_cap', which is not selected; selected: length_cap"):
        resolve(RewardSelection.parse("length_cap", {"lenght_cap": {"max_chars": 1}}))


@pytest.mark.parametrize(
    "options, message",
    [
        ({"prompts": 1}, "collides with a keyword argument TRL passes"),
        ({"trainer_state": None}, "collides with a keyword argument TRL passes"),
        ({"max-chars": 1}, "must be a Python identifier"),
        ({"max_chars": {"a": 1}}, "must be a JSON scalar or a list"),
        ({"limit": 3}, "'limit' is not a parameter of"),
        ([("a", 1)], "options must be a mapping"),
    ],
)
def test_registration_refuses_unusable_options(options, message):
    from grpo_core.plugins.registry import Provenance, make_reward_spec

    def strict(completions, max_chars=200):
        return [0.0] * len(completions)

    with pytest.raises(RegistrationError, match=message):
        make_reward_spec(strict, None, Provenance("p", None, None), {"options": options})


def test_options_from_yaml_flags_and_set_meet_in_one_selection(tmp_path):
    yml = tmp_path / "run.yaml"
    yml.write_text("plugins: length_cap,xml\nreward_options: {length_cap: {max_chars: 30, penalty: 2}}\ndataset_options: {path: a.jsonl}\n")
    cfg = build_config(config_file=str(yml), flags={"reward_options": {"length_cap": {"penalty": "3"}}, "dataset_options": {"shard": "1"}},
                       sets=["reward_options.length_cap.max_chars=40", "dataset_options.path=b.jsonl"])
    assert cfg.reward_options == {"length_cap": {"max_chars": 40, "penalty": "3"}}
    assert cfg.dataset_options == {"path": "b.jsonl", "shard": "1"}
    assert cfg.reward_selection.names == ["length_cap", "xml"] and cfg.reward_selection.options == cfg.reward_options


def test_listing_shows_declared_options(invoke, length_plugin):
    res = invoke("rewards")
    assert res.output.splitlines()[0].split() == ["name", "default_weight", "options", "source", "description"]
    assert "max_chars=200, penalty=1.0" in res.output
    rows = json.loads(invoke("rewards", "--json").stdout)
    assert next(r for r in rows if r["name"] == "length_cap")["options"] == {"max_chars": 200, "penalty": 1.0}


def test_score_takes_reward_options(invoke, length_plugin, tmp_path):
    comp = tmp_path / "c.jsonl"
    comp.write_text(json.dumps({"completion": "y" * 50}) + "\n")
    res = invoke("score", "--plugins", "length_cap", "--completions", str(comp), "--reward-option", "length_cap.max_chars=10",
                 "--reward-option", "length_cap.penalty=4")
    assert res.exit_code == 0, res.output
    assert "max_chars=10, penalty=4.0" in res.output and "-4.000" in res.output
    res = invoke("score", "--plugins", "length_cap", "--completions", str(comp), "--reward-option", "length_cap.nope=1")
    assert res.exit_code == 2 and "has no option 'nope'" in res.stderr
    res = invoke("score", "--plugins", "length_cap", "--completions", str(comp), "--reward-option", "max_chars=1")
    assert res.exit_code == 2 and "--reward-option expects REWARD.NAME=VALUE" in res.stderr


def test_run_refuses_a_bad_option_before_anything_loads(invoke, length_plugin):
    res = invoke("run", "--plugins", "length_cap", "--reward-option", "length_cap.penalty=lots", "--dry-run")
    assert res.exit_code == 2 and "option 'penalty' must be a number (its default is 1.0); got 'lots'" in res.stderr
    res = invoke("run", "--plugins", "length_cap", "--set", "reward_options.length_cap.max_char=3", "--dry-run")
    assert res.exit_code == 2 and "has no option 'max_char'" in res.stderr


def capped_in_worker(completions, cap=5, **kwargs):
    return [float(min(len(c), cap)) for c in completions]


def test_options_reach_a_cpu_bound_reward_in_its_worker(grpo_register):
    class WorkerPlugin:
        @staticmethod
        @hookimpl
        def register_rewards(register):
            register(capped_in_worker, cpu_bound=True, timeout=20.0, options={"cap": 5})

    grpo_register(WorkerPlugin, name="worker_plugin")
    engine = RewardEngine.from_selection(RewardSelection.parse("capped_in_worker", {"capped_in_worker": {"cap": "2"}}))
    try:
        assert engine.score(["abcdef", "a"]).values["capped_in_worker"] == [2.0, 1.0]  # the bound partial pickles
    finally:
        engine.close()


class Counting:
    """A reward_metrics object: the protocol the engine reads (pop, totals, reset, progress_keys)."""

    progress_keys = ("calls",)

    def __init__(self):
        self.window = self.total = self.resets = 0

    def record(self, n):
        self.window += n
        self.total += n

    def pop(self):
        out, self.window = ({"calls": float(self.window)} if self.window else {}), 0
        return out

    def totals(self):
        return {"calls": float(self.total)}

    def reset(self):
        self.window = self.total = 0
        self.resets += 1


def counting_reward(completions, bonus=0.0, **kwargs):
    counting_reward.reward_metrics.record(len(completions))
    return [1.0 + bonus] * len(completions)


@pytest.fixture
def counting_plugin(grpo_register):
    counting_reward.reward_metrics = Counting()

    class CountingPlugin:
        @staticmethod
        @hookimpl
        def register_rewards(register):
            register(counting_reward, options={"bonus": 0.0})

    grpo_register(CountingPlugin, name="counting_plugin")
    return counting_reward.reward_metrics


def test_a_reward_reports_its_own_metrics_through_its_bound_options(counting_plugin):
    engine = RewardEngine.from_selection(RewardSelection.parse("counting_reward,xml", {"counting_reward": {"bonus": "1"}}))
    assert counting_plugin.resets == 1  # the counters cover this engine's work
    assert engine.score(["a", "b"]).values["counting_reward"] == [2.0, 2.0]  # found through the functools.partial
    engine.reset_stats()  # e.g. after pre-flight's smoke test
    engine.score(["a", "b", "c"])
    logged = engine.pop_metrics()
    assert logged["rewards/counting_reward/calls"] == 3.0
    assert not any(k.startswith("rewards/xml/") and k.endswith("/calls") for k in logged)  # xml reports nothing
    assert "rewards/counting_reward/calls" not in engine.pop_metrics()  # a window, not a running total
    assert engine.reported_totals() == {"counting_reward": {"calls": 3.0}}
    assert engine.progress_keys() == {"counting_reward": ("calls",)}


def test_score_prints_what_a_reward_reports(invoke, counting_plugin, tmp_path):
    comp = tmp_path / "c.jsonl"
    comp.write_text("".join(json.dumps({"completion": t}) + "\n" for t in ("a", "b", "c")))
    res = invoke("score", "--plugins", "counting_reward", "--completions", str(comp), "--batch-size", "2")
    assert res.exit_code == 0, res.output
    assert "counting_reward reports:\n  calls = 3" in res.output


def test_progress_line_shows_the_reported_keys():
    import io
    from types import SimpleNamespace

    from grpo_core.train.callbacks import ProgressCallback

    stream = io.StringIO()
    cb = ProgressCallback(["judge"], stream=stream, reported_keys={"judge": ("calls", "abstained")})
    state = SimpleNamespace(is_world_process_zero=True, global_step=1, max_steps=2)
    cb.on_log(None, state, None, logs={"reward": 0.5, "rewards/judge/mean": 0.5, "rewards/judge/calls": 16.0,
                                       "rewards/judge/abstained": 2.0})
    assert "| judge 0.500 | judge: calls 16 abstained 2 |" in stream.getvalue()


def timed_counting_reward(completions, bonus=0.0, **kwargs):
    timed_counting_reward.reward_metrics.record(len(completions))
    return [1.0 + bonus] * len(completions)


timed_counting_reward.reward_metrics = Counting()  # at import, so the worker process has its own copy


def test_a_reward_that_runs_in_a_worker_reports_nothing_rather_than_zeros(grpo_register):
    """A sync reward that declares timeout= runs in a worker process: its counters move there, so the
    engine ignores this process's copy instead of logging zeros."""
    class TimedPlugin:
        @staticmethod
        @hookimpl
        def register_rewards(register):
            register(timed_counting_reward, timeout=20.0, options={"bonus": 0.0})

    grpo_register(TimedPlugin, name="timed_counting_plugin")
    engine = RewardEngine.from_selection(RewardSelection.parse("timed_counting_reward", {}))
    try:
        assert engine.rewards[0].in_process
        assert engine.score(["a", "b"]).values["timed_counting_reward"] == [1.0, 1.0]  # counted in the worker
        assert timed_counting_reward.reward_metrics.total == 0  # this process's copy never moved
        assert engine.reported_totals() == {}
        assert engine.progress_keys() == {}
        assert not any(k.endswith("/calls") for k in engine.pop_metrics())
    finally:
        engine.close()
