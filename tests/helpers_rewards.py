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
