"""``log_rollouts``: every training completion, its rewards and its advantage, one JSON line each.

TRL scores each process's completions on that process, gathers the scores of all processes, normalises
them per prompt group, and keeps the gathered prompts, completions, rewards and advantages of the
latest round (``trainer._logs``, what its completion tables show). After each generation round
(dynamic sampling's extra rounds included) the main process appends that round to ``rollouts.jsonl``:

    {"step": 3, "round": 0, "row": 5, "prompt": "...", "completion": "...",
     "rewards": {"xml": 0.5, "correctness": 2.0}, "advantage": 0.83}

``step`` is the optimizer step the round was generated for (1-based, as the progress line counts);
``round`` is 0 for the round TRL asked for and 1, 2, ... for dynamic sampling's extra rounds; ``row`` is
the completion's place in the round across all processes (process 0's rows first), so a run on one
process and the same run on several write the same rows in the same order. A reward that gave no score
is ``null``. A resumed run appends, so the steps after its checkpoint appear again, with the resumed
run's completions. Nothing is gathered for the log: it reads what TRL has already gathered, and only
the main process writes.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

FILENAME = "rollouts.jsonl"


def _number(value: Any) -> float | None:
    value = float(value)
    return None if math.isnan(value) else value


class RolloutLog:
    """Appends a trainer's latest gathered round to ``output_dir/rollouts.jsonl`` (main process only)."""

    def __init__(self, output_dir: str | Path, enabled: bool = True) -> None:
        self.path = Path(output_dir) / FILENAME
        self.enabled = enabled

    def rows(self, trainer, rows: int, step: int, round_: int) -> list[dict[str, Any]]:
        """The last ``rows`` gathered completions in TRL's logs, as the log's records."""
        logs = trainer._logs
        prompts, completions, advantages = list(logs["prompt"]), list(logs["completion"]), list(logs["advantages"])
        rewards = {name: list(logs["rewards"][name]) for name in trainer.reward_func_names}
        if len(prompts) < rows or len(advantages) < rows:
            raise RuntimeError(f"log_rollouts: TRL's logs hold {len(prompts)} completions where a round has {rows}; "
                               "this TRL keeps its round differently, turn log_rollouts off.")
        out = []
        for i in range(rows):
            at = len(prompts) - rows + i
            out.append({
                "step": step, "round": round_, "row": i, "prompt": prompts[at], "completion": completions[at],
                "rewards": {name: _number(values[len(values) - rows + i]) for name, values in rewards.items()},
                "advantage": _number(advantages[len(advantages) - rows + i]),
            })
        return out

    def append(self, trainer, rows: int, round_: int) -> None:
        """After a generation round of ``rows`` completions (all processes together) was scored."""
        if not self.enabled:
            return
        records = self.rows(trainer, rows, trainer.state.global_step + 1, round_)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as f:
            f.writelines(json.dumps(r) + "\n" for r in records)
