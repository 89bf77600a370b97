"""What the training curves mean, in plain words, and what to try.

Read from the logged steps (the progress callback's history), comparing the first and the
last ``window`` logged steps once there are ``2 * window`` of them. Each finding is said once,
on the progress output, and kept for run.json and the report:

* ``format_not_task``: format rewards saturate while correctness stays flat;
* ``length_to_cap``: completions grow until max_completion_length cuts them;
* ``entropy_collapse``: the policy's entropy collapses (it samples one answer every time);
* ``mismatch_growing``: the sampler/trainer log-prob mismatch grows.
"""

from __future__ import annotations

from dataclasses import dataclass

MISMATCH_KEYS = ("mismatch/logp_diff_mean", "sampling/sampling_logp_difference/mean")


@dataclass
class Finding:
    kind: str
    message: str
    step: int


def is_format_reward(name: str) -> bool:
    return "format" in name or name == "xml"


def is_correctness_reward(name: str) -> bool:
    return "correct" in name


class Diagnosis:
    def __init__(self, reward_names: list[str], window: int = 5) -> None:
        self.names = reward_names
        self.window = window
        self.findings: list[Finding] = []

    def _ends(self, history: list[dict], key: str) -> tuple[float, float, float] | None:
        vals = [h[key] for h in history if isinstance(h.get(key), (int, float))]
        if len(vals) < 2 * self.window:
            return None
        w = self.window
        return sum(vals[:w]) / w, sum(vals[-w:]) / w, max(vals)

    def update(self, history: list[dict]) -> list[Finding]:
        """New findings since the last call."""
        seen = {f.kind for f in self.findings}
        step = history[-1].get("step", len(history)) if history else 0
        new = [Finding(kind, msg, step) for kind, msg in self._check(history) if kind not in seen]
        self.findings += new
        return new

    def _check(self, history: list[dict]):
        correct = [(n, e) for n in self.names if is_correctness_reward(n) and (e := self._ends(history, f"rewards/{n}/mean"))]
        for n in self.names:
            if not is_format_reward(n):
                continue
            e = self._ends(history, f"rewards/{n}/mean")
            if not e or not correct:
                continue
            first, last, top = e
            rose = top > 0 and last >= 0.85 * top and last - first >= 0.2 * top
            flat = all(abs(ce[1] - ce[0]) < 0.05 for _, ce in correct)
            if rose and flat:
                c_name, (c0, c1, _) = correct[0]
                yield ("format_not_task",
                       f"the format rewards are saturating ({n} {first:.2f} -> {last:.2f}) while correctness is flat ({c_name} {c0:.2f} -> {c1:.2f}): "
                       "the model has learned the answer format but not the task. Try: more steps from here, a heavier correctness weight "
                       "(--plugins ...,correctness:2), flexible correctness, easier problems, or an SFT warm-up on worked solutions.")
                break
        e = self._ends(history, "completions/clipped_ratio")
        if e and e[1] >= 0.3 and e[1] - e[0] >= 0.15:
            lens = self._ends(history, "completions/mean_length")
            grew = f"mean length {lens[0]:.0f} -> {lens[1]:.0f} tokens, " if lens else ""
            yield ("length_to_cap",
                   f"completions are growing to the cap ({grew}{e[1]:.0%} cut at max_completion_length, from {e[0]:.0%}): a cut completion loses "
                   "its closing tags and answer, so its rewards drop. Try: a longer --max-completion-length, --set mask_truncated_completions=true, "
                   "or --set loss_type=dr_grpo (no length bias).")
        e = self._ends(history, "entropy")
        if e and e[0] > 0 and e[1] < 0.3 * e[0] and e[1] < 0.2:
            yield ("entropy_collapse",
                   f"the policy's entropy is collapsing ({e[0]:.2f} -> {e[1]:.2f} nats/token): it samples nearly the same completion every time, "
                   "so groups tie and learning stops. Try: a lower learning rate, --set epsilon_high=0.28 (DAPO's clip-higher), "
                   "a higher temperature, or --dynamic-sampling.")
        for key in MISMATCH_KEYS:
            e = self._ends(history, key)
            if e and e[1] > 0.05 and e[1] > 2 * e[0]:
                yield ("mismatch_growing",
                       f"the sampler/trainer mismatch is growing ({e[0]:.3f} -> {e[1]:.3f} nats/token between vLLM's and the trainer's log-probs): "
                       "the samples come from a policy further and further from the one being trained. Try: keep --set mismatch_correction=token_truncate on, "
                       "a lower learning rate, or check the weight sync (--set fast_vllm_sync=false uses TRL's).")
                break
