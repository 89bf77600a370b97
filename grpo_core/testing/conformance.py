"""The conformance kit: checks that a plugin keeps the grpo-core contract.

The checks are plain functions, importable anywhere::

    from grpo_core.testing import check_dataset, check_reward, check_verifier

Each one runs every check it knows, then raises :class:`ConformanceError`
listing each problem with the change that fixes it. On success it returns a
:class:`Report` naming the checks that passed.

Its fixtures live in :mod:`grpo_core.testing.pytest_plugin`, which pytest loads
in every session through the ``pytest11`` entry point ``grpo_core``.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import pickle
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from grpo_core.kit.extraction import completion_text
from grpo_core.kit.prompts import chat_prompt, format_xml
from grpo_core.kit.verdict import Verdict, VerdictStatus
from grpo_core.plugins import registries
from grpo_core.plugins.lookup import get_dataset, get_reward, get_verifier
from grpo_core.plugins.registry import Provenance, RewardSpec, make_reward_spec
from grpo_core.rewards.engine import DEFAULT_CPU_BOUND_TIMEOUT, _slice
from grpo_core.runtime.deadline import call_with_deadline, map_with_deadline

__all__ = [
    "ConformanceError",
    "Report",
    "check_reward",
    "check_verifier",
    "check_dataset",
    "edge_completions",
    "DEFAULT_TIME_LIMIT",
]

#: seconds a reward may take on the edge-case batch when it declares no timeout
DEFAULT_TIME_LIMIT = 10.0
#: extra seconds a verifier call may take beyond its own ``timeout`` (worker start-up)
VERIFIER_GRACE = 10.0
#: what TRL 1.14.2 passes to every reward besides the dataset columns
TRL_KWARGS = ("prompts", "completions", "completion_ids", "trainer_state", "log_extra", "log_metric")
#: TRL's kwargs that are not picklable and never reach a worker process
LOCAL_ONLY = ("trainer_state", "log_extra", "log_metric", "environments")


class ConformanceError(AssertionError):
    """A plugin breaks the contract; the message lists each problem and its fix."""


@dataclass
class Problem:
    check: str
    what: str
    fix: str

    def __str__(self) -> str:
        return f"[{self.check}] {self.what}\n    fix: {self.fix}"


@dataclass
class Report:
    """What a check function found: the checks passed and the problems."""

    kind: str
    name: str
    passed: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def ok(self, check: str) -> None:
        if check not in self.passed and not any(p.check == check for p in self.problems):
            self.passed.append(check)

    def fail(self, check: str, what: str, fix: str) -> None:
        if check in self.passed:
            self.passed.remove(check)
        self.problems.append(Problem(check, what, fix))

    def failed(self, check: str) -> bool:
        return any(p.check == check for p in self.problems)

    def raise_for_problems(self) -> "Report":
        if self.problems:
            lines = [f"{self.kind} {self.name!r} breaks the grpo-core contract ({len(self.problems)} problem(s)):"]
            lines += [f"{i}. {p}" for i, p in enumerate(self.problems, 1)]
            if self.passed:
                lines.append(f"passed: {', '.join(self.passed)}")
            raise ConformanceError("\n".join(lines))
        return self


# --------------------------------------------------------------------------
# inputs


def edge_completions() -> dict[str, str]:
    """Completions a reward meets sooner or later, by name.

    Empty and whitespace-only replies, a 1 MB reply, a flood of unclosed tags
    (a trap for backtracking regexes), control and high-byte characters, and
    non-Latin text with non-ASCII digits.
    """
    return {
        "empty": "",
        "whitespace": " \n\t \n",
        "huge": "<reasoning>\n" + "step by step, " * 75_000 + "\n</reasoning>\n<answer>\n7\n</answer>",
        "tag_flood": "<reasoning>" * 3000 + "<answer>" * 3000 + "</answer" * 3000,
        "binary": "\x00\x01\x02\x7f" + bytes(range(256)).decode("latin-1") + "\ufffd\ufffe",
        "unicode": "<reasoning>\nΔ = 4·2 ✓ 😀 中文 العربية e\u0301\u200b\n</reasoning>\n<answer>\n٤٢\n</answer>",
        "unclosed": "<reasoning>\nI think the answer is 7\n<answer>\n7",
        "only_answer": "<answer>7</answer>",
    }


def _typical_completions(columns: dict) -> list[str]:
    gold = columns.get("answer")
    gold = "42" if gold is None or not str(gold).strip() else str(gold)
    return [
        format_xml("Reasoning about the problem step by step.", gold),
        format_xml("Reasoning, then a wrong answer.", "wrong " + gold),
        f"The answer is {gold}.",
        f"<answer>{gold}</answer>",
    ]


class _State:
    """A stand-in for ``transformers.TrainerState`` with the fields rewards read."""

    global_step = 0
    max_steps = 100
    epoch = 0.0
    log_history: list = []
    is_world_process_zero = True


def _trl_kwargs(completions: list, columns: dict, chat: bool, logs: dict | None = None) -> dict:
    """Keyword arguments exactly as TRL 1.14.2's GRPOTrainer passes them."""
    n = len(completions)
    question = str(columns.get("question", "What is 6 times 7?"))
    if chat:
        prompts = [chat_prompt(question) for _ in range(n)]
        comps = [c if isinstance(c, list) else [{"role": "assistant", "content": c}] for c in completions]
    else:
        prompts = [question for _ in range(n)]
        comps = list(completions)
    logs = logs if logs is not None else {"extra": {}, "metrics": {}}
    kw: dict[str, Any] = {k: [v] * n for k, v in columns.items()}
    kw.update(
        prompts=prompts,
        completions=comps,
        completion_ids=[list(completion_text(c).encode("utf-8")[:4096]) for c in comps],
        trainer_state=_State(),
        log_extra=lambda column, values: logs["extra"].setdefault(column, []).extend(values),
        log_metric=lambda name, value: logs["metrics"].setdefault(name, []).append(value),
    )
    return kw


def _call(func: Callable, kwargs: dict) -> Any:
    out = func(**kwargs)
    if inspect.isawaitable(out):
        out = asyncio.run(_await(out))
    return out


async def _await(aw):
    return await aw


def _call_in_worker(func: Callable, kwargs: dict) -> Any:
    out = _call(func, kwargs)
    return list(out) if not isinstance(out, (str, bytes)) and hasattr(out, "__iter__") else out


def _guarded(fn: Callable, limit: float) -> tuple[str, Any]:
    """Run ``fn()`` in a thread: ("ok", value), ("error", exc) or ("hung", None)."""
    box: dict = {}

    def target():
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - reported to the caller
            box["exc"] = exc

    th = threading.Thread(target=target, daemon=True, name="grpo-core-check")
    th.start()
    th.join(limit)
    if th.is_alive():
        return "hung", None
    if "exc" in box:
        return "error", box["exc"]
    return "ok", box["value"]


def _in_worker(fn: Callable, args: tuple, limit: float) -> tuple[str, Any]:
    """Run ``fn(*args)`` in a killable worker process: ("ok", value), ("error", exc) or ("hung", None).

    Unlike a thread, a worker is stopped at ``limit`` even when the code holds
    the GIL (a backtracking regex, ``Fraction("1e999999999")``)."""
    oc = call_with_deadline(fn, *args, timeout=limit)
    if oc.timed_out:
        return "hung", None
    if not oc.ok:
        name, _, msg = (oc.error or "").partition(": ")
        if not msg or not name.isidentifier():
            name, msg = "RuntimeError", oc.error or "failed"
        return "error", type(name, (Exception,), {})(msg)
    return "ok", oc.value


def _picklable(obj: Any) -> bool:
    try:
        pickle.dumps(obj)
    except Exception:  # noqa: BLE001
        return False
    return True


def _call_method(obj: Any, meth: str, kwargs: dict) -> Any:
    return getattr(obj, meth)(**kwargs)


def _bad_values(out: Any, n: int) -> str | None:
    """Why ``out`` is not one float-or-None per completion, or None when it is."""
    if out is None or isinstance(out, (str, bytes, dict)) or not hasattr(out, "__len__"):
        return f"returned {type(out).__name__} {str(out)[:60]!r}, not a list"
    if len(out) != n:
        return f"returned {len(out)} values for {n} completions"
    for i, v in enumerate(out):
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return f"value {i} is {type(v).__name__} {v!r}, not a float"
        if not math.isfinite(v):
            return f"value {i} is {v!r}; return None for 'no opinion', never NaN or inf"
    return None


def _same(a: list, b: list) -> bool:
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if (x is None) != (y is None):
            return False
        if x is not None and abs(float(x) - float(y)) > 1e-9 * max(1.0, abs(float(x))):
            return False
    return True


# --------------------------------------------------------------------------
# rewards


def _reward_spec(obj: Any):
    if isinstance(obj, RewardSpec):
        return obj
    if isinstance(obj, str):
        return get_reward(obj)

    for spec in registries().rewards:
        if spec.func is obj:
            return spec
    return make_reward_spec(obj, None, Provenance("unregistered", None, None), {})


def _signature_problems(spec, columns: dict) -> list[tuple[str, str]]:
    try:
        sig = inspect.signature(spec.func)
    except (TypeError, ValueError) as exc:
        return [(f"its signature cannot be read ({exc})", "make it a Python function or an object with __call__.")]
    params = list(sig.parameters.values())
    out = []
    if not any(p.kind is p.VAR_KEYWORD for p in params):
        out.append(
            (
                f"{spec.name}{sig} has no **kwargs, but TRL passes {', '.join(TRL_KWARGS)} and every dataset column "
                "as keyword arguments",
                f"end the parameter list with **kwargs: def {spec.name}(completions, **kwargs).",
            )
        )
    for p in params:
        if p.kind is p.POSITIONAL_ONLY:
            out.append((f"parameter {p.name!r} is positional-only; TRL passes everything by keyword", f"remove the '/' so {p.name!r} can be passed by keyword."))
        elif p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.default is p.empty:
            if p.name not in TRL_KWARGS and p.name not in spec.requires:
                out.append(
                    (
                        f"parameter {p.name!r} has no default and is not declared in requires; a dataset without a "
                        f"{p.name!r} column makes every call fail at training time",
                        f"register it with requires=({p.name!r},) so runs check the column before training, "
                        f"or give the parameter a default ({p.name}=None).",
                    )
                )
    return out


def check_reward(reward: Any, /, **columns: Any) -> Report:
    """Check a reward function against the trainer's contract.

    ``reward`` is a registered name, a :class:`~grpo_core.plugins.registry.RewardSpec`
    or the function itself (its registered metadata is used when it is
    registered). ``columns`` are one dataset row's values, e.g.
    ``answer="42"``; each is repeated for every completion of a batch, the
    way TRL repeats a row for each generation.

    Checks: the signature fits TRL's keyword call; one float or None per
    completion; the same values for plain-string and chat-message completions;
    empty, huge, binary-looking and unicode completions are scored without an
    exception; determinism; the function pickles and runs in a worker process;
    its ``requires`` are declared and enough; it finishes within its declared
    ``timeout`` (or :data:`DEFAULT_TIME_LIMIT` seconds).

    A reward that runs in a worker process in training (``cpu_bound``, or a
    sync reward with a ``timeout``) is checked in one too, so the check is
    stopped at its limit even when the reward holds the GIL. Any reward that
    pickles has the edge cases run in a worker first: one that hangs on them
    fails "timeout" instead of hanging the check.
    """
    spec = _reward_spec(reward)
    rep = Report("reward", spec.name)
    func = spec.func
    limit = spec.timeout or (DEFAULT_CPU_BOUND_TIMEOUT if spec.cpu_bound else DEFAULT_TIME_LIMIT)
    guard = max(2 * limit, limit + 10.0)  # in-process calls: only to never hang the test run
    picklable = _picklable(func)
    in_process = picklable and (spec.cpu_bound or (spec.timeout is not None and not spec.is_async))

    # 1. signature
    for what, fix in _signature_problems(spec, columns):
        rep.fail("signature", what, fix)
    rep.ok("signature")

    # requires: example values for every declared column
    missing = [c for c in spec.requires if c not in columns]
    if missing:
        rep.fail(
            "requires",
            f"it declares requires={spec.requires!r} but the check got no example value for {', '.join(map(repr, missing))}",
            f"pass one row's values to the check: check_reward({spec.name!r}, {', '.join(f'{c}=...' for c in missing)}).",
        )
        return rep.raise_for_problems()
    if rep.failed("signature"):
        return rep.raise_for_problems()

    def run(completions: list, cols: dict, chat: bool = False) -> tuple[str, Any]:
        kw = _trl_kwargs(completions, cols, chat)
        if in_process:  # as the engine runs it: in a worker, without the unpicklable kwargs
            return _in_worker(_call_in_worker, (func, {k: v for k, v in kw.items() if k not in LOCAL_ONLY}), guard)
        return _guarded(lambda: _call(func, kw), guard)

    # 2. one value per completion, float or None
    typical = _typical_completions(columns)
    status, out = run(typical, columns)
    if status != "ok":
        what = f"it did not return within {guard:g}s" if status == "hung" else f"it raised {type(out).__name__}: {out}"
        rep.fail("values", f"on {len(typical)} ordinary completions {what}", "make the function return a list with one float (or None) per completion.")
        return rep.raise_for_problems()
    bad = _bad_values(out, len(typical))
    if bad:
        rep.fail("values", f"on {len(typical)} ordinary completions it {bad}", "return a list with exactly one float (or None) per completion, in order.")
        return rep.raise_for_problems()
    plain = list(out)
    rep.ok("values")

    # the time limit on the edge cases (huge included), in a worker before any in-process call on them,
    # so a reward that hangs on them holding the GIL fails here instead of hanging the check
    edges = edge_completions()
    names = list(edges)
    late: list[str] | None = None
    if picklable:
        edge_kw = {k: v for k, v in _trl_kwargs([edges[k] for k in names], columns, False).items() if k not in LOCAL_ONLY}
        if spec.cpu_bound:  # the engine gives each sample its own deadline
            outcomes = map_with_deadline(_call_in_worker, [(func, _slice(edge_kw, i)) for i in range(len(names))], timeout=limit)
            late = [k for k, oc in zip(names, outcomes) if oc.timed_out]
        else:
            oc = call_with_deadline(_call_in_worker, func, edge_kw, timeout=limit)
            late = names if oc.timed_out else []
    if late:
        declared = f"its declared timeout of {limit:g}s" if spec.timeout else f"{limit:g}s (no timeout declared)"
        rep.fail("timeout", f"it ran past {declared} on the edge cases ({', '.join(late)})",
                 "use linear-time parsing and cap the text you parse; if it is slow by nature, declare "
                 "register(..., timeout=SECONDS, cpu_bound=True).")
        if not in_process:  # in a thread it could not be stopped: no more calls on the edge cases
            return rep.raise_for_problems()
        # reported: the checks below leave out the cases it ran past its limit on, or each would wait out the guard
        names = [k for k in names if k not in late]

    # 3. determinism (the comparisons below rely on it)
    batch = typical + [edges[k] for k in names if k != "huge"]
    first, second = run(batch, columns), run(batch, columns)
    deterministic = True
    if first[0] == "ok" and second[0] == "ok" and not _bad_values(first[1], len(batch)):
        if not _same(list(first[1]), list(second[1])):
            deterministic = False
            rep.fail("determinism", f"two calls on the same batch gave {list(first[1])[:4]}... and then {list(second[1])[:4]}...",
                     "derive any randomness from the inputs (e.g. random.Random(completion_text)), and keep no state between calls.")
        else:
            rep.ok("determinism")

    # 4. string and chat-message completions give the same values
    status, out = run(typical, columns, chat=True)
    if status != "ok" or _bad_values(out, len(typical)):
        why = "did not return" if status == "hung" else f"raised {type(out).__name__}: {out}" if status == "error" else _bad_values(out, len(typical))
        rep.fail("chat", f"with chat-message completions ([{{'role': 'assistant', 'content': ...}}]) it {why}",
                 "read the text with grpo_core.kit.completion_text(completion), which accepts strings and chat messages.")
    elif deterministic and not _same(plain, list(out)):
        rep.fail("chat", f"plain strings score {plain} but the same text as chat messages scores {list(out)}",
                 "read the text with grpo_core.kit.completion_text(completion), which accepts strings and chat messages.")
    rep.ok("chat")

    # 5. edge cases: each must be scored without an exception
    status, out = run([edges[k] for k in names], columns) if names else ("ok", [])
    if status == "hung":
        rep.fail("edge cases", f"it did not return within {guard:g}s on the edge-case batch ({', '.join(names)})",
                 "use linear-time parsing (str.rfind, grpo_core.kit helpers) and cap the text you parse.")
        return rep.raise_for_problems()
    if status == "error" or _bad_values(out, len(names)):
        for k in names:
            st1, one = run([edges[k]], columns)
            if st1 == "error":
                rep.fail("edge cases", f"it raised {type(one).__name__}: {str(one)[:200]} on the {k!r} completion",
                         "return None for a completion you cannot score (None means 'no opinion'; TRL skips it), never raise.")
            elif st1 == "ok" and _bad_values(one, 1):
                rep.fail("edge cases", f"on the {k!r} completion it {_bad_values(one, 1)}", "return one float (or None) per completion.")
        if not rep.failed("edge cases"):
            rep.fail("edge cases", f"on the edge-case batch it {_bad_values(out, len(names)) if status == 'ok' else out}",
                     "score each completion on its own; one odd completion must not break the batch.")
    rep.ok("edge cases")

    # 6. requires: the declared columns are enough
    extra = [c for c in columns if c not in spec.requires]
    if extra:
        only = {c: v for c, v in columns.items() if c in spec.requires}
        status, out = run(typical, only)
        if status == "error":
            rep.fail("requires", f"with only its declared columns {spec.requires!r} it raised {type(out).__name__}: {out}",
                     f"add every column it reads to requires (one of {', '.join(map(repr, extra))}), so a run checks "
                     "the dataset before training.")
    rep.ok("requires")

    # 7. picklable, and the same values in a worker process
    shipped = {k: v for k, v in _trl_kwargs(typical, columns, False).items() if k not in LOCAL_ONLY}
    try:
        pickle.loads(pickle.dumps(func))
    except Exception as exc:  # noqa: BLE001
        rep.fail("picklable", f"it cannot be pickled ({type(exc).__name__}: {exc}), so it cannot run in a worker process",
                 "define it at module level in an importable module (not a lambda, closure or notebook cell); "
                 "for a parameterised reward use a class with __call__ and plain attributes.")
    else:
        oc = call_with_deadline(_call_in_worker, func, shipped, timeout=max(limit, 30.0))
        if not oc.ok:
            rep.fail("picklable", f"in a worker process it failed: {oc.error}",
                     "make the defining module importable by name in a fresh interpreter (installed, or on PYTHONPATH).")
        elif _bad_values(oc.value, len(typical)) or (deterministic and not _same(plain, list(oc.value))):
            rep.fail("picklable", f"in a worker process it scored {oc.value} but in-process {plain}",
                     "do not depend on process-local state (module globals changed at run time).")
    rep.ok("picklable")

    # 8. within the declared timeout, on the edge cases (run in a worker above)
    if late is not None and not rep.failed("picklable") and not rep.failed("edge cases"):
        rep.ok("timeout")
    return rep.raise_for_problems()


# --------------------------------------------------------------------------
# verifiers


def _adversarial_answers() -> dict[str, Any]:
    return {
        "none": None,
        "empty": "",
        "whitespace": "  \n ",
        "binary": "\x00\xff\x7f\ufffd",
        "huge_number": "9" * 100_000,
        "huge_exponent": "10**10**10**10",
        "tower": "9^9^9^9^9",
        "float_overflow": "1e999999999",
        "open_braces": "{" * 5000,
        "latex_broken": "\\frac{1}{" + "\\sqrt{" * 200,
        "boxed_nested": "\\boxed{" * 500 + "1" + "}" * 500,
        "unicode_digits": "٤٢",
        "nan": "nan",
        "division_by_zero": "1/0",
        "long_text": "the answer is " * 20_000,
        "number": "12",
    }


def _kwonly(func: Callable, names: tuple[str, ...]) -> bool:
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):
        return False
    return all(n in params and params[n].kind is inspect.Parameter.KEYWORD_ONLY for n in names)


def check_verifier(verifier: Any, /, *, golds: list[str]) -> Report:
    """Check an answer verifier against the contract.

    ``verifier`` is a registered name or the object. ``golds`` are gold
    answers of the kind the verifier is for (e.g. ``["42", "-3", "1,000"]``).

    Checks: ``verify(*, gold, pred)`` and ``check(*, gold, response)`` are
    keyword-only; every call returns a :class:`~grpo_core.kit.Verdict`
    with a reason; no call raises, and none takes longer than the verifier's
    ``timeout`` plus :data:`VERIFIER_GRACE`, on adversarial answers too;
    every gold verifies against itself, also when written in the reference
    reply format; an empty response is "no answer", not a match.

    Each call runs in a killable worker process (when the verifier pickles, as
    every ``grpo_core.Verifier`` does), so "never hangs" fails at its limit
    even when ``quick_compare``, which runs inline in training, holds the GIL
    (``Fraction("1e999999999")``).
    """
    if isinstance(verifier, str):
        name, verifier = verifier, get_verifier(verifier)
    else:
        name = getattr(verifier, "name", "") or type(verifier).__name__
    rep = Report("verifier", name)
    golds = [str(g) for g in golds]
    if not golds:
        raise ValueError("check_verifier needs at least one gold answer: check_verifier(v, golds=['42']).")
    limit = float(getattr(verifier, "timeout", 5.0) or 5.0) + VERIFIER_GRACE

    for meth, args in (("verify", ("gold", "pred")), ("check", ("gold", "response"))):
        if not callable(getattr(verifier, meth, None)):
            rep.fail("keyword-only API", f"it has no {meth}() method", "subclass grpo_core.Verifier and implement compare(gold, pred).")
        elif not _kwonly(getattr(verifier, meth), args):
            rep.fail("keyword-only API", f"{meth}{inspect.signature(getattr(verifier, meth))} does not take {' and '.join(args)} as keyword-only arguments",
                     f"define it as def {meth}(self, *, {', '.join(args)}) so gold and prediction cannot be swapped (grpo_core.Verifier does).")
    if not callable(getattr(verifier, "extract", None)):
        rep.fail("keyword-only API", "it has no extract(text) method", "add extract(text) -> str | None (grpo_core.Verifier has one).")
    if rep.problems:
        return rep.raise_for_problems()
    rep.ok("keyword-only API")

    shippable = _picklable(verifier)

    def call(meth: str, **kw) -> tuple[str, Any]:
        if shippable:
            return _in_worker(_call_method, (verifier, meth, kw), limit)
        return _guarded(lambda: getattr(verifier, meth)(**kw), limit)

    def judge(label: str, status: str, v: Any) -> Any:
        if status == "hung":
            rep.fail("never hangs", f"{label} did not return within {limit:g}s",
                     "run slow comparisons under a hard limit: subclass grpo_core.Verifier and put them in compare(), "
                     "which runs in a killable worker under `timeout`.")
            return None
        if status == "error":
            rep.fail("never raises", f"{label} raised {type(v).__name__}: {str(v)[:200]}",
                     "catch the exception and return Verdict.error(exc) or Verdict.pred_unparseable(reason) "
                     "(grpo_core.Verifier does this around compare()).")
            return None
        if not isinstance(v, Verdict):
            rep.fail("verdict", f"{label} returned {type(v).__name__} {str(v)[:60]!r}", "return a grpo_core.Verdict (Verdict.matched(), Verdict.different(reason), ...).")
            return None
        if not isinstance(v.reason, str) or not v.reason.strip():
            rep.fail("verdict", f"{label} returned a Verdict without a reason ({v.status.value})", "give every Verdict a short reason, e.g. Verdict.different('12 != 13').")
        return v

    for g in golds:
        v = judge(f"verify(gold={g!r}, pred={g!r})", *call("verify", gold=g, pred=g))
        if v is not None and not v.equal:
            rep.fail("gold verifies against itself", f"verify(gold={g!r}, pred={g!r}) is {v.status.value}: {v.reason}",
                     "either the gold answer is malformed (fix the data), or the verifier's parser misses this form (extend it).")
        reply = format_xml("Working it out.", g)
        v = judge(f"check(gold={g!r}, response=<reply in the reference format>)", *call("check", gold=g, response=reply))
        if v is not None and not v.equal:
            found = call("extract", text=reply)
            rep.fail("gold verifies against itself", f"check() on a reference-format reply answering {g!r} is {v.status.value}: {v.reason} "
                     f"(extract() found {found[1]!r})", "make extract() find the <answer> block (grpo_core.kit.extract_answer does).")
        v = judge(f"check(gold={g!r}, response='')", *call("check", gold=g, response=""))
        if v is not None and (v.equal or v.status is not VerdictStatus.NO_ANSWER):
            rep.fail("verdict", f"an empty response gave {v.status.value} ({v.reason})", "return Verdict.no_answer() when nothing can be extracted.")
    rep.ok("gold verifies against itself")

    gold = golds[0]
    for label, bad in _adversarial_answers().items():
        calls = ((f"verify(gold={gold!r}, pred=<{label}>)", "verify", {"gold": gold, "pred": bad}),
                 (f"check(gold={gold!r}, response=<{label}>)", "check", {"gold": gold, "response": bad}),
                 (f"verify(gold=<{label}>, pred={gold!r})", "verify", {"gold": bad, "pred": gold}))
        for what, meth, kw in calls:
            judge(what, *call(meth, **kw))
            if rep.failed("never hangs"):  # one hang is the finding; each further one would wait out the limit
                break
        if rep.failed("never hangs"):
            break
    for check in ("never raises", "never hangs", "verdict"):
        rep.ok(check)
    return rep.raise_for_problems()


# --------------------------------------------------------------------------
# datasets


REQUIRED_COLUMNS = ("prompt", "answer", "id", "source")


def _load(adapter: Any, split: str | None, limit: int | None):
    try:
        return adapter.load(split, limit=limit, gold_policy="report", verbose=False)
    except TypeError:
        return adapter.load(split, limit=limit)


def check_dataset(dataset: Any, /, *, split: str | None = None, limit: int | None = 50) -> Report:
    """Check a dataset adapter against the contract.

    ``dataset`` is a registered name or the adapter; ``split`` defaults to
    the adapter's first split; ``limit`` caps the rows loaded (None: all).

    Checks: ``load`` returns rows with ``prompt`` (chat messages ending with
    the user's turn), ``answer``, ``id`` and ``source``; the adapter names a
    registered verifier and every gold answer verifies against itself with
    it; ids are unique and the same on every load.
    """
    if isinstance(dataset, str):
        name, adapter = dataset, get_dataset(dataset)
    else:
        name, adapter = getattr(dataset, "name", "") or type(dataset).__name__, dataset
    rep = Report("dataset", name)
    where = f"load({split!r}, limit={limit})"
    vname = getattr(adapter, "verifier", None)
    verifier = None
    if not isinstance(vname, str) or not vname:
        rep.fail("gold answers parse", f"the adapter's verifier attribute is {vname!r}", "set verifier = 'NAME' to the registered verifier that checks its answers (see `grpo-core verifiers`).")
    else:
        try:
            verifier = get_verifier(vname)
        except Exception as exc:  # noqa: BLE001
            rep.fail("gold answers parse", f"its verifier {vname!r} is not available: {exc}", "name a registered verifier, or install the plugin that provides it.")
    if rep.problems:
        return rep.raise_for_problems()
    splits = getattr(adapter, "splits", None)
    if split is not None and isinstance(splits, (list, tuple)) and splits and split not in splits:
        rep.fail("schema", f"it has no split {split!r}", f"check one of its splits: split={splits[0]!r} (it has {', '.join(map(str, splits))}).")
        return rep.raise_for_problems()
    try:
        ds = _load(adapter, split, limit)
    except Exception as exc:  # noqa: BLE001
        rep.fail("schema", f"{where} raised {type(exc).__name__}: {exc}", "make load(split, limit=...) return a datasets.Dataset.")
        return rep.raise_for_problems()
    cols = list(getattr(ds, "column_names", []) or [])
    missing = [c for c in REQUIRED_COLUMNS if c not in cols]
    if missing:
        rep.fail("schema", f"{where} has columns {cols}, missing {missing}",
                 "subclass grpo_core.kit.DatasetAdapter and yield dicts with question, answer and id from rows(); load() adds the rest.")
        return rep.raise_for_problems()
    rows = [dict(r) for r in ds]
    if not rows:
        rep.fail("schema", f"{where} returned no rows", "check the split name and the data source.")
        return rep.raise_for_problems()
    for i, r in enumerate(rows):
        p = r["prompt"]
        if not (isinstance(p, list) and p and all(isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str) for m in p)):
            rep.fail("schema", f"row {i} (id={r['id']!r}): prompt is {str(p)[:80]!r}, not a list of chat messages",
                     "build prompts with grpo_core.kit.chat_prompt(question, system_prompt).")
            break
        if p[-1]["role"] != "user":
            rep.fail("schema", f"row {i} (id={r['id']!r}): the prompt ends with a {p[-1]['role']!r} message", "end the prompt with the user's question.")
            break
        for col in ("answer", "id", "source"):
            if not isinstance(r[col], str) or not r[col].strip():
                rep.fail("schema", f"row {i}: {col} is {r[col]!r}, not a non-empty string", f"give every row a {col} string.")
                break
    rep.ok("schema")

    if verifier is not None:
        golds = [str(r["answer"]) for r in rows]
        if callable(getattr(verifier, "verify_batch", None)):
            verdicts = verifier.verify_batch(list(zip(golds, golds)))
        else:
            verdicts = [verifier.verify(gold=g, pred=g) for g in golds]
        bad = [(r, v) for r, v in zip(rows, verdicts) if not v.equal]
        if bad:
            shown = "; ".join(f"id={r['id']!r} answer={r['answer']!r} ({v.status.value}: {v.reason})" for r, v in bad[:3])
            rep.fail("gold answers parse", f"{len(bad)} of {len(rows)} gold answers do not verify against themselves with {vname!r}: {shown}",
                     "normalise the answers in rows() to the form the verifier reads, or choose a verifier that reads them.")
    rep.ok("gold answers parse")

    ids = [r["id"] for r in rows]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        rep.fail("stable ids", f"ids repeat: {dupes[:5]}", "give every row a unique id, e.g. f'{name}/{split}/{index}'.")
    again = [dict(r)["id"] for r in _load(adapter, split, limit)]
    if again != ids:
        rep.fail("stable ids", "a second load gave different ids (or a different order)",
                 "derive ids from the data (source index or a content hash), never from random numbers or time; keep the order fixed.")
    if limit is None or limit > 2:
        head = [dict(r)["id"] for r in _load(adapter, split, 2)]
        if head != ids[:2]:
            rep.fail("stable ids", f"limit=2 gave ids {head}, not the first two of a larger load {ids[:2]}",
                     "apply limit by taking the first rows, so a smoke run sees the same rows as a full one.")
    rep.ok("stable ids")
    return rep.raise_for_problems()
