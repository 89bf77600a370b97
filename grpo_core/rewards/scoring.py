"""Score given completions with chosen rewards: no model, no GPU.

This is the logic behind ``grpo-core score``. It runs rewards through
:class:`grpo_core.rewards.engine.RewardEngine`, the engine ``grpo-core run`` uses, with
the keyword arguments TRL passes during training, so a reward scores the same
here as in a run.

Completions come from a JSONL file, one object per line::

    {"id": "gsm8k/test/0", "completion": "<reasoning>...</reasoning><answer>18</answer>"}
    {"id": "gsm8k/test/0", "completion": [{"role": "assistant", "content": "..."}], "variant": "sampled"}

* ``completion`` (required): a string, or chat messages as TRL passes them;
* ``id``: the dataset row the completion answers; the row's columns
  (``answer``, ...) and prompt go to the rewards. Several lines may share an
  id, as the generations of one prompt do. Without ids, line *i* answers row
  *i* of the dataset (or no row at all when no dataset is given);
* ``variant``: a label to group results by (default ``file``).

Or, with ``gold_format=True``, completions are built from each row's gold
answer: a perfect reply and broken ones (see :data:`GOLD_VARIANTS`, or the
dataset adapter's own ``gold_variants``), so you can see at once what each
reward pays for what.

Stand-ins for what only a trainer has: ``completion_ids`` are the UTF-8 bytes
of each completion (lengths count bytes, not tokens) and ``trainer_state`` is
a :class:`ScoreState` at step 0. ``log_extra`` columns are kept per sample
and ``log_metric`` values are averaged.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

from grpo_core.errors import GrpoCoreError
from grpo_core.kit.datasets import parse_dataset_spec
from grpo_core.kit.extraction import completion_text, last_tag_block
from grpo_core.kit.prompts import format_xml
from grpo_core.plugins.lookup import get_dataset
from grpo_core.rewards.engine import RewardEngine, RewardStats
from grpo_core.rewards.selection import RewardSelection, options_text

DEFAULT_BATCH_SIZE = 64
FILE_VARIANT = "file"


@dataclass
class ScoreState:
    """What a reward may read from ``trainer_state`` when no trainer runs."""

    global_step: int = 0
    max_steps: int = 0
    epoch: float = 0.0
    log_history: list = field(default_factory=list)
    is_world_process_zero: bool = True


@dataclass
class Sample:
    completion: Any
    variant: str = FILE_VARIANT
    row: dict | None = None  #: the dataset row answered (its columns go to the rewards)
    fields: dict = field(default_factory=dict)  #: other keys of the JSONL line, echoed to --out

    @property
    def id(self) -> str | None:
        return None if self.row is None else self.row.get("id")


# --- where completions come from ----------------------------------------------


def load_rows(dataset_spec: str, limit: int | None = None) -> list[dict]:
    """Rows of ``name[:split]`` from the registered dataset adapter, as dicts."""
    name, split = parse_dataset_spec(dataset_spec)
    adapter = get_dataset(name)
    return [dict(r) for r in adapter.load(split, limit=limit)]


def read_completions(path) -> list[dict]:
    """The JSONL completions file, checked line by line."""
    out = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise GrpoCoreError(f"{path}:{lineno}: not JSON ({exc.msg}); write one JSON object per line.") from None
            if not isinstance(obj, dict) or "completion" not in obj:
                raise GrpoCoreError(f'{path}:{lineno}: each line needs a "completion" key, e.g. {{"id": "...", "completion": "..."}}.')
            c = obj["completion"]
            if not (isinstance(c, str) or (isinstance(c, list) and all(isinstance(m, dict) for m in c))):
                raise GrpoCoreError(f"{path}:{lineno}: completion must be a string or a list of chat messages, got {type(c).__name__}.")
            out.append(obj)
    if not out:
        raise GrpoCoreError(f"{path} holds no completions.")
    return out


def match_completions(lines: Sequence[dict], rows: Sequence[dict] | None) -> list[Sample]:
    """Pair completion lines with dataset rows: by ``id``, or line *i* with row *i*."""
    with_id = [ln for ln in lines if "id" in ln]
    samples = []
    if with_id:
        if len(with_id) != len(lines):
            raise GrpoCoreError("some completion lines have an id and some do not; give every line an id, or none (then line i answers row i).")
        if rows is None:
            raise GrpoCoreError("the completions name dataset ids; pass --dataset NAME[:SPLIT] to say which dataset.")
        by_id = {str(r["id"]): r for r in rows}
        unknown = [str(ln["id"]) for ln in lines if str(ln["id"]) not in by_id]
        if unknown:
            raise GrpoCoreError(
                f"{len(unknown)} completion ids are not in the dataset (first: {unknown[0]!r}); dataset ids look like "
                f"{next(iter(by_id), '(no rows)')!r}. Check --dataset NAME:SPLIT and raise --limit if it cuts the dataset short."
            )
        rowsel: Iterable = (by_id[str(ln["id"])] for ln in lines)
    elif rows is not None:
        if len(lines) > len(rows):
            raise GrpoCoreError(
                f"{len(lines)} completions without ids but only {len(rows)} dataset rows; add an \"id\" to each line "
                "or raise --limit."
            )
        rowsel = iter(rows)
    else:
        rowsel = (None for _ in lines)
    for ln, row in zip(lines, rowsel):
        rest = {k: v for k, v in ln.items() if k not in ("id", "completion", "variant")}
        samples.append(Sample(ln["completion"], str(ln.get("variant", FILE_VARIANT)), row, rest))
    return samples


def _reasoning(row: dict) -> str:
    sol = row.get("solution")
    found = last_tag_block(sol, "reasoning") if isinstance(sol, str) else None
    return found or "Let me work through the problem step by step."


def _wrong(gold: str) -> str:
    try:
        x = float(gold.replace(",", ""))
    except ValueError:
        return f"not {gold}"
    return str(int(x) + 1) if x.is_integer() else str(x + 1)


def _trailing(row: dict) -> str:
    return format_xml(_reasoning(row), row["answer"]) + "\nI hope this helps! Let me know if you have any other questions."


#: name -> (what it is, builder from a dataset row); the first is the perfect answer
GOLD_VARIANTS: dict[str, tuple[str, Callable[[dict], Any]]] = {}


def _variants() -> dict[str, tuple[str, Callable[[dict], Any]]]:
    if not GOLD_VARIANTS:
        GOLD_VARIANTS.update(
            {
                "perfect": ("the reference format with the gold answer", lambda r: format_xml(_reasoning(r), r["answer"])),
                "perfect_chat": ("the same, as chat messages", lambda r: [{"role": "assistant", "content": format_xml(_reasoning(r), r["answer"])}]),
                "wrong_answer": ("the reference format with a wrong answer", lambda r: format_xml(_reasoning(r), _wrong(str(r["answer"])))),
                "empty_answer": ("the reference format with an empty answer block", lambda r: format_xml(_reasoning(r), "")),
                "trailing_text": ("the perfect reply followed by chatter", _trailing),
                "answer_only": ("only the answer block", lambda r: f"<answer>\n{r['answer']}\n</answer>"),
                "swapped": ("the answer block before the reasoning block", lambda r: f"<answer>\n{r['answer']}\n</answer>\n<reasoning>\n{_reasoning(r)}\n</reasoning>"),
                "no_tags": ("the right answer in prose, no tags", lambda r: f"{_reasoning(r)}\nThe answer is {r['answer']}."),
                "boxed": ("the right answer in \\boxed{}, no tags", lambda r: f"{_reasoning(r)}\nSo the answer is \\boxed{{{r['answer']}}}."),
                "empty": ("an empty reply", lambda r: ""),
            }
        )
    return GOLD_VARIANTS


def dataset_variants(dataset_spec: str) -> dict[str, tuple[str, Callable[[dict], Any]]]:
    """The gold variants for ``name[:split]``: the adapter's own (``gold_variants``), else the core's."""
    own = getattr(get_dataset(parse_dataset_spec(dataset_spec)[0]), "gold_variants", None)
    return dict(own) if own else _variants()


def gold_format_samples(rows: Sequence[dict], variants: dict[str, tuple[str, Callable[[dict], Any]]] | None = None) -> list[Sample]:
    """Perfect and broken replies built from each row's gold answer (``variants``: the core's by default)."""
    out = []
    for name, (_, build) in (variants or _variants()).items():
        for r in rows:
            out.append(Sample(build(r), name, r))
    return out


# --- scoring ------------------------------------------------------------------


@dataclass
class ScoreReport:
    engine: RewardEngine
    samples: list[Sample]
    values: dict[str, list[float | None]]
    totals: list[float | None]
    stats: dict[tuple[str, str], RewardStats]  #: (variant, reward) -> what happened
    logs: list[dict]  #: per sample: the log_extra columns rewards wrote
    metrics: dict[str, list[float]]  #: log_metric values

    @property
    def variants(self) -> list[str]:
        return list(dict.fromkeys(s.variant for s in self.samples))


def _columns(rows: Sequence[dict | None]) -> dict[str, list]:
    present = [r for r in rows if r is not None]
    if not present:
        return {}
    if len(present) != len(rows):
        raise GrpoCoreError("some completions have a dataset row and some do not; score them separately.")
    keys = [k for k in present[0] if k not in ("prompt", "completion", "completion_ids")]
    return {k: [r.get(k) for r in present] for k in keys}


def check_requires(engine: RewardEngine, columns: Iterable[str]) -> None:
    have = set(columns)
    problems = []
    for r in engine.rewards:
        missing = [c for c in r.spec.requires if c not in have]
        if missing:
            problems.append(
                f"reward {r.name!r} ({r.spec.provenance.describe()}) needs the column(s) {', '.join(missing)}, "
                f"which {'the dataset lacks' if have else 'only a dataset provides; pass --dataset NAME[:SPLIT]'}"
            )
    if problems:
        raise GrpoCoreError("; ".join(problems) + ".")


def score_samples(engine: RewardEngine, samples: Sequence[Sample], batch_size: int = DEFAULT_BATCH_SIZE) -> ScoreReport:
    """Score ``samples`` in batches of one variant each, so statistics are exact per variant."""

    if batch_size < 1:
        raise GrpoCoreError(f"batch size must be at least 1, got {batch_size}.")
    rows0 = [s.row for s in samples[:1]]
    check_requires(engine, _columns(rows0).keys() if rows0 and rows0[0] is not None else ())
    n = len(samples)
    values: dict[str, list] = {name: [None] * n for name in engine.names}
    totals: list = [None] * n
    stats: dict[tuple[str, str], RewardStats] = {}
    logs: list[dict] = [{} for _ in range(n)]
    metrics: dict[str, list[float]] = {}
    order: dict[str, list[int]] = {}
    for i, s in enumerate(samples):
        order.setdefault(s.variant, []).append(i)
    state = ScoreState()
    for variant, idxs in order.items():
        for start in range(0, len(idxs), batch_size):
            chunk = idxs[start : start + batch_size]
            batch = [samples[i] for i in chunk]
            extra: dict[str, list] = {}
            cols = _columns([s.row for s in batch])
            prompts = [s.row.get("prompt") if s.row else None for s in batch]
            res = engine.score(
                [s.completion for s in batch],
                prompts=prompts,
                completion_ids=[list(completion_text(s.completion).encode("utf-8")) for s in batch],
                trainer_state=state,
                log_extra=lambda column, vals, _e=extra: _e.setdefault(column, []).extend(vals),
                log_metric=lambda name, value: metrics.setdefault(name, []).append(float(value)),
                **cols,
            )
            for name in engine.names:
                for j, i in enumerate(chunk):
                    values[name][i] = res.values[name][j]
                stats.setdefault((variant, name), RewardStats()).add(res.stats[name])
            for j, i in enumerate(chunk):
                totals[i] = res.totals[j]
                for column, vals in extra.items():
                    if len(vals) == len(chunk):
                        logs[i][column] = vals[j]
    return ScoreReport(engine, list(samples), values, totals, stats, logs, metrics)


def score(
    plugins: str,
    *,
    dataset: str | None = None,
    completions_path=None,
    gold_format: bool = False,
    limit: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_error: str = "none",
    reward_options: dict[str, dict[str, Any]] | None = None,
) -> ScoreReport:
    """Everything ``grpo-core score`` does before printing. ``reward_options``: reward -> option -> value."""
    if not completions_path and not gold_format:
        raise GrpoCoreError("nothing to score: pass --completions FILE.jsonl, --gold-format, or both.")
    if gold_format and not dataset:
        raise GrpoCoreError("--gold-format builds replies from gold answers; pass --dataset NAME[:SPLIT] too.")
    engine = RewardEngine.from_selection(RewardSelection.parse(plugins, reward_options), on_error=on_error)
    try:
        lines = read_completions(completions_path)[:limit] if completions_path else []
        by_id = any("id" in ln for ln in lines)
        rows_wanted = None if by_id else max(len(lines), limit or 0) or limit
        rows = load_rows(dataset, limit=rows_wanted) if dataset else None
        samples = match_completions(lines, rows) if lines else []
        if gold_format:
            samples += gold_format_samples(rows[:limit] if limit else rows, dataset_variants(dataset))
        if not samples:
            raise GrpoCoreError("nothing to score: the dataset returned no rows.")
        return score_samples(engine, samples, batch_size)
    finally:
        engine.close()


# --- output -------------------------------------------------------------------


def _fmt(x: float | None, spec: str = ".3f") -> str:
    return "-" if x is None else format(x, spec)


def _summary(vals: list[float | None]) -> dict:
    nums = [v for v in vals if v is not None]
    return {
        "n": len(vals),
        "mean": sum(nums) / len(nums) if nums else None,
        "min": min(nums) if nums else None,
        "max": max(nums) if nums else None,
        "none": (len(vals) - len(nums)) / len(vals) if vals else 0.0,
    }


def summarize(report: ScoreReport) -> dict:
    """Per reward and variant: n, mean, min, max, share of None, errors, timeouts, latency."""
    out: dict[str, dict] = {}
    by_variant = {v: [i for i, s in enumerate(report.samples) if s.variant == v] for v in report.variants}
    for name in [*report.engine.names, "total"]:
        vals = report.totals if name == "total" else report.values[name]
        rows = {}
        for variant, idxs in [*by_variant.items(), ("all", list(range(len(report.samples))))]:
            d = _summary([vals[i] for i in idxs])
            if name != "total":
                st = RewardStats()
                for v in by_variant if variant == "all" else [variant]:
                    st.add(report.stats[(v, name)])
                d.update(errors=st.errors, timeouts=st.timeouts, ms_per_sample=1000 * st.seconds / max(1, st.samples),
                         last_error=st.last_error)
            rows[variant] = d
        out[name] = rows
    return out


def format_report(report: ScoreReport) -> str:
    """The tables ``grpo-core score`` prints: one per reward, then the weighted total."""
    summary = summarize(report)
    blocks = []
    for r in report.engine.rewards:
        head = f"{r.name}  (weight {r.weight:g}; {r.spec.provenance.describe()}{options_text(r.spec.options)})"
        cols = ["variant", "n", "mean", "min", "max", "none", "errors", "timeouts", "ms/sample"]
        lines = [[v, str(d["n"]), _fmt(d["mean"]), _fmt(d["min"]), _fmt(d["max"]), f"{d['none']:.0%}", str(d["errors"]),
                  str(d["timeouts"]), f"{d['ms_per_sample']:.3f}"] for v, d in summary[r.name].items()]
        blocks.append(_table(head, cols, lines))
        last = summary[r.name]["all"]["last_error"]
        if last:
            blocks[-1] += f"\n  last error: {last}"
    cols = ["variant", "n", "mean", "min", "max", "none"]
    lines = [[v, str(d["n"]), _fmt(d["mean"]), _fmt(d["min"]), _fmt(d["max"]), f"{d['none']:.0%}"] for v, d in summary["total"].items()]
    weights = " + ".join(f"{r.weight:g}*{r.name}" for r in report.engine.rewards)
    blocks.append(_table(f"total  ({weights}; None rewards skipped)", cols, lines))
    for name, totals in report.engine.reported_totals().items():
        if totals:
            blocks.append(f"{name} reports:\n" + "\n".join(f"  {k} = {_reported(v)}" for k, v in totals.items()))
    if report.metrics:
        blocks.append("metrics logged with log_metric (mean):\n" + "\n".join(
            f"  {k} = {sum(v) / len(v):.4g}" for k, v in sorted(report.metrics.items())))
    return "\n\n".join(blocks)


def _reported(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_reported(v)}" for k, v in value.items()) or "-"
    return str(value)


def _table(title: str, cols: list[str], lines: list[list[str]]) -> str:
    widths = [max(len(c), *(len(ln[i]) for ln in lines)) for i, c in enumerate(cols)]
    def fmt(cells):
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([title, fmt(cols), *(fmt(ln) for ln in lines)])


def write_jsonl(report: ScoreReport, path) -> int:
    """One line per sample: id, variant, completion, each reward, the total, logs."""
    with open(path, "w", encoding="utf-8") as f:
        for i, s in enumerate(report.samples):
            obj = {
                "id": s.id,
                "variant": s.variant,
                "completion": s.completion,
                "rewards": {name: report.values[name][i] for name in report.engine.names},
                "total": report.totals[i],
                **({"logs": report.logs[i]} if report.logs[i] else {}),
                **s.fields,
            }
            f.write(json.dumps(obj, ensure_ascii=False, default=_jsonable) + "\n")
    return len(report.samples)


def _jsonable(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return str(x)
