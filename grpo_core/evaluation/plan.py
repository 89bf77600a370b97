"""The held-out evaluation of a run: one split, greedy, before and after training."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

from grpo_core.evaluation.engines import evaluate_model
from grpo_core.kit.datasets import parse_dataset_spec
from grpo_core.plugins.lookup import get_dataset, get_verifier


@dataclass
class RecordedResult:
    """A stage evaluated by an earlier process of a resumed run: its metrics from run.json, no completions."""

    metrics: dict[str, Any]
    problems: list[dict] = field(default_factory=list)


class EvalPlan:
    """Greedy evaluation on a held-out split, before and after training."""

    def __init__(self, dataset, verifier, spec: str, max_new_tokens: int, echo: Callable[[str], None]) -> None:
        self.dataset = dataset
        self.verifier = verifier
        self.spec = spec
        self.max_new_tokens = max_new_tokens
        self.echo = echo
        self.results: dict[str, Any] = {}

    @staticmethod
    def target(cfg, train_adapter, train_name: str) -> tuple[Any, str | None, str]:
        """(adapter, its split or None when there is no evaluation, a line saying which split or why none).

        Without ``eval_dataset`` the training adapter's own held-out split is used (its ``default_eval_split``,
        else ``test``); an adapter with neither gets no evaluation, and the line says so."""
        if not cfg.eval_limit:
            return None, None, "evaluation: off (eval_limit 0)"
        if cfg.eval_dataset:
            name, split = parse_dataset_spec(cfg.eval_dataset)
            adapter = get_dataset(name)
            split = split or getattr(adapter, "default_eval_split", None) or ("test" if "test" in adapter.splits else adapter.splits[0])
        else:
            name, adapter = train_name, train_adapter
            split = getattr(adapter, "default_eval_split", None) or ("test" if "test" in adapter.splits else None)
            if split is None:
                return None, None, (f"evaluation: skipped: dataset {name!r} has no test split (its splits: {', '.join(adapter.splits)}); "
                                    "pass --eval-dataset NAME:SPLIT to evaluate before and after training")
        return adapter, split, f"evaluation: {name}:{split}, up to {cfg.eval_limit} problems, before and after training"

    @classmethod
    def from_config(cls, cfg, train_adapter, train_name: str, echo) -> "EvalPlan | None":
        adapter, split, _ = cls.target(cfg, train_adapter, train_name)
        if split is None:
            return None
        name = parse_dataset_spec(cfg.eval_dataset)[0] if cfg.eval_dataset else train_name
        ds = adapter.load(split, system_prompt=cfg.system_prompt, limit=cfg.eval_limit, verbose=False)
        max_new = int(cfg.grpo.get("max_completion_length", 256))
        return cls(ds, get_verifier(adapter.verifier), f"{name}:{split}", max_new, echo)

    def run(self, stage: str, model, tokenizer) -> dict:
        self.echo(f"evaluating ({stage}) on {self.spec}, {len(self.dataset)} problems, greedy...")
        res = evaluate_model(model, tokenizer, self.dataset, self.verifier, max_new_tokens=self.max_new_tokens, batch_size=32,
                             progress=self._progress(stage))
        m = res.metrics
        self.echo(f"  {stage}: accuracy {m['accuracy']:.1%}, format {m['format_rate']:.1%}, no answer {m['no_answer_rate']:.1%}")
        self.results[stage] = res
        return m

    def _progress(self, stage: str) -> Callable[[int, int], None]:
        """A line about every tenth of a long evaluation (more than one batch), so it never looks hung."""
        started = time.monotonic()
        said = {"tenth": 0}

        def progress(done: int, total: int) -> None:
            tenth = done * 10 // max(total, 1)
            if done < total and tenth > said["tenth"]:
                said["tenth"] = tenth
                self.echo(f"  evaluating ({stage}): {done}/{total} problems, {time.monotonic() - started:.0f}s")

        return progress

    def restore(self, summary: dict[str, Any] | None) -> None:
        """Take back the stages run.json recorded for this split (a resumed run keeps its "before")."""
        if not summary or summary.get("dataset") != self.spec:
            return
        for stage in ("before", "after"):
            if stage in summary and stage not in self.results:
                self.results[stage] = RecordedResult(summary[stage])

    def summary(self) -> dict:
        out: dict[str, Any] = {"dataset": self.spec}
        for stage, res in self.results.items():
            out[stage] = res.metrics
        if "before" in self.results and "after" in self.results:
            out["accuracy_delta"] = self.results["after"].metrics["accuracy"] - self.results["before"].metrics["accuracy"]
        return out
