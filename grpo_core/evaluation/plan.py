"""The held-out evaluation of a run: one split, greedy, at three points: the base model, after the SFT
warm-up (when there is one), and after GRPO, with strict and flexible accuracy, so that GRPO's own gain is a number."""

from __future__ import annotations

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


class EvalPlan:
    """Greedy evaluation on a held-out split: before training, after the SFT warm-up, after GRPO."""

    def __init__(self, dataset, verifier, spec: str, max_new_tokens: int, echo: Callable[[str], None]) -> None:
        self.dataset = dataset
        self.verifier = verifier
        self.spec = spec
        self.max_new_tokens = max_new_tokens
        self.echo = echo
        self.results: dict[str, Any] = {}

    @classmethod
    def from_config(cls, cfg, train_adapter, train_name: str, echo) -> "EvalPlan | None":
        if not cfg.eval_limit:
            return None

        if cfg.eval_dataset:
            name, split = parse_dataset_spec(cfg.eval_dataset)
            adapter = get_dataset(name)
        else:
            name, adapter = train_name, train_adapter
            split = getattr(adapter, "default_eval_split", None) or ("test" if "test" in adapter.splits else None)
            if split is None:
                return None
        ds = adapter.load(split, system_prompt=cfg.system_prompt, limit=cfg.eval_limit, verbose=False)
        max_new = int(cfg.grpo.get("max_completion_length", 256))
        return cls(ds, get_verifier(adapter.verifier), f"{name}:{split}", max_new, echo)

    def run(self, stage: str, model, tokenizer) -> dict:
        self.echo(f"evaluating ({stage}) on {self.spec}, {len(self.dataset)} problems, greedy...")
        on_gpu_when_available(model)
        res = evaluate_model(model, tokenizer, self.dataset, self.verifier, max_new_tokens=self.max_new_tokens, batch_size=32)
        m = res.metrics
        self.echo(f"  {stage}: accuracy strict {m['accuracy_strict']:.1%}, flexible {m['accuracy_flexible']:.1%}, "
                  f"format {m['format_rate']:.1%}, no answer {m['no_answer_rate']:.1%}")
        self.results[stage] = res
        return m

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
