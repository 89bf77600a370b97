"""An in-process plugin for trainer tests: a toy dataset and dense rewards.

Module-level functions, so the deadline workers can import them.
"""

from __future__ import annotations

import contextlib
import os

from grpo_core import Verdict, Verifier, hookimpl
from grpo_core.kit.datasets import DatasetAdapter
from grpo_core.kit.extraction import completion_text
from grpo_core.kit.prompts import format_xml
from grpo_core.plugins import pm, reset_for_tests


def short_reward(completions, **kwargs):
    """Dense: prefers shorter completions, so any tiny model has signal."""
    return [-len(completion_text(c)) / 100.0 for c in completions]


def has_digit(completions, answer, **kwargs):
    return [1.0 if any(ch.isdigit() for ch in completion_text(c)) else 0.0 for c in completions]


class ToyVerifier(Verifier):
    name = "toy"
    description = "integer equality"

    def quick_compare(self, gold, pred):
        try:
            return Verdict.matched(pred=pred, gold=gold) if int(pred) == int(gold) else Verdict.different(pred=pred, gold=gold)
        except ValueError:
            return Verdict.pred_unparseable("not an integer", pred=pred, gold=gold)


class ToyDataset(DatasetAdapter):
    name = "toy"
    description = "tiny sums"
    verifier = "toy"
    splits = ("train", "test")

    def rows(self, split, **options):
        base = 0 if split == "train" else 100
        for i in range(32 if split == "train" else 8):
            a, b = base + i, i % 7
            yield {"question": f"{a} + {b}?", "answer": str(a + b), "id": f"{split}-{i}", "solution": format_xml(f"{a} + {b} = {a + b}", a + b)}


class ToyPlugin:
    __name__ = "toy_plugin"

    @hookimpl
    def register_rewards(self, register):
        register(short_reward)
        register(has_digit, requires=("answer",))

    @hookimpl
    def register_verifiers(self, register):
        register(ToyVerifier())

    @hookimpl
    def register_datasets(self, register):
        register(ToyDataset())


@contextlib.contextmanager
def registered_with(name: str, plugin):
    """The toy plugin and ``plugin`` (as ``name``) registered, nothing from entry points; reset afterwards."""
    os.environ["GRPO_CORE_LOAD_PLUGINS"] = ""
    reset_for_tests()
    pm.register(ToyPlugin(), name="toy_plugin")
    pm.register(plugin, name=name)
    try:
        yield
    finally:
        reset_for_tests()
        os.environ.pop("GRPO_CORE_LOAD_PLUGINS", None)
