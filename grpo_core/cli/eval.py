"""``grpo-core eval``: strict and flexible accuracy, pass@k and maj@k with the verifier that rewarded training."""

from __future__ import annotations

import json

import click

from grpo_core.config.reward_selection import parse_option_pairs
from grpo_core.evaluation.evaluate import EvalRequest, run_eval


@click.command("eval")
@click.option("--model", help="Base model: hub id, local folder or .gguf file. Optional with --adapter (read from run.json or the adapter).")
@click.option("--adapter", help="A run folder (run.json + adapter/) or an adapter folder.")
@click.option("--dataset", required=True, help="NAME[:SPLIT], e.g. gsm8k:test, aime:2025, math500:test.")
@click.option("--dataset-option", "dataset_option", multiple=True, metavar="KEY=VALUE",
              help="An option of the dataset adapter, e.g. path=data.jsonl (repeatable). Default: the run's own, when it trained on this dataset.")
@click.option("--verifier", help="Verifier name (default: the dataset adapter's).")
@click.option("--samples", "-k", type=int, default=1, show_default=True, help="Completions per problem (K for pass@k, maj@K).")
@click.option("--temperature", type=float, help="Sampling temperature (default 0 = greedy for 1 sample, 1.0 for several).")
@click.option("--limit", type=int, help="Only the first N problems.")
@click.option("--out", help="Per-problem JSONL (default eval-NAME-SPLIT.jsonl); a .summary.json is written beside it.")
@click.option("--compare-base", is_flag=True, help="Also run the base model on the same prompts and seed, and print both side by side.")
@click.option("--max-new-tokens", type=int, default=512, show_default=True, help="Longest completion, in tokens.")
@click.option("--engine", type=click.Choice(["auto", "hf", "vllm"]), default="auto", show_default=True, help="vLLM on a GPU when available, else HF generate.")
@click.option("--gpu-memory-utilization", type=float, default=0.85, show_default=True, help="vLLM: fraction of GPU memory to reserve.")
@click.option("--seed", type=int, default=0, show_default=True, help="Sampling seed (the same for base and adapter).")
@click.option("--chat-template", help="chatml, llama-3.1, qwen2.5 or a .jinja file (default: the tokenizer's).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout (progress goes to stderr).")
def eval_(as_json, **opts):
    """Evaluate a model (and its GRPO adapter) on a dataset with its verifier.

    Reports strict accuracy (the answer in the format's slot), flexible accuracy
    (the answer a grader finds anywhere) and the format-reward rate side by side,
    unbiased pass@k, maj@k, and "no answer found" apart from "wrong"; writes one JSON line per problem
    (and per model with --compare-base) with completions, extracted answers and
    verdicts with reasons.
    """

    opts["dataset_options"] = parse_option_pairs(opts.pop("dataset_option"), "--dataset-option", nested=False)
    req = EvalRequest(**opts)
    echo = (lambda s: click.echo(s, err=True)) if as_json else click.echo
    summary = run_eval(req, echo=echo)
    if as_json:
        click.echo(json.dumps(summary, indent=2))
