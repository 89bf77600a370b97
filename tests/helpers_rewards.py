"""Module-level reward functions for tests that need them picklable (cpu_bound, deadline workers)."""

from __future__ import annotations

import os
import time


def length_reward(completions, **kwargs):
    """One float per completion: its length."""
    return [float(len(c)) for c in completions]


def sleepy_reward(completions, **kwargs):
    """Hangs on completions that contain 'hang', else 1.0."""
    out = []
    for c in completions:
        if "hang" in c:
            time.sleep(60)
        out.append(1.0)
    return out


def raising_reward(completions, **kwargs):
    for c in completions:
        if "boom" in c:
            raise ValueError("boom in completion")
    return [1.0] * len(completions)


def hang(seconds=60):
    time.sleep(seconds)
    return "woke"


def add(a, b):
    return a + b


def fail(msg):
    raise RuntimeError(msg)


def pid():
    return os.getpid()


def die():
    os._exit(3)


# --- the reward runtime (tests/test_reward_runtime.py) ------------------------------------------------

import importlib  # noqa: E402
import re  # noqa: E402

from grpo_core import Verdict, Verifier  # noqa: E402


def backtracking_reward(completions, **kwargs):
    """Holds the GIL for ever on 'evil' (catastrophic backtracking in C), else 1.0."""
    return [0.0 if "evil" in c and re.match(r"^(a+)+$", "a" * 40 + "b") else 1.0 for c in completions]


def busy_reward(completions, **kwargs):
    """Spins in Python on 'spin' (a busy loop a thread interruption can stop), else 1.0."""
    for c in completions:
        if "spin" in c:
            busy_reward.stopped = False
            try:
                while True:
                    pass
            finally:
                busy_reward.stopped = True
    return [1.0] * len(completions)


def blocked_reward(completions, **kwargs):
    """Blocks in C (time.sleep) on 'block': an interruption cannot stop it until the sleep ends."""
    for c in completions:
        if "block" in c:
            time.sleep(120)
    return [1.0] * len(completions)


def always_hangs(completions, **kwargs):
    time.sleep(120)
    return [1.0] * len(completions)


class HangingVerifier(Verifier):
    """compare() holds the GIL for ever (catastrophic backtracking); quick_compare defers every pair."""

    name = "hangs"
    timeout = 0.5

    def compare(self, gold, pred):
        re.match(r"^(a+)+$", "a" * 40 + "b")
        return Verdict.matched(pred=pred, gold=gold)


class FractionQuickVerifier(Verifier):
    """quick_compare parses with Fraction: '1e999999999' never returns."""

    name = "fraction_quick"
    timeout = 1.0

    def quick_compare(self, gold, pred):
        from fractions import Fraction

        try:
            equal = Fraction(gold) == Fraction(pred)
        except (ValueError, ZeroDivisionError):
            return Verdict.pred_unparseable("not a number", pred=pred, gold=gold)
        return Verdict.matched(pred=pred, gold=gold) if equal else Verdict.different("differ", pred=pred, gold=gold)

    def compare(self, gold, pred):
        return self.quick_compare(gold, pred)


def verifier_reward(completions, answer=None, **kwargs):
    """Checks each completion with the 'hangs' verifier: 1.0 equal, 0.0 else, None when it timed out.
    Also reports whether the worker had to load plugins to find the verifier."""
    import grpo_core

    collected = importlib.import_module("grpo_core.plugins.registries")
    v = grpo_core.get_verifier("hangs")
    verdicts = v.check_batch(list(answer), list(completions))
    if collected._cache is not None:  # the worker collected every plugin's registrations to find the verifier
        return [-1.0] * len(completions)
    return [None if vd.status.value == "timed_out" else float(vd.equal) for vd in verdicts]


def hangs_on_tags(completions, **kwargs):
    """Holds the GIL for ever on a flood of tags (the conformance kit's tag_flood edge case), else 1.0."""
    return [0.0 if c.count("<answer>") > 100 and re.match(r"^(a+)+$", "a" * 40 + "b") else 1.0 for c in completions]


def _write_pid() -> None:
    path = os.environ["PIDFILE"]
    if not os.path.exists(path):
        with open(path + ".tmp", "w") as f:
            f.write(str(os.getpid()))
        os.replace(path + ".tmp", path)


def pid_then_quick(completions, **kwargs):
    _write_pid()
    return [1.0] * len(completions)


def pid_then_backtrack(completions, **kwargs):
    _write_pid()
    re.match(r"^(a+)+$", "a" * 40 + "b")
    return [1.0] * len(completions)


def wait_for_flag(completions, flag, **kwargs):
    """Returns once the file named by the ``flag`` column exists (the test's notice writes it), or after 60 s."""
    end = time.monotonic() + 60
    while not os.path.exists(flag[0]) and time.monotonic() < end:
        time.sleep(0.05)
    return [1.0] * len(completions)
