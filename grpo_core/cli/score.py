"""``grpo-core score``: run rewards over given completions, without a model."""

from __future__ import annotations

import click

from grpo_core.config.reward_selection import parse_option_pairs
from grpo_core.plugins import load_plugin_file
from grpo_core.rewards.scoring import format_report, score as run_score, write_jsonl


@click.command()
@click.option("--plugins", "plugins_", required=True, help="Rewards to run, NAME[:WEIGHT],... as for `grpo-core run`, e.g. xml,correctness:2.")
@click.option("--dataset", help="The dataset the completions answer, NAME[:SPLIT], e.g. gsm8k:test. Its columns go to the rewards.")
@click.option("--completions", "completions_path", type=click.Path(exists=True, dir_okay=False),
              help="JSONL file of completions to score (format above).")
@click.option("--gold-format", is_flag=True, help="Also score replies built from each gold answer: a perfect one and broken variants.")
@click.option("--limit", type=click.IntRange(min=1), help="Use at most N completions lines and N dataset rows.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, writable=True), help="Write one JSON line per sample: id, variant, rewards, total, logs.")
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True, help="Completions per reward call.")
@click.option("--on-reward-error", "on_error", type=click.Choice(["none", "zero", "raise"]), default="none", show_default=True,
              help="What a failing sample scores: None (counted as an error), 0.0, or stop.")
@click.option("--reward-option", "reward_option_pairs", multiple=True, metavar="REWARD.NAME=VALUE",
              help="Set an option a reward declares (`grpo-core rewards` lists them), as for `grpo-core run`. Repeatable.")
@click.option("--plugin-file", "plugin_files", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="Load a single-file plugin (a .py with @hookimpl functions) before scoring; repeatable.")
def score(plugins_, dataset, completions_path, gold_format, limit, out_path, batch_size, on_error, reward_option_pairs, plugin_files):
    """Score completions with rewards: a table per reward, no model or GPU.

    Rewards run through the same engine as `grpo-core run`, with the keyword
    arguments TRL passes, so scores here match scores in training. Each table
    shows, per variant: mean, min, max, the share of None, errors, timeouts
    and latency (the wall time of the reward's calls per sample).

    --completions reads one JSON object per line: "completion" is a string or
    chat messages; "id" names the dataset row it answers (several lines may
    share one; without ids, line i answers row i); "variant" labels a group
    of lines (default "file"). Other keys are copied to --out.

    --gold-format builds replies from each row's gold answer: perfect,
    perfect_chat, wrong_answer, empty_answer, trailing_text, answer_only,
    swapped, no_tags, boxed and empty. A reward that pays a broken variant as
    much as the perfect one can be gamed.

    Exits 1 when a reward failed (raised, broke the value contract or timed
    out) on every sample: its table would otherwise read as a score.

    \b
    Examples:
      grpo-core score --plugins xml,correctness --dataset gsm8k:test --gold-format --limit 20
      grpo-core score --plugins xml --dataset gsm8k:test --completions samples.jsonl --out scored.jsonl
    """
    for path in plugin_files:
        load_plugin_file(path)
    report = run_score(
        plugins_,
        dataset=dataset,
        completions_path=completions_path,
        gold_format=gold_format,
        limit=limit,
        batch_size=batch_size,
        on_error=on_error,
        reward_options=parse_option_pairs(reward_option_pairs, "--reward-option", nested=True),
    )
    click.echo(format_report(report))
    if out_path:
        n = write_jsonl(report, out_path)
        click.echo(f"\nwrote {n} scored samples to {out_path}")
    failed = [name for name, st in report.engine.totals.items() if st.samples and st.failed >= st.samples]
    if failed:
        click.echo(f"\nError: {', '.join(failed)} failed on every sample (see the last error above); "
                   "the values are not scores.", err=True)
        raise SystemExit(1)
