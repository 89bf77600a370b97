"""Pre-flight checks: everything that can fail before the model loads.

Each check prints what it found and raises :class:`PreflightError` with the
fix when the run cannot work. ``grpo-core run --dry-run`` stops after them.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from grpo_core.errors import PreflightError
from grpo_core.kit.chat_templates import opens_think_tag, render_prompt
from grpo_core.kit.prompts import format_xml
from grpo_core.train import memory_plan


@dataclass
class PreflightReport:
    lines: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    def say(self, msg: str) -> None:
        self.lines.append(msg)

    def warn(self, msg: str) -> None:
        self.warnings.append(msg)
        self.lines.append(f"warning: {msg}")


def check_columns(dataset, engine, report: PreflightReport) -> None:
    cols = set(dataset.column_names)
    problems = []
    for r in engine.rewards:
        missing = [c for c in r.spec.requires if c not in cols]
        if missing:
            problems.append(f"reward {r.name!r} ({r.spec.provenance.describe()}) needs column(s) {missing}")
    if problems:
        raise PreflightError(
            "; ".join(problems) + f". The dataset has columns {sorted(cols)}. Choose a dataset that provides them, or drop the reward."
        )
    report.say(f"columns: {', '.join(sorted(cols))} (every reward's `requires` is met)")


def check_template(dataset, tokenizer, report: PreflightReport) -> str:
    rendered = render_prompt(tokenizer, dataset[0]["prompt"])
    report.say("first prompt as the model will see it:\n" + "\n".join("    " + ln for ln in rendered.splitlines()))
    tag = opens_think_tag(rendered)
    if tag:
        report.warn(
            f"the chat template already opens {tag!r} at the end of the prompt, so completions start inside it and "
            "format rewards that expect the model to write the opening tag will never fire."
        )
    return rendered


def prompt_lengths(tokenizer, prompts) -> list[int]:
    """Tokens of each prompt as the trainer will see it (chat template, generation prompt)."""
    return [len(tokenizer(render_prompt(tokenizer, p), add_special_tokens=False)["input_ids"]) for p in prompts]


def length_stats(lengths: list[int]) -> dict[str, Any]:
    return {"min": min(lengths), "mean": round(statistics.mean(lengths), 1), "max": max(lengths)}


def check_model_positions(max_positions: int | None, longest_prompt: int, max_prompt_length: int | None,
                          max_completion_length: int, report: PreflightReport) -> None:
    """The longest prompt (after the overlong-prompt policy) plus the longest completion must fit the model's
    positions: past max_position_embeddings a model writes noise, or fails in the middle of a run."""
    if not max_positions:
        return
    longest = min(longest_prompt, max_prompt_length) if max_prompt_length else longest_prompt
    report.facts["max_position_embeddings"] = max_positions
    if longest + max_completion_length <= max_positions:
        return
    room = max_positions - max_completion_length
    fixes = [f"--max-completion-length {max(max_positions - longest, 0)} or less"] if longest < max_positions else []
    if room > 0:
        fixes.append(f"--set max_prompt_length={room} (prompts over it are dropped; --set overlong_prompts=truncate shortens them)")
    raise PreflightError(
        f"the longest prompt ({longest} tokens) plus max_completion_length ({max_completion_length}) is "
        f"{longest + max_completion_length} tokens, more than the model's max_position_embeddings ({max_positions}). "
        f"Use {' or '.join(fixes) if fixes else 'a model with more positions'}."
    )


def check_lengths(dataset, tokenizer, max_prompt_length: int | None, policy: str, report: PreflightReport):
    lengths = prompt_lengths(tokenizer, dataset["prompt"])
    report.facts["prompt_tokens"] = length_stats(lengths)
    report.say(f"prompt tokens: min {min(lengths)}, mean {statistics.mean(lengths):.1f}, max {max(lengths)} over {len(lengths)} prompts")
    if max_prompt_length is None:
        return dataset
    over = [i for i, n in enumerate(lengths) if n > max_prompt_length]
    if not over:
        return dataset
    msg = f"{len(over)} of {len(lengths)} prompts are longer than max_prompt_length={max_prompt_length} tokens"
    if policy == "error":
        raise PreflightError(msg + "; raise it (--set max_prompt_length=N), or pass --set overlong_prompts=drop (or truncate).")
    if policy == "drop":
        keep = sorted(set(range(len(lengths))) - set(over))
        if not keep:
            raise PreflightError(msg + " (all of them); raise it with --set max_prompt_length=N.")
        report.warn(msg + "; dropped.")
        return dataset.select(keep)
    # truncate: shorten the last user message, keeping the system prompt and the question's end
    def shorten(row, idx):
        if idx not in over_set:
            return row
        msgs = [dict(m) for m in row["prompt"]]
        user = msgs[-1]
        ids = tokenizer(user["content"], add_special_tokens=False)["input_ids"]
        excess = lengths[idx] - max_prompt_length
        user["content"] = tokenizer.decode(ids[excess:])
        row["prompt"] = msgs
        return row

    over_set = set(over)
    report.warn(msg + "; the start of each such question was cut to fit.")
    return dataset.map(shorten, with_indices=True)


def batch_arithmetic(grpo_kwargs: dict, world_size: int, report: PreflightReport) -> dict:
    """Explain and check how prompts, completions and optimizer steps relate."""
    per_device = int(grpo_kwargs.get("per_device_train_batch_size", 8))
    accum = int(grpo_kwargs.get("gradient_accumulation_steps", 1))
    G = int(grpo_kwargs.get("num_generations", 8))
    spg = grpo_kwargs.get("steps_per_generation")
    gbs = grpo_kwargs.get("generation_batch_size")
    if spg is not None and gbs is not None:
        raise PreflightError("set steps_per_generation or generation_batch_size, not both.")
    if gbs is None:
        spg = int(spg or accum)
        gbs = per_device * world_size * spg
    else:
        gbs = int(gbs)
        if gbs % (per_device * world_size):
            raise PreflightError(
                f"generation_batch_size {gbs} must be a multiple of per_device_train_batch_size x processes = {per_device * world_size}."
            )
        spg = gbs // (per_device * world_size)
    if G < 2:
        raise PreflightError(f"num_generations must be at least 2 for group-relative advantages, got {G}.")
    if gbs % G:
        divisors = [d for d in range(2, gbs + 1) if gbs % d == 0]
        raise PreflightError(
            f"each generation round makes {gbs} completions (per_device_train_batch_size {per_device} x {world_size} process(es) "
            f"x steps_per_generation {spg}), which is not a multiple of num_generations={G}. Choose num_generations from "
            f"{divisors}, or set per_device_train_batch_size to a multiple of {G}."
        )
    prompts = gbs // G
    facts = {
        "completions_per_generation_round": gbs,
        "prompts_per_generation_round": prompts,
        "num_generations": G,
        "optimizer_steps_per_generation_round": math.ceil(spg / accum),
        "completions_per_optimizer_step": per_device * world_size * accum,
    }
    report.facts["batch"] = facts
    report.say(
        f"batch: {prompts} prompt(s) x {G} generations = {gbs} completions per generation round; "
        f"{facts['completions_per_optimizer_step']} completions per optimizer step; "
        f"{facts['optimizer_steps_per_generation_round']} optimizer step(s) per round"
    )
    return facts


def check_enough_rows(rows: int, batch: dict) -> None:
    """TRL's sampler takes whole rounds of distinct prompts; with fewer rows it yields none and trains 0 steps."""
    need = batch["prompts_per_generation_round"]
    if rows < need:
        raise PreflightError(
            f"{rows} training row(s) left (after the overlong-prompt policy), but each generation round takes {need} distinct prompts, "
            "so not a single step would run. Use more rows (--limit), raise --set max_prompt_length=N or pass --set overlong_prompts=truncate, "
            "or lower per_device_train_batch_size / steps_per_generation."
        )


def reward_smoke_test(dataset, engine, report: PreflightReport, n: int = 4) -> dict:
    """Score gold-formatted replies to catch broken rewards: each row's reference reply
    (``solution``) where the dataset has one, else its gold answer in the XML format."""
    rows = dataset.select(range(min(n, len(dataset))))
    if "solution" in rows.column_names and all(isinstance(s, str) and s.strip() for s in rows["solution"]):
        gold = list(rows["solution"])
    else:
        gold = [format_xml("Worked out step by step.", a) for a in rows["answer"]]
    cols = {c: rows[c] for c in rows.column_names if c != "prompt"}
    res = engine.score(gold, prompts=rows["prompt"], **cols)
    summary = {}
    for name in engine.names:
        vals = [v for v in res.values[name] if v is not None]
        st = res.stats[name]
        summary[name] = {"mean": (sum(vals) / len(vals)) if vals else None, "errors": st.errors, "timeouts": st.timeouts}
        if st.errors or st.timeouts:
            raise PreflightError(
                f"reward {name!r} failed on gold-formatted answers ({st.errors} errors, {st.timeouts} timeouts; last: {st.last_error}). "
                "Debug it with `grpo-core score --gold-format` before training."
            )
    report.facts["gold_smoke"] = summary
    report.say("rewards on gold-formatted answers: " + ", ".join(f"{k} {v['mean']:.2f}" if v["mean"] is not None else f"{k} None" for k, v in summary.items()))
    if all(v["mean"] in (None, 0.0) for v in summary.values()):
        report.warn("every reward scored 0 or None on gold-formatted answers; the rewards may not fit this dataset's answer format.")
    return summary


@dataclass
class VllmSetup:
    """What pre-flight needs to size a vLLM engine that will share this process's GPU."""

    model_path: str
    fraction: float | str  # a number, or "auto": pre-flight picks it (the chosen number goes in the facts)
    total_bytes: int
    load_in_4bit: bool
    max_model_len: int  # the engine's longest sequence (prompt + completion)
    grow_to_fit: bool = False  # raise max_model_len to fit the longest prompt and completion instead of warning


def check_vllm_memory(setup: VllmSetup, grpo_kwargs: dict, report: PreflightReport, max_prompt_length: int | None, world_size: int = 1) -> None:
    """Size vLLM's engine (:mod:`grpo_core.train.memory_plan`); the model length it should be given goes in
    ``report.facts["vllm_memory"]["max_model_len"]``, the fraction (``auto`` resolved) in ``["fraction"]``."""

    longest = report.facts["prompt_tokens"]["max"]
    if max_prompt_length:
        longest = min(longest, max_prompt_length)
    needed_len = longest + int(grpo_kwargs.get("max_completion_length") or 256)
    max_len = setup.max_model_len
    if needed_len > max_len and setup.grow_to_fit:
        max_len = -(-(needed_len + 64) // 128) * 128  # a margin for tokens a trainer adds, in whole blocks
    elif needed_len > max_len:
        report.warn(f"the longest prompt ({longest} tokens) plus max_completion_length comes to {needed_len} tokens, more than the "
                    f"engine's {max_len}; raise --set max_seq_length=N or lower --set max_prompt_length=N.")
    auto = setup.fraction == "auto"
    facts: dict[str, Any] = {"max_model_len": max_len, "fraction": setup.fraction, "fraction_auto": auto,
                             "gpu_total_gib": round(setup.total_bytes / memory_plan.GIB, 1)}
    report.facts["vllm_memory"] = facts
    try:
        from transformers import AutoConfig  # deferred: heavy (transformers)

        shapes = memory_plan.Shapes.from_config(AutoConfig.from_pretrained(setup.model_path).to_dict())
    except Exception as exc:  # noqa: BLE001  (an exotic config: say so, do not block the run)
        if auto:
            raise PreflightError(f"gpu_memory_utilization auto: vLLM's memory cannot be sized from {setup.model_path!r}'s config "
                                 f"({type(exc).__name__}: {exc}); pass a number instead, e.g. --gpu-memory-utilization 0.5.") from None
        report.say(f"vLLM memory: not sized ({type(exc).__name__}: {exc})")
        return
    per_process = report.facts["batch"]["completions_per_generation_round"] // max(1, world_size)
    need = memory_plan.vllm_need(shapes, sequences=per_process, max_len=max_len, round_len=needed_len, load_in_4bit=setup.load_in_4bit)
    fraction = memory_plan.auto_fraction(need, setup.total_bytes) if auto else setup.fraction
    facts["fraction"] = fraction
    line, warning = memory_plan.check_fraction(need, fraction, setup.total_bytes, auto=auto)
    facts.update(weights_gib=round(need.weights / memory_plan.GIB, 2), kv_round_gib=round(need.kv_round / memory_plan.GIB, 2),
                 smallest_fraction=round(need.floor / setup.total_bytes, 4), comfortable_fraction=round(need.comfortable / setup.total_bytes, 4))
    report.say(line)
    if warning:
        report.warn(warning)


def run_all(dataset, tokenizer, engine, cfg, grpo_kwargs: dict, world_size: int = 1, echo: Callable[[str], None] = print,
            vllm: VllmSetup | None = None, extra_checks: Sequence[Callable[[Any, PreflightReport], None]] = (),
            max_positions: int | None = None):
    """Every check in turn (``max_positions``: the model's max_position_embeddings, when it has one), then ``extra_checks`` (each sees the checked dataset), then the reward smoke test."""
    report = PreflightReport()
    check_columns(dataset, engine, report)
    report.say(f"rows: {len(dataset)} (gold answers were verified when the split loaded)")
    check_template(dataset, tokenizer, report)
    dataset = check_lengths(dataset, tokenizer, cfg.max_prompt_length, cfg.overlong_prompts, report)
    check_model_positions(max_positions, report.facts["prompt_tokens"]["max"], cfg.max_prompt_length,
                          int(grpo_kwargs.get("max_completion_length") or 256), report)
    batch = batch_arithmetic(grpo_kwargs, world_size, report)
    check_enough_rows(len(dataset), batch)
    if vllm is not None:
        check_vllm_memory(vllm, grpo_kwargs, report, cfg.max_prompt_length, world_size)
    for check in extra_checks:
        check(dataset, report)
    reward_smoke_test(dataset, engine, report)
    for ln in report.lines:
        echo("  " + ln if not ln.startswith("warning") else "  " + ln)
    return dataset, report
