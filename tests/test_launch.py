"""``grpo-core launch``: the layouts it prints and writes, the refusals, the supervisor with a fake vLLM server and
fake training ranks (health wait, failures, Ctrl-C: every child gone, by pid), and a real 2-process CPU launch."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from accelerate.commands.config.config_args import load_config_from_file
from click.testing import CliRunner

from grpo_core.cli import launch as launch_cli
from grpo_core.cli.group import cli
from grpo_core.cli.main import register_commands
from grpo_core.errors import ConfigError
from grpo_core.launch import layout
from grpo_core.launch.layout import NVLINK_MULTICAST_OFF, LaunchRequest

FIXTURES = Path(__file__).parent / "fixtures"
RUN = ("--max-steps", "2", "--eval-limit", "0")


@pytest.fixture
def invoke(plugin_state):
    register_commands()
    runner = CliRunner()
    return lambda *args: runner.invoke(cli, ["launch", *args], prog_name="grpo-core")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- --print-config: each layout --------------------------------------------------------------------------------

LAYOUTS = {
    "ddp": ((), "MULTI_GPU", None),
    "zero2": (("--deepspeed", "zero2"), "DEEPSPEED", ("deepspeed_config", "zero_stage", 2)),
    "zero3": (("--deepspeed", "zero3"), "DEEPSPEED", ("deepspeed_config", "zero_stage", 3)),
    "fsdp": (("--fsdp",), "FSDP", ("fsdp_config", "fsdp_version", 2)),
}


@pytest.mark.parametrize("server", [False, True], ids=["colocated", "server"])
@pytest.mark.parametrize("name", list(LAYOUTS))
def test_print_config_shows_config_commands_and_env(invoke, tmp_path, name, server):
    flags, distributed, nested = LAYOUTS[name]
    out = tmp_path / "run"
    res = invoke("--gpus", "4", *(("--vllm-gpus", "1") if server else ()), *flags, "--print-config", "--",
                 *RUN, "--output-dir", str(out))
    assert res.exit_code == 0, res.output
    text = res.output
    assert not out.exists()  # printed, nothing written or started
    config = __import__("yaml").safe_load(text.split("\n\n")[0].split("\n", 1)[1])
    assert config["distributed_type"] == distributed and config["num_processes"] == (3 if server else 4)
    if nested:
        assert config[nested[0]][nested[1]] == nested[2]
    ranks = [line for line in text.splitlines() if "accelerate.commands.launch" in line]
    assert len(ranks) == 1
    assert f"--config_file {out / 'accelerate_config.yaml'} -m grpo_core run --max-steps 2" in ranks[0]
    commands = ranks + [line for line in text.splitlines() if "vllm-serve" in line]
    assert len(commands) == (2 if server else 1)
    for line in commands:
        for key, value in NVLINK_MULTICAST_OFF.items():
            assert f"{key}={value}" in line, line
    if server:
        serve = commands[1]
        assert "CUDA_VISIBLE_DEVICES=3 " in serve and "--tensor-parallel-size 1" in serve and "--port 8000" in serve
        assert "CUDA_VISIBLE_DEVICES=0,1,2 " in ranks[0]
        assert "--set vllm_mode=server --set vllm_server_host=127.0.0.1 --set vllm_server_port=8000" in ranks[0]
        assert "http://127.0.0.1:8000/health" in text
    else:
        assert "vllm_mode=server" not in ranks[0] and "CUDA_VISIBLE_DEVICES=0,1,2,3 " in ranks[0]


def test_auto_backend_becomes_trl_on_several_gpus(invoke, tmp_path):
    res = invoke("--gpus", "2", "--print-config", "--", *RUN, "--backend", "auto", "--output-dir", str(tmp_path / "r"))
    assert res.exit_code == 0, res.output
    assert "--set backend=trl" in res.output  # auto would take Unsloth on a GPU, which is single-GPU


def test_two_nodes_config(invoke, tmp_path):
    res = invoke("--gpus", "8", "--nodes", "2", "--node-rank", "1", "--main-process-ip", "10.0.0.1", "--print-config", "--",
                 *RUN, "--output-dir", str(tmp_path / "r"))
    assert res.exit_code == 0, res.output
    config = __import__("yaml").safe_load(res.output.split("\n\n")[0].split("\n", 1)[1])
    assert (config["num_machines"], config["machine_rank"], config["num_processes"], config["main_process_ip"]) == (2, 1, 16, "10.0.0.1")


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_written_config_loads_with_accelerates_loader(tmp_path, name):
    flags, distributed, nested = LAYOUTS[name]
    sharding = {"zero2": "zero2", "zero3": "zero3", "fsdp": "fsdp"}.get(name)
    req = LaunchRequest(2, RUN, str(tmp_path), sharding=sharding).check()
    loaded = load_config_from_file(str(layout.write_config(req, tmp_path)))
    assert loaded.distributed_type.value == distributed and loaded.num_processes == 2 and loaded.mixed_precision == "bf16"
    if nested:
        assert getattr(loaded, nested[0])[nested[1]] == nested[2]


def test_cpu_config_loads_and_uses_gloo_processes(tmp_path):
    loaded = load_config_from_file(str(layout.write_config(LaunchRequest(2, RUN, str(tmp_path), cpu=True).check(), tmp_path)))
    assert loaded.use_cpu and loaded.num_processes == 2 and loaded.mixed_precision == "no"


# --- refusals -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (("--gpus", "0", "--print-config", "--", *RUN), "--gpus must be at least 1"),
    (("--gpus", "2", "--vllm-gpus", "2", "--print-config", "--", *RUN), "leaves no GPU to train on"),
    (("--gpus", "2", "--deepspeed", "zero2", "--fsdp", "--print-config", "--", *RUN), "pick one"),
    (("--gpus", "2", "--deepspeed", "zero3", "--print-config", "--", *RUN, "--backend", "unsloth"), "unsloth backend is single-GPU"),
    (("--gpus", "2", "--print-config"), "give the run's arguments after `--`"),
    (("--gpus", "2", "--cpu-processes", "2", "--print-config", "--", *RUN), "one of them"),
    (("--cpu-processes", "2", "--fsdp", "--print-config", "--", *RUN), "drop the sharding option"),
    (("--gpus", "4", "--vllm-gpus", "3", "--vllm-data-parallel", "2", "--print-config", "--", *RUN), "must divide"),
    (("--gpus", "8", "--nodes", "2", "--print-config", "--", *RUN), "needs --main-process-ip"),
    (("--gpus", "2", "--max-steps", "2"), "go after `--`"),
])
def test_refusals_name_the_fix(invoke, args, message):
    res = invoke(*args)
    assert res.exit_code == 2, res.output
    assert message in res.output


def test_gpus_without_a_gpu_offers_cpu_processes(invoke, monkeypatch):
    monkeypatch.setattr(launch_cli, "visible_gpus", lambda: ())
    res = invoke("--gpus", "2", "--", *RUN)
    assert res.exit_code == 2 and "no CUDA GPU is visible here. Use --cpu-processes 2" in res.output


def test_more_gpus_than_the_machine_shows():
    with pytest.raises(ConfigError, match="more GPUs than this machine shows"):
        LaunchRequest(4, RUN, "r", gpu_ids=("0", "1")).check()


def test_missing_packages_name_the_pip_command(monkeypatch):
    real = layout.importlib.util.find_spec
    monkeypatch.setattr(layout.importlib.util, "find_spec", lambda name: None if name in ("deepspeed", "vllm") else real(name))
    missing = layout.missing_packages(LaunchRequest(3, RUN, "r", sharding="zero3", vllm_gpus=1))
    assert "deepspeed is not installed: pip install deepspeed" in missing
    assert any(m.startswith("vllm is not installed: pip install 'grpo-core[gpu]'") for m in missing)
    assert layout.missing_packages(LaunchRequest(2, RUN, "r")) == []


def test_launch_files_do_not_make_the_folder_refused(tmp_path):
    from grpo_core.run_folder import check_output_dir

    layout.write_config(LaunchRequest(2, RUN, str(tmp_path), cpu=True), tmp_path)
    (tmp_path / layout.SERVER_LOG_NAME).write_text("log")
    assert check_output_dir(tmp_path) == tmp_path


# --- the supervisor, with a fake server and fake ranks --------------------------------------------------------------

DRIVER = """
import json, sys
from pathlib import Path
from grpo_core.launch.layout import Command
from grpo_core.launch.supervisor import LaunchError, supervise
spec = json.loads(sys.argv[1])
try:
    code = supervise(Command("training ranks", spec["ranks"]),
                     server=Command("vLLM server", spec["server"], {"CUDA_VISIBLE_DEVICES": ""}) if spec["server"] else None,
                     health_url=spec["url"], log_path=Path(spec["log"]), health_timeout=spec["timeout"], grace=spec["grace"],
                     echo=lambda s: print(s, flush=True))
except LaunchError as exc:
    print("LaunchError:", exc, flush=True)
    code = exc.exit_code
sys.exit(code)
"""


class Launch:
    def __init__(self, tmp_path: Path, *, server_mode: str | None = "healthy", training_code: int = 0, wait: bool = False,
                 timeout: float = 60.0) -> None:
        port = free_port()
        self.server_pids, self.training_pids, self.stop_file = tmp_path / "server.pid", tmp_path / "training.pids", tmp_path / "stop"
        server = [sys.executable, str(FIXTURES / "fake_vllm_server.py"), str(port), str(self.server_pids), server_mode,
                  str(self.stop_file)] if server_mode else None
        ranks = [sys.executable, str(FIXTURES / "fake_training.py"), str(self.training_pids), str(training_code), *(["wait"] if wait else [])]
        spec = {"server": server, "ranks": ranks, "url": f"http://127.0.0.1:{port}/health", "log": str(tmp_path / "server.log"),
                "timeout": timeout, "grace": 2.0}
        self.proc = subprocess.Popen([sys.executable, "-c", DRIVER, json.dumps(spec)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def finish(self) -> tuple[int, str]:
        out, _ = self.proc.communicate(timeout=120)
        return self.proc.returncode, out

    def pids(self) -> list[int]:
        found = [int(self.server_pids.read_text())] if self.server_pids.exists() else []
        if self.training_pids.exists():
            found += [int(p) for p in self.training_pids.read_text().split()]
        return found

    def wait_for(self, path: Path) -> None:
        for _ in range(600):
            if path.exists() or self.proc.poll() is not None:
                return
            time.sleep(0.1)


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_server_healthy_then_training_runs_then_server_stopped(tmp_path):
    launch = Launch(tmp_path)
    code, out = launch.finish()
    assert code == 0, out
    assert out.index("answers http://127.0.0.1") < out.index("training ranks started")
    assert len(launch.pids()) == 3 and all(gone(p) for p in launch.pids())


def test_server_dies_before_healthy_training_never_starts(tmp_path):
    launch = Launch(tmp_path, server_mode="die")
    code, out = launch.finish()
    assert code == 3, out
    assert "the vLLM server exited with code 3 before it answered" in out and "the training ranks were not started" in out
    assert "CUDA out of memory while loading" in out  # its last log lines
    assert not launch.training_pids.exists()


def test_server_not_healthy_in_time(tmp_path):
    launch = Launch(tmp_path, server_mode="silent", timeout=0.5)
    code, out = launch.finish()
    assert code == 1, out
    assert "was not healthy after 0.5 s" in out and "raise --vllm-timeout" in out and "loading the model" in out
    assert not launch.training_pids.exists()
    assert all(gone(p) for p in launch.pids())


def test_training_fails_server_stopped(tmp_path):
    launch = Launch(tmp_path, training_code=5)
    code, out = launch.finish()
    assert code == 5, out
    assert "training ranks exited with code 5" in out
    assert all(gone(p) for p in launch.pids())


def test_server_dies_mid_run_stops_training(tmp_path):
    launch = Launch(tmp_path, server_mode="die-when-file", wait=True)
    launch.wait_for(launch.training_pids)
    launch.stop_file.write_text("")
    code, out = launch.finish()
    assert code == 4, out
    assert "exited with code 4 while the run was training" in out and "engine died" in out
    assert len(launch.pids()) == 3 and all(gone(p) for p in launch.pids())


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupt_stops_every_child(tmp_path, sig):
    launch = Launch(tmp_path, wait=True)
    launch.wait_for(launch.training_pids)
    pids = launch.pids()
    assert len(pids) == 3 and not any(gone(p) for p in pids)
    launch.proc.send_signal(sig)
    code, out = launch.finish()
    assert code == 130, out
    assert "interrupted" in out
    assert all(gone(p) for p in pids), [p for p in pids if not gone(p)]  # the worker in its own session too


# --- the real thing: 2 gloo processes on CPU through the launcher ----------------------------------------------------

def test_launch_two_cpu_processes_train_one_run(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run([sys.executable, "-m", "grpo_core", "launch", "--cpu-processes", "2", "--main-process-port", str(free_port()),
                           "--", "--max-steps", "2", "--eval-limit", "0", "--threads", "1", "--per-device-train-batch-size", "16",
                           "--limit", "200", "--output-dir", str(out)], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "4 prompt(s) x 8 generations = 32 completions per generation round" in proc.stdout  # both processes counted
    assert proc.stdout.count("step 2/2 |") == 1
    info = json.loads((out / "run.json").read_text())
    assert info["world_size"] == 2 and info["status"] == "finished" and info["global_step"] == 2
    assert load_config_from_file(str(out / "accelerate_config.yaml")).use_cpu
    assert (out / "adapter" / "adapter_model.safetensors").is_file()
