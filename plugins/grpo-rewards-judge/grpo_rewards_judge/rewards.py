"""The judge rewards: ``judge_score`` and ``judge_pairwise``.

TRL contract: ``reward(completions, prompts=..., answer=..., **kwargs) -> list[float | None]``.
Their settings are reward options (declared at registration from the
keyword-only parameters below, so the declared defaults are these defaults):
set them with ``--reward-option judge_score.model=...`` or the config's
``reward_options:``. The API key is never an option: it is read from the
environment variable named by ``api_key_env`` (``GRPO_JUDGE_API_KEY``), else
``OPENAI_API_KEY``.

``None`` means the judge abstained: it could not be reached, ran past its
timeout, answered with something that is not a score, or there was no
reference to compare with. The trainer leaves such samples out of the reward
sum (TRL's nansum), and the reward's metrics say how many and why.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Sequence

from grpo_core import ConfigError

from .cache import ReplyCache
from .client import RESPONSE_FORMATS, Endpoint, Reply, ask_many, run_sync
from .metrics import JudgeMetrics
from .parsing import parse_score, parse_winner
from .rubrics import Judgment, pairwise_judgment, rubric_text, score_judgment

DEFAULT_CACHE = "~/.cache/grpo-core/judge.sqlite3"


def _endpoint(base_url, model, api_key_env, timeout, retries, concurrency, temperature, max_tokens, response_format) -> Endpoint:
    problems = []
    if not str(base_url).startswith(("http://", "https://")):
        problems.append(f"base_url must be an http(s) URL such as http://127.0.0.1:8000/v1, got {base_url!r}")
    if not timeout > 0:
        problems.append(f"timeout must be a positive number of seconds, got {timeout!r}")
    if retries < 0:
        problems.append(f"retries must be 0 or more, got {retries!r}")
    if concurrency < 1:
        problems.append(f"concurrency must be 1 or more, got {concurrency!r}")
    if max_tokens < 1:
        problems.append(f"max_tokens must be 1 or more, got {max_tokens!r}")
    if response_format not in RESPONSE_FORMATS:
        problems.append(f"response_format must be one of {', '.join(RESPONSE_FORMATS)}, got {response_format!r}")
    if problems:
        raise ConfigError("judge reward options: " + "; ".join(problems) + ".")
    return Endpoint(str(base_url), str(model), str(api_key_env), float(timeout), int(retries), int(concurrency),
                    float(temperature), int(max_tokens), str(response_format))


def _judge(metrics: JudgeMetrics, ep: Endpoint, cache_path: str, judgments: Sequence[Judgment | str], schema: dict,
           read: Callable[[str, Judgment], tuple[float | None, float | None, str | None]]) -> list[float | None]:
    """Cache, then ask the judge for the misses, then read every reply with ``read`` (-> the reward, the
    judge's own score for the metrics, why there is none). A ``str`` in ``judgments`` is a sample that
    abstains before asking (the string is why)."""
    cache = ReplyCache.open(cache_path)
    asked = [j for j in judgments if isinstance(j, Judgment)]
    replies: dict[str, str] = cache.get_many(j.key for j in asked) if cache is not None else {}
    hits = sum(j.key in replies for j in asked)
    misses = list({j.key: j for j in asked if j.key not in replies}.values())
    fresh: list[Reply] = run_sync(ask_many(ep, [j.messages for j in misses], schema)) if misses else []
    failed: dict[str, str] = {}
    answered: dict[str, str] = {}
    for j, r in zip(misses, fresh):
        if r.text is None:
            failed[j.key] = r.reason or "no reply"
        else:
            answered[j.key] = r.text
    if cache is not None:
        cache.put_many(ep.model, answered)
    replies.update(answered)
    out: list[float | None] = []
    scores: list[float] = []
    reasons: list[str | None] = []
    for j in judgments:
        if isinstance(j, str):
            value, reason = None, j
        elif j.key in failed:
            value, reason = None, failed[j.key]
        else:
            value, raw, why = read(replies[j.key], j)
            reason = f"unparseable: {why}" if why else None
            if raw is not None:
                scores.append(raw)
        out.append(value)
        reasons.append(reason)
    metrics.record(calls=sum(r.called for r in fresh), cache_hits=hits, duplicates=len(asked) - hits - len(misses),
                   latencies=[r.seconds for r in fresh if r.text is not None], reasons=reasons, scores=scores)
    return out


def _reference(answer: Any, i: int) -> Any:
    if answer is None or isinstance(answer, str):
        return answer
    return answer[i] if i < len(answer) else None


def judge_score(
    completions: list,
    prompts: list | None = None,
    answer: list | None = None,
    *,
    base_url: str = "http://127.0.0.1:8000/v1",
    model: str = "default",
    rubric: str = "reasoning",
    score_min: int = 1,
    score_max: int = 10,
    show_reference: bool = False,
    temperature: float = 0.0,
    max_tokens: int = 32,
    concurrency: int = 8,
    timeout: float = 30.0,
    retries: int = 2,
    cache: str = DEFAULT_CACHE,
    response_format: str = "json_schema",
    api_key_env: str = "GRPO_JUDGE_API_KEY",
    **kwargs: Any,
) -> list[float | None]:
    """A judge model grades each completion on a rubric; the score maps to 0..1 (None: the judge abstained)."""
    if not score_min < score_max:
        raise ConfigError(f"judge_score: score_min must be below score_max, got {score_min}..{score_max}.")
    ep = _endpoint(base_url, model, api_key_env, timeout, retries, concurrency, temperature, max_tokens, response_format)
    text = rubric_text(rubric)
    prompts = list(prompts) if prompts is not None else [None] * len(completions)
    judgments: list[Judgment | str] = []
    for i, (p, c) in enumerate(zip(prompts, completions)):
        ref = _reference(answer, i) if show_reference else None
        if show_reference and (ref is None or not str(ref).strip()):
            judgments.append("no reference")
            continue
        judgments.append(score_judgment(ep.model, text, p, c, score_min, score_max, reference=ref))
    schema = {"type": "object", "properties": {"score": {"type": "integer", "enum": list(range(int(score_min), int(score_max) + 1))}},
              "required": ["score"], "additionalProperties": False}
    span = float(score_max - score_min)

    def read(reply: str, j: Judgment) -> tuple[float | None, float | None, str | None]:
        raw, why = parse_score(reply, score_min, score_max)
        return (None, None, why) if raw is None else ((raw - score_min) / span, raw, None)

    return _judge(judge_score.reward_metrics, ep, cache, judgments, schema, read)


def judge_pairwise(
    completions: list,
    prompts: list | None = None,
    answer: list | None = None,
    *,
    base_url: str = "http://127.0.0.1:8000/v1",
    model: str = "default",
    rubric: str = "pairwise",
    reference_column: str = "answer",
    win: float = 1.0,
    tie: float = 0.5,
    loss: float = 0.0,
    temperature: float = 0.0,
    max_tokens: int = 32,
    concurrency: int = 8,
    timeout: float = 30.0,
    retries: int = 2,
    cache: str = DEFAULT_CACHE,
    response_format: str = "json_schema",
    api_key_env: str = "GRPO_JUDGE_API_KEY",
    **kwargs: Any,
) -> list[float | None]:
    """A judge model compares each completion with the dataset's reference answer: win, tie or loss (None: abstained)."""
    ep = _endpoint(base_url, model, api_key_env, timeout, retries, concurrency, temperature, max_tokens, response_format)
    text = rubric_text(rubric)
    references = answer if reference_column == "answer" else kwargs.get(reference_column)
    if reference_column != "answer" and reference_column not in kwargs:
        raise ConfigError(f"judge_pairwise: the dataset has no column {reference_column!r} (reference_column); "
                          f"columns here: {', '.join(sorted(k for k in kwargs if isinstance(kwargs[k], list))) or 'answer'}.")
    prompts = list(prompts) if prompts is not None else [None] * len(completions)
    judgments: list[Judgment | str] = []
    for i, (p, c) in enumerate(zip(prompts, completions)):
        ref = _reference(references, i)
        if ref is None or not str(ref).strip():
            judgments.append("no reference")
        else:
            judgments.append(pairwise_judgment(ep.model, text, p, c, ref))
    schema = {"type": "object", "properties": {"winner": {"type": "string", "enum": ["A", "B", "tie"]}},
              "required": ["winner"], "additionalProperties": False}

    def read(reply: str, j: Judgment) -> tuple[float | None, float | None, str | None]:
        winner, why = parse_winner(reply)
        if winner is None:
            return None, None, why
        if winner == "tie":
            return float(tie), float(tie), None
        value = float(win) if winner == ("B" if j.swapped else "A") else float(loss)
        return value, value, None

    return _judge(judge_pairwise.reward_metrics, ep, cache, judgments, schema, read)


judge_score.reward_metrics = JudgeMetrics()
judge_pairwise.reward_metrics = JudgeMetrics()


def declared_options(func: Callable) -> dict[str, Any]:
    """The reward options of ``func``: its keyword-only parameters and their defaults (one source of truth)."""
    return {p.name: p.default for p in inspect.signature(func).parameters.values() if p.kind is p.KEYWORD_ONLY}
