"""Several processes under torchrun (gloo, on CPU): the same code path `accelerate launch` takes on several GPUs.

Every rank runs `grpo-core run`; the batch arithmetic counts both processes, one rank talks and writes,
DDP skips its unused-parameter search (LoRA uses every adapter), and the adapter is saved once.

Correctness across ranks: the same run (bundled tiny reasoner, same data and seed, 2 steps, the same
32 completions per step) on one process and on two (16 each) must give every completion the same
rewards and the same advantage, and train the same adapter. Sampling cannot match on its own: TRL seeds
each process differently and HF generate draws a batch's tokens from one random stream, so the
one-process run records its completions and the two-process run replays them
(``tests/replayed_rollouts.py``), failing if a process is handed another prompt than the recorded run had
in that place. The two-process adapter is compared with the one-process adapter trained on 32 rows at
once, and with the one-process adapter trained on the same two halves of 16 (gradient accumulation).

Unattended multi-process runs: a process killed or stopped stops the whole run with a final status in
run.json, each checkpoint is complete, and ``--resume`` on two processes continues to the end.
"""

from __future__ import annotations

import json
import os
import signal
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from grpo_core.run_folder import last_checkpoint

torch = pytest.importorskip("torch")

TESTS = Path(__file__).resolve().parent
REPLAY = str(TESTS / "replayed_rollouts.py")
SMALL = ["--eval-limit", "0", "--threads", "1", "--limit", "64", "--max-completion-length", "32"]
PARITY = ["run", "--max-steps", "2", *SMALL, "--set", "log_rollouts=true", "--set", "report=false"]
GROUP = 8  # num_generations, the default
#: measured on the parity runs (see _parity): the one-process adapter trained on 32 rows at once and on two
#: halves of 16 (gradient accumulation) differ by up to 3.0e-5 (a few elements of the 2-step update, whose
#: size is ~1e-3, from the order of float sums); the two-process adapter differs from the halves by 4.1e-7
SAME_ROWS_TOLERANCE = 1e-5
WHOLE_BATCH_TOLERANCE = 1e-4


def _torchrun() -> str:
    found = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")
    if found is None:
        pytest.fail("torchrun is missing; it comes with torch")
    return found


def _env(**extra: str) -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", **extra}


def _two_processes(*args: str) -> list[str]:
    return [_torchrun(), "--standalone", "--nproc_per_node", "2", *args]


def _run(cmd: list[str], **env: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=_env(**env), timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


def _rollouts(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "rollouts.jsonl").read_text().splitlines()]


def _adapter(run_dir: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(run_dir / "adapter" / "adapter_model.safetensors"))


def _max_param_diff(a: Path, b: Path) -> float:
    pa, pb = _adapter(a), _adapter(b)
    assert pa.keys() == pb.keys()
    return max((pa[k] - pb[k]).abs().max().item() for k in pa)


# --- the same run on one process and on two ---------------------------------------------------------------

@pytest.fixture(scope="module")
def parity(tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("parity")
    recording = base / "recorded.jsonl"
    one = _run([sys.executable, REPLAY, *PARITY, "--per-device-train-batch-size", "32", "--output-dir", base / "one"],
               GRPO_CORE_ROLLOUTS=f"record:{recording}")
    halves = _run([sys.executable, REPLAY, *PARITY, "--per-device-train-batch-size", "16", "--set", "gradient_accumulation_steps=2",
                   "--output-dir", base / "halves"], GRPO_CORE_ROLLOUTS=f"replay:{recording}")
    two = _run(_two_processes(REPLAY, *PARITY, "--per-device-train-batch-size", "16", "--output-dir", base / "two"),
               GRPO_CORE_ROLLOUTS=f"replay:{recording}")
    return {"dirs": {"one": base / "one", "halves": base / "halves", "two": base / "two"}, "two": two, "one": one, "halves": halves}


def test_two_processes_train_one_run(parity):
    proc, out = parity["two"], parity["dirs"]["two"]
    text = proc.stdout
    # the batch counts both processes: 16 completions each = 32 per round = 4 prompts x 8
    assert "4 prompt(s) x 8 generations = 32 completions per generation round" in text
    # one rank talks: each message once
    assert text.count("step 2/2 |") == 1, text
    assert text.count("saved adapter to") == 1 and text.count("training: 2 steps") == 1
    assert "find_unused_parameters=True" not in proc.stderr
    info = json.loads((out / "run.json").read_text())
    assert info["world_size"] == 2 and info["status"] == "finished" and info["global_step"] == 2
    assert info["grpo_config"]["ddp_find_unused_parameters"] is False
    assert (out / "adapter" / "adapter_model.safetensors").is_file()
    assert (out / "adapter" / "tokenizer_config.json").is_file()


def test_every_completion_is_scored_once_and_normalised_in_its_whole_group(parity):
    one, two = (_rollouts(parity["dirs"][k]) for k in ("one", "two"))
    assert len(one) == len(two) == 2 * 32
    assert [(r["step"], r["row"], r["prompt"], r["completion"]) for r in one] == [(r["step"], r["row"], r["prompt"], r["completion"]) for r in two]
    reward_diff = max(abs(a["rewards"][k] - b["rewards"][k]) for a, b in zip(one, two) for k in a["rewards"])
    advantage_diff = max(abs(a["advantage"] - b["advantage"]) for a, b in zip(one, two))
    assert reward_diff == 0.0 and advantage_diff == 0.0, (reward_diff, advantage_diff)
    assert any(abs(r["advantage"]) > 0.1 for r in two)  # a run with signal: the advantages say something
    for start in range(0, len(two), GROUP):
        group = two[start:start + GROUP]
        assert len({r["prompt"] for r in group}) == 1, "a prompt's group was split"
        assert abs(sum(r["advantage"] for r in group)) < 1e-4  # normalised within the group
    # each process scored its own 16 of a step's 32 completions: together 64 over 2 steps, as on one process (not 128)
    totals = [json.loads((parity["dirs"][k] / "run.json").read_text())["reward_totals"] for k in ("one", "two")]
    assert {name: t["samples"] for name, t in totals[0].items()} == {name: t["samples"] for name, t in totals[1].items()}
    assert {t["samples"] for t in totals[1].values()} == {64}


def test_two_processes_train_the_adapter_one_process_trains(parity):
    dirs = parity["dirs"]
    # the same two halves of 16 rows, on two processes or accumulated on one: float-order noise only
    assert _max_param_diff(dirs["two"], dirs["halves"]) <= SAME_ROWS_TOLERANCE
    # against 32 rows at once: no further from it than the one-process halves are
    whole = _max_param_diff(dirs["two"], dirs["one"])
    assert whole <= WHOLE_BATCH_TOLERANCE, whole
    # the runs trained (lora_B starts at 0; measured: its largest entry 1.0e-3, its mean 7.1e-4), and the differences
    # are a few elements (measured: mean 1.6e-9 over all the adapter's entries)
    one, two = _adapter(dirs["one"]), _adapter(dirs["two"])
    trained = torch.cat([v.abs().flatten() for k, v in one.items() if "lora_B" in k]).mean().item()
    diffs = torch.cat([(one[k] - two[k]).abs().flatten() for k in one])
    assert trained > 10 * whole and diffs.mean().item() < 1e-4 * trained, (trained, diffs.mean().item())


# --- dynamic sampling on two processes ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def dynamic(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dynamic") / "run"
    _run(_two_processes("-m", "grpo_core", *PARITY, "--per-device-train-batch-size", "16", "--dynamic-sampling",
                        "--set", "report=false", "--output-dir", out))
    return out


def test_dynamic_sampling_on_two_processes_decides_together_and_keeps_groups_whole(dynamic):
    info = json.loads((dynamic / "run.json").read_text())
    assert info["status"] == "finished" and info["global_step"] == 2  # no process waited for ever in an extra round
    history = {h["step"]: h for h in json.loads((dynamic / "log_history.json").read_text()) if "dynamic_sampling/dropped_groups" in h}
    rows = _rollouts(dynamic)
    assert sum(h["dynamic_sampling/dropped_groups"] for h in history.values()) > 0  # there were tied groups to replace
    for step, h in history.items():
        rounds = {}
        for r in rows:
            if r["step"] == step:
                rounds.setdefault(r["round"], []).append(r)
        tied = 0
        for got in rounds.values():
            assert len(got) % (2 * GROUP) == 0  # both processes generated whole groups, as many each
            for start in range(0, len(got), GROUP):
                group = got[start:start + GROUP]
                assert len({r["prompt"] for r in group}) == 1
                totals = [sum(v for v in r["rewards"].values() if v is not None) for r in group]
                tied += max(totals) - min(totals) <= 1e-6
        # the groups every process counted as dropped are the ones the gathered rewards show tied
        assert h["dynamic_sampling/dropped_groups"] == tied
        assert h["dynamic_sampling/extra_rounds"] == len(rounds) - 1
        assert h["dynamic_sampling/extra_completions"] == sum(len(v) for k, v in rounds.items() if k > 0)


# --- a process killed or stopped; checkpoints; --resume on two processes ------------------------------------

STEPS = 5
UNATTENDED = ["run", "--max-steps", str(STEPS), *SMALL, "--per-device-train-batch-size", "16", "--set", "report=false",
              "--set", "save_steps=1", "--set", "save_total_limit=10"]
CHECKPOINT_FILES = ("trainer_state.json", "adapter_model.safetensors", "optimizer.pt", "scheduler.pt", "rng_state_0.pth", "rng_state_1.pth")


def _workers(launcher: int) -> dict[int, int]:
    """The training processes torchrun started (its children), by rank."""
    out = {}
    for pid in map(int, Path(f"/proc/{launcher}/task/{launcher}/children").read_text().split()):
        env = dict(item.split("=", 1) for item in Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in item)
        out[int(env["RANK"])] = pid
    return out


def _signal_one_process(out: Path, sig: int, rank: int, after_checkpoint: int) -> tuple[int, dict[int, int], subprocess.CompletedProcess]:
    """Start a two-process run, send ``sig`` to process ``rank`` once checkpoint ``after_checkpoint`` is complete."""
    log = out.parent / "launcher.log"
    with log.open("w") as sink:
        proc = subprocess.Popen(_two_processes("-m", "grpo_core", *UNATTENDED, "--output-dir", str(out)), stdout=sink,
                                stderr=subprocess.STDOUT, env=_env())
        try:
            deadline = time.monotonic() + 300
            while not (last_checkpoint(out) and int(last_checkpoint(out).rsplit("-", 1)[1]) >= after_checkpoint):
                assert proc.poll() is None, log.read_text()[-3000:]
                assert time.monotonic() < deadline, "no checkpoint within 300 s"
                time.sleep(0.05)
            workers = _workers(proc.pid)
            os.kill(workers[rank], sig)
            rc = proc.wait(timeout=240)
        finally:
            proc.kill()
            proc.wait()
    return rc, workers, subprocess.CompletedProcess([], rc, log.read_text(), "")


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return False


def _assert_complete_checkpoints(out: Path) -> list[int]:
    steps = sorted(int(p.name.removeprefix("checkpoint-")) for p in out.glob("checkpoint-*"))
    for step in steps:
        missing = [f for f in CHECKPOINT_FILES if not (out / f"checkpoint-{step}" / f).is_file()]
        assert not missing, f"checkpoint-{step} lacks {missing}"
    return steps


@pytest.fixture(scope="module")
def killed_and_resumed(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("killed") / "run"
    rc, workers, launched = _signal_one_process(out, signal.SIGKILL, rank=1, after_checkpoint=2)
    at_kill = json.loads((out / "run.json").read_text())
    checkpoints = _assert_complete_checkpoints(out)
    resumed = _run(_two_processes("-m", "grpo_core", "run", "--output-dir", str(out), "--resume"))
    return {"out": out, "rc": rc, "workers": workers, "launched": launched, "at_kill": at_kill, "checkpoints": checkpoints,
            "resumed": resumed}


def test_a_killed_process_stops_the_whole_run_with_a_final_status(killed_and_resumed):
    k = killed_and_resumed
    assert k["rc"] != 0, k["launched"].stdout[-3000:]
    assert not any(_alive(pid) for pid in k["workers"].values()), "a training process outlived the run"
    assert k["at_kill"]["status"] == "failed", k["at_kill"]
    # the main process saw its peer vanish at its next collective, and says so
    assert k["at_kill"]["error"].startswith("process 0 of 2: "), k["at_kill"]["error"]
    assert 2 <= max(k["checkpoints"]) < STEPS


def test_resume_on_two_processes_continues_from_the_last_checkpoint_to_the_end(killed_and_resumed):
    k = killed_and_resumed
    text = k["resumed"].stdout
    last = max(k["checkpoints"])
    assert f"is failed at step {k['at_kill']['global_step']}; continuing from" in text
    assert text.count(f"resuming from {k['out'] / f'checkpoint-{last}'}") == 1  # one process talks
    assert text.count(f"step {STEPS}/{STEPS} |") == 1 and f"step {last}/{STEPS} |" not in text
    info = json.loads((k["out"] / "run.json").read_text())
    assert info["status"] == "finished" and info["global_step"] == STEPS and info["world_size"] == 2
    assert info["resumes"][-1]["previous_status"] == "failed"
    _assert_complete_checkpoints(k["out"])
    assert json.loads((k["out"] / f"checkpoint-{STEPS}" / "trainer_state.json").read_text())["global_step"] == STEPS


def test_sigterm_to_one_process_stops_every_process_after_the_same_step(tmp_path):
    out = tmp_path / "run"
    rc, workers, launched = _signal_one_process(out, signal.SIGTERM, rank=1, after_checkpoint=1)
    info = json.loads((out / "run.json").read_text())
    assert info["status"] == "interrupted", launched.stdout[-3000:]
    assert not any(_alive(pid) for pid in workers.values())
    assert rc != 0  # torchrun reports its workers' exit status 130 as a failure
    # both stopped after one step and saved it together: the checkpoint of the step run.json records is complete
    assert info["global_step"] < STEPS and last_checkpoint(out).endswith(f"checkpoint-{info['global_step']}")
    _assert_complete_checkpoints(out)
