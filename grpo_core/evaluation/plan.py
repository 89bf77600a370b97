"""The held-out evaluation of a run: one split, greedy, at three points: the base model, after the SFT
warm-up (when there is one), and after GRPO, with strict and flexible accuracy, so that GRPO's own gain is a number."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

from grpo_core.evaluation.engines import evaluate_model
from grpo_core.kit.datasets import parse_dataset_spec
from grpo_core.plugins.lookup import get_dataset, get_verifier
from grpo_core.runtime.hardware import cuda_available


#: name -> (from stage, to stage): what each part of the run added
GAINS = {"total": ("before", "after"), "sft": ("before", "after_sft"), "grpo": ("after_sft", "after")}
STAGE_LABELS = {"before": "base", "after_sft": "after SFT warm-up", "after": "after GRPO"}


def stage_gain(results: dict, a: str, b: str) -> dict[str, float] | None:
    """Points of strict and flexible accuracy (and format rate) from stage ``a`` to stage ``b`` (None when either is missing)."""
    if a not in results or b not in results:
        return None
    ma, mb = results[a].metrics, results[b].metrics
    return {k: mb[k] - ma[k] for k in ("accuracy_strict", "accuracy_flexible", "format_rate") if k in ma and k in mb}


def on_gpu_when_available(model) -> None:
    """Move ``model`` (in place) to the GPU when there is one and its weights are still on the CPU: the trl
    backend's policy stays on the CPU until the trainer is built, so the "before" evaluation would generate on the CPU."""
    first = next(iter(model.parameters()), None) if hasattr(model, "parameters") else None
    if first is not None and first.device.type == "cpu" and cuda_available():
        model.to("cuda")


@dataclass
class RecordedResult:
    """A stage evaluated by an earlier process of a resumed run: its metrics from run.json, no completions."""

    metrics: dict[str, Any]
    problems: list[dict] = field(default_factory=list)


class EvalPlan:
    """Greedy evaluation on a held-out split: before training, after the SFT warm-up, after GRPO."""

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
        # the training dataset's options hold for its own held-out split; another --eval-dataset gets none
        options = {} if cfg.eval_dataset else cfg.dataset_options
        ds = adapter.load(split, system_prompt=cfg.system_prompt, limit=cfg.eval_limit, verbose=False, **options)
        max_new = int(cfg.grpo.get("max_completion_length", 256))
        return cls(ds, get_verifier(adapter.verifier), f"{name}:{split}", max_new, echo)

    def run(self, stage: str, model, tokenizer) -> dict:
        self.echo(f"evaluating ({stage}) on {self.spec}, {len(self.dataset)} problems, greedy...")
        on_gpu_when_available(model)
        res = evaluate_model(model, tokenizer, self.dataset, self.verifier, max_new_tokens=self.max_new_tokens, batch_size=32,
                             progress=self._progress(stage))
        m = res.metrics
        self.echo(f"  {stage}: accuracy strict {m['accuracy_strict']:.1%}, flexible {m['accuracy_flexible']:.1%}, "
                  f"format {m['format_rate']:.1%}, no answer {m['no_answer_rate']:.1%}")
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
        """Each stage's metrics, and the gains: the whole run's, the SFT warm-up's, and GRPO's own."""
        out: dict[str, Any] = {"dataset": self.spec}
        for stage, res in self.results.items():
            out[stage] = res.metrics
        if "before" in self.results and "after" in self.results:
            out["accuracy_delta"] = self.results["after"].metrics["accuracy"] - self.results["before"].metrics["accuracy"]
        gains = {name: stage_gain(self.results, a, b) for name, (a, b) in GAINS.items()}
        out["gains"] = {k: v for k, v in gains.items() if v is not None}
        return out
