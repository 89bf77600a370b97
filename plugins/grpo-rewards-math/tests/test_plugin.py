from __future__ import annotations

import json
import subprocess
import sys

import grpo_core


def test_entry_point_registers_everything_with_provenance():
    regs = {
        "verifiers": grpo_core.get_verifiers(),
        "rewards": grpo_core.get_rewards(),
        "datasets": grpo_core.get_datasets(),
    }
    want = {"verifiers": {"gsm8k", "aime", "math", "mcq"}, "rewards": {"correctness", "correctness_flexible", "int", "graded_correctness"},
            "datasets": {"gsm8k", "aime", "math500"}}
    for kind, names in want.items():
        for n in names:
            item = regs[kind][n]
            assert item.provenance.distribution == "grpo-rewards-math", (kind, n)
            assert item.provenance.version == "0.1.0"


def test_import_is_light():
    code = (
        "import sys, json; import grpo_rewards_math.plugin; import grpo_core;"
        "grpo_core.get_verifiers(); grpo_core.get_rewards(); grpo_core.get_datasets();"
        "print(json.dumps([m for m in ('torch','sympy','math_verify','datasets','transformers') if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_get_verifier_contract():
    v = grpo_core.get_verifier("math")
    assert v.verify(gold="\\frac{1}{2}", pred="0.5").equal
    assert v.check(gold="(1,2]", response="<answer>\\left(1, 2\\right]</answer>").equal
