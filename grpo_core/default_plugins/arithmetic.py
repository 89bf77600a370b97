"""The bundled task: synthetic GSM8K-style arithmetic word problems.

This is the task of the embedded default run (``grpo-core run`` with no model):
small enough that the bundled tiny reasoner (``grpo_core/assets/tiny-reasoner``)
solves part of it after supervised warm-up, so GRPO has signal to work with.

Problems are made by a template generator that is deterministic from fixed
seeds, with fixed and disjoint splits:

* ``test``: :data:`TEST_SIZE` problems from :data:`TEST_SEED` (held out);
* ``train``: :data:`TRAIN_SIZE` problems from :data:`TRAIN_SEED`, none of whose
  questions appears in ``test``.

Each problem takes one or two steps of addition, subtraction or a small
multiplication, e.g. "Dan has 41 apples. He sells 16 and then buys 27 more.
How many apples does he have now?", whose reference reply (``solution``) is::

    <reasoning>
    41 - 16 = 25
    25 + 27 = 52
    </reasoning>
    <answer>
    52
    </answer>

It registers the verifier ``arithmetic`` (integer answers, decided inline) and
the dataset adapter ``arithmetic`` (columns ``question``/``answer``/``id``/
``solution``, plus what :class:`~grpo_core.kit.DatasetAdapter` adds).
Only the standard library is imported here.
"""

from __future__ import annotations

import random
import re
from functools import lru_cache
from typing import Any, Iterator

from grpo_core import hookimpl
from grpo_core.kit import DatasetAdapter, Verdict, VerdictStatus, Verifier, completion_text, format_xml

TRAIN_SEED = 1234
TEST_SEED = 98765
TRAIN_SIZE = 20000
TEST_SIZE = 500
#: operands of additions and subtractions are drawn from [MIN_NUM, MAX_NUM]
MIN_NUM = 2
MAX_NUM = 40
#: factors of multiplications are drawn from [2, MAX_FACTOR]
MAX_FACTOR = 9

NAMES = (
    ("Dan", "he"), ("Ann", "she"), ("Tom", "he"), ("Mia", "she"), ("Sam", "he"), ("Eva", "she"),
    ("Ben", "he"), ("Lily", "she"), ("Max", "he"), ("Zoe", "she"), ("Leo", "he"), ("Ivy", "she"),
    ("Joe", "he"), ("Amy", "she"), ("Ray", "he"), ("Kate", "she"),
)
ITEMS = (
    "apples", "pens", "books", "stickers", "cookies", "marbles", "cards", "shells",
    "stamps", "coins", "eggs", "toys", "beads", "candies", "flowers", "balls",
)
CONTAINERS = ("bags", "boxes", "packs", "jars", "baskets")
ADD_VERBS = ("buys {n} more", "finds {n} more", "gets {n} more", "picks up {n} more")
SUB_VERBS = ("sells {n}", "gives away {n}", "loses {n}", "uses {n}")
ADD_FROM = "{Other} gives {pro} {n} more"  # "Tom gives him 5 more"
OBJ = {"he": "him", "she": "her"}


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def make_problem(rng: random.Random, max_num: int = MAX_NUM, max_factor: int = MAX_FACTOR) -> dict:
    """One problem: ``question``, ``reasoning`` (lines of equations), ``answer`` (int)."""
    name, pro = rng.choice(NAMES)
    item = rng.choice(ITEMS)
    kind = rng.choice(("add", "sub", "add_sub", "sub_add", "mul", "mul_add"))
    lo, hi = MIN_NUM, max_num
    have = f"{name} has {{a}} {item}."
    ask_now = f"How many {item} does {pro} have now?"
    if kind == "add":
        a, b = rng.randint(lo, hi), rng.randint(lo, hi)
        if rng.random() < 0.25:
            other = rng.choice([n for n, _ in NAMES if n != name])
            act = ADD_FROM.format(Other=other, pro=OBJ[pro], n=b)
        else:
            act = _cap(pro) + " " + rng.choice(ADD_VERBS).format(n=b)
        q = f"{have.format(a=a)} {act}. {ask_now}"
        steps, ans = [f"{a} + {b} = {a + b}"], a + b
    elif kind == "sub":
        a = rng.randint(lo + 1, hi)
        b = rng.randint(lo - 1 if lo > 1 else 1, a - 1)
        act = _cap(pro) + " " + rng.choice(SUB_VERBS).format(n=b)
        q = f"{have.format(a=a)} {act}. How many {item} does {pro} have left?"
        steps, ans = [f"{a} - {b} = {a - b}"], a - b
    elif kind == "add_sub":
        a, b = rng.randint(lo, hi), rng.randint(lo, hi)
        c = rng.randint(1, a + b - 1)
        c = min(c, hi)
        add = rng.choice(ADD_VERBS).format(n=b)
        sub = rng.choice(SUB_VERBS).format(n=c)
        q = f"{have.format(a=a)} {_cap(pro)} {add} and then {sub}. {ask_now}"
        steps, ans = [f"{a} + {b} = {a + b}", f"{a + b} - {c} = {a + b - c}"], a + b - c
    elif kind == "sub_add":
        a = rng.randint(lo + 1, hi)
        b = rng.randint(1, a - 1)
        c = rng.randint(lo, hi)
        sub = rng.choice(SUB_VERBS).format(n=b)
        add = rng.choice(ADD_VERBS).format(n=c)
        q = f"{have.format(a=a)} {_cap(pro)} {sub} and then {add}. {ask_now}"
        steps, ans = [f"{a} - {b} = {a - b}", f"{a - b} + {c} = {a - b + c}"], a - b + c
    elif kind == "mul":
        a, b = rng.randint(2, max_factor), rng.randint(2, max_factor)
        box = rng.choice(CONTAINERS)
        q = f"{name} buys {a} {box} of {item}. Each of the {box} has {b} {item}. How many {item} does {pro} buy?"
        steps, ans = [f"{a} * {b} = {a * b}"], a * b
    else:  # mul_add
        a, b = rng.randint(2, max_factor), rng.randint(2, max_factor)
        c = rng.randint(lo, hi)
        box = rng.choice(CONTAINERS)
        q = (
            f"{have.format(a=c)} {_cap(pro)} buys {a} {box} of {item}. "
            f"Each of the {box} has {b} {item}. {ask_now}"
        )
        steps, ans = [f"{a} * {b} = {a * b}", f"{c} + {a * b} = {c + a * b}"], c + a * b
    return {"question": q, "reasoning": "\n".join(steps), "answer": ans, "kind": kind}


def solution(problem: dict) -> str:
    """The reference reply in the reward format."""
    return format_xml(problem["reasoning"], str(problem["answer"]))


def _generate(seed: int, n: int, exclude: frozenset = frozenset(), **kw: Any) -> list[dict]:
    rng = random.Random(seed)
    seen = set(exclude)
    out: list[dict] = []
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > 50 * n + 1000:
            raise RuntimeError(f"could not generate {n} distinct problems (got {len(out)})")
        p = make_problem(rng, **kw)
        if p["question"] in seen:
            continue
        seen.add(p["question"])
        out.append(p)
    return out


@lru_cache(maxsize=4)
def problems(split: str) -> tuple[dict, ...]:
    """The fixed problems of ``split`` ("train" or "test"); deterministic."""
    test = _generate(TEST_SEED, TEST_SIZE)
    if split == "test":
        chosen, prefix = test, "test"
    elif split == "train":
        chosen, prefix = _generate(TRAIN_SEED, TRAIN_SIZE, frozenset(p["question"] for p in test)), "train"
    else:
        raise ValueError(f"arithmetic has no split {split!r}; choose train or test")
    return tuple(
        {
            "question": p["question"],
            "answer": str(p["answer"]),
            "id": f"arithmetic/{prefix}/{i}",
            "solution": solution(p),
            "kind": p["kind"],
        }
        for i, p in enumerate(chosen)
    )


# --- verifier ----------------------------------------------------------------

_INT_RE = re.compile(r"^[+-]?\d{1,18}(?:\.0*)?$")


def parse_int(text: str) -> int | None:
    """``"1,234"`` -> 1234, ``"$12"`` -> 12, ``"7.0"`` -> 7; anything else -> None."""
    s = str(text).strip().replace(",", "").replace(" ", "")
    if s.startswith("$"):
        s = s[1:]
    if s.endswith("."):
        s = s[:-1]
    if len(s) > 40 or not _INT_RE.match(s):
        return None
    return int(s.split(".")[0])


class ArithmeticVerifier(Verifier):
    """Integer answers: equal when both parse as the same integer."""

    name = "arithmetic"
    description = "integer answers of the bundled arithmetic task (1,234 / $12 / 7.0 accepted)"
    version = "1"

    def quick_compare(self, gold: str, pred: str) -> Verdict:
        g = parse_int(gold)
        if g is None:
            return Verdict.gold_unparseable(f"gold {gold[:40]!r} is not an integer", pred=pred, gold=gold)
        p = parse_int(pred)
        if p is None:
            return Verdict.pred_unparseable(f"{pred[:40]!r} is not an integer", pred=pred, gold=gold)
        if p == g:
            return Verdict.matched(pred=pred, gold=gold)
        return Verdict.different(f"{p} != {g}", pred=pred, gold=gold)

    def compare(self, gold: str, pred: str) -> Verdict:
        return self.quick_compare(gold, pred)


VERIFIER = ArithmeticVerifier()
#: verdicts that carry no signal (the gold is unusable, or the check failed): the reward abstains with None
_ABSTAIN = (VerdictStatus.GOLD_UNPARSEABLE, VerdictStatus.TIMED_OUT, VerdictStatus.ERROR)


# --- the task's own correctness reward ------------------------------------------


def arithmetic_correctness(completions, answer=None, **kwargs) -> list[float | None]:
    """2.0 when the arithmetic verifier says the answer equals the gold, else 0.0 (None: gold unusable).

    The task's own reward, so ``pip install grpo-core`` alone trains the default
    preset. It is named after the task so it never collides with a plugin's
    ``correctness`` (the math plugin's checks each row with the row's verifier).
    """
    texts = [completion_text(c) for c in completions]
    golds = list(answer) if answer is not None else [None] * len(texts)
    if len(golds) != len(texts):
        raise ValueError(f"got {len(texts)} completions and {len(golds)} answers")
    verdicts = VERIFIER.check_batch(golds, texts)
    return [None if v.status in _ABSTAIN else (2.0 if v.equal else 0.0) for v in verdicts]


# --- dataset adapter -----------------------------------------------------------


class ArithmeticDataset(DatasetAdapter):
    """Synthetic one- and two-step arithmetic word problems (train 20,000 / test 500)."""

    name = "arithmetic"
    description = "bundled synthetic GSM8K-style arithmetic word problems (train 20000 / test 500, fixed seeds)"
    verifier = "arithmetic"
    splits = ("train", "test")
    default_eval_split = "test"

    def rows(self, split: str) -> Iterator[dict]:  # no options: pre-flight refuses any --dataset-option by name
        for p in problems(split):
            yield {**p, "source": f"arithmetic/{split}"}


@hookimpl
def register_verifiers(register):
    register(VERIFIER)


@hookimpl
def register_rewards(register):
    register(arithmetic_correctness, requires=("answer",), default_weight=1.0)


@hookimpl
def register_datasets(register):
    register(ArithmeticDataset())
