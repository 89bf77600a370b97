"""``grpo-core`` with the policy's sampling recorded, or replayed from a recording: the same completions
for a run on one process and the same run on several.

Run as a script, alone or under torchrun: ``python tests/replayed_rollouts.py run ...`` with
``GRPO_CORE_ROLLOUTS=record:FILE`` (one process: sample as usual and write each training round's
prompt and completion token ids, in order) or ``GRPO_CORE_ROLLOUTS=replay:FILE`` (any number of
processes: each process returns the recorded completions for its rows of the round, found at
``process_index × rows per process``, and fails if the recorded prompt there is not the one it was
handed).

Why replay: TRL seeds every process differently (``set_seed(seed, device_specific=True)``) and HF
generate draws a batch's tokens from one random stream, so a prompt's samples depend on which process
and which batch row it lands in; no seed gives a two-process run the one-process run's samples. With
the sampling fixed, everything the layout must not change can be compared: which prompts each process
gets, the rewards, the group-normalised advantages, the loss and the update.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ENV = "GRPO_CORE_ROLLOUTS"


def install(spec: str) -> None:
    import trl.trainer.grpo_trainer as grpo_module

    mode, _, path = spec.partition(":")
    if mode not in ("record", "replay") or not path:
        raise SystemExit(f"{ENV} must be record:FILE or replay:FILE, not {spec!r}")
    file = Path(path)
    original = grpo_module.GRPOTrainer._generate_single_turn
    recorded = [json.loads(line) for line in file.read_text().splitlines()] if mode == "replay" else None
    state = {"round": 0}

    def generate(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        if not self.model.training:
            return original(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images)
        round_ = state["round"]
        state["round"] += 1
        if mode == "record":
            if self.accelerator.num_processes != 1:
                raise SystemExit("record rollouts in one process")
            completion_ids, logprobs = original(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images)
            with file.open("a") as f:
                f.write(json.dumps({"round": round_, "prompts": [list(p) for p in prompt_ids], "completions": completion_ids}) + "\n")
            return completion_ids, logprobs
        if round_ >= len(recorded):
            raise SystemExit(f"replay: round {round_} was not recorded ({len(recorded)} were)")
        start = self.accelerator.process_index * len(prompt_ids)
        rows = range(start, start + len(prompt_ids))
        for i, prompt in zip(rows, prompt_ids):
            if list(prompt) != recorded[round_]["prompts"][i]:
                raise SystemExit(f"replay: round {round_} row {i}: process {self.accelerator.process_index} was handed "
                                 "another prompt than the recorded run had there")
        return [recorded[round_]["completions"][i] for i in rows], None

    grpo_module.GRPOTrainer._generate_single_turn = generate


if __name__ == "__main__":
    install(os.environ[ENV])
    from grpo_core.cli import main

    sys.exit(main(sys.argv[1:]))
