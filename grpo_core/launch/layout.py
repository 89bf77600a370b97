"""What ``grpo-core launch`` runs, worked out before anything starts: the accelerate config for the chosen layout,
the vLLM server's command and GPUs, the training ranks' command, and the environment of each.

The layouts (docs/gpu.md, "Several GPUs"):

* (a) every GPU trains, each rank with its own colocated vLLM engine (where vLLM is installed);
* (b) the last ``vllm_gpus`` GPUs run TRL's vLLM server (``trl vllm-serve``), the others train and ask it
  for completions (``vllm_mode: server``);
* (c) either of them with the weights and optimizer sharded: DeepSpeed ZeRO-2/3 or FSDP2.

Nothing here starts a process or imports torch; :mod:`grpo_core.launch.supervisor` runs what this plans.
The accelerate config uses accelerate's own keys (``ClusterConfig`` in accelerate 1.15.0's
``commands/config/config_args.py``; TRL's ``accelerate_configs/*.yaml`` are the same shapes), so
``accelerate launch --config_file`` reads it unchanged.
"""

from __future__ import annotations

import importlib.util
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from grpo_core.errors import ConfigError

#: --deepspeed's stages and --fsdp, by the name a layout records
SHARDING = ("zero2", "zero3", "fsdp")

#: NVLink multicast off in every process the launcher starts, whatever the caller's environment says: a collective
#: that uses it can put a host's GPUs out of service for others (docs/gpu.md, "Several GPUs")
NVLINK_MULTICAST_OFF = {
    "NCCL_NVLS_ENABLE": "0",  # NCCL: no NVLink SHARP (NVLS) collectives, the ones built on NVLink multicast
    "NCCL_NVLSTREE_ENABLE": "0",  # NCCL: nor the NVLS tree algorithm (NVLS inside a node, a tree across nodes)
    "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1",  # PyTorch symmetric memory: no multicast objects (multimem ops)
    "NVSHMEM_DISABLE_NVLS": "1",  # NVSHMEM (under PyTorch's symmetric memory and some MoE kernels): no NVLS
    "VLLM_ALLREDUCE_USE_SYMM_MEM": "0",  # vLLM: no symmetric-memory all-reduce (multimem on Hopper) for TP > 1
}
#: what TRL's ``vllm-serve`` sets for vLLM's server (its dev-mode weight-transfer endpoints, spawned workers)
VLLM_SERVER_ENV = {"VLLM_SERVER_DEV_MODE": "1", "VLLM_WORKER_MULTIPROC_METHOD": "spawn"}
#: the file names the launcher writes into the run's folder (grpo_core.run_folder.LAUNCH_FILES)
CONFIG_NAME = "accelerate_config.yaml"
SERVER_LOG_NAME = "vllm_server.log"


@dataclass(frozen=True)
class LaunchRequest:
    """What the user asked for, checked by :meth:`check` (every refusal names the fix)."""

    processes: int  # --gpus N (or --cpu-processes N): GPUs (processes) per node, the server's included
    run_args: tuple[str, ...]  # what follows ``--``: the arguments of ``grpo-core run``
    output_dir: str  # the run's --output-dir: where the config and the server's log go
    cpu: bool = False  # gloo processes on CPU instead of GPUs
    vllm_gpus: int = 0  # --vllm-gpus M: the last M GPUs run the vLLM server
    sharding: str | None = None  # zero2 | zero3 | fsdp
    backend: str = "auto"  # the run's backend setting
    model: str = ""  # the model the server serves (the run's base model)
    max_model_len: int = 1024  # the server's longest sequence (the run's max_seq_length)
    vllm_host: str = "127.0.0.1"
    vllm_port: int = 8000
    vllm_data_parallel: int = 1  # the server's GPUs = tensor-parallel size x this
    vllm_memory: float = 0.9  # the server's --gpu-memory-utilization (its GPUs are its own)
    main_process_port: int = 29500
    nodes: int = 1
    node_rank: int = 0
    main_process_ip: str | None = None
    gpu_ids: tuple[str, ...] = ()  # this node's GPUs (CUDA_VISIBLE_DEVICES entries); default 0..N-1
    vllm_server: str | None = None  # --vllm-server HOST:PORT: a server already running (on a node of its own)

    @property
    def training_processes(self) -> int:
        """Training ranks on this node."""
        return self.processes - self.vllm_gpus

    @property
    def world_size(self) -> int:
        return self.training_processes * self.nodes

    def check(self) -> "LaunchRequest":
        unit = "--cpu-processes" if self.cpu else "--gpus"
        if self.processes < 1:
            raise ConfigError(f"{unit} must be at least 1, got {self.processes}.")
        if not self.run_args:
            raise ConfigError("give the run's arguments after `--`, e.g. grpo-core launch --gpus 2 -- --model Qwen/Qwen2.5-3B-Instruct "
                              "--output-dir runs/two-gpus (everything after `--` goes to `grpo-core run`).")
        if self.vllm_gpus < 0:
            raise ConfigError(f"--vllm-gpus must be 0 or more, got {self.vllm_gpus}.")
        if self.vllm_gpus:
            if self.cpu:
                raise ConfigError("--vllm-gpus needs GPUs: the vLLM server does not run on CPU; drop --vllm-gpus with --cpu-processes.")
            if self.vllm_gpus >= self.processes:
                raise ConfigError(f"--vllm-gpus {self.vllm_gpus} leaves no GPU to train on out of --gpus {self.processes}; "
                                  f"use at most --vllm-gpus {self.processes - 1} (or --gpus {self.vllm_gpus + 1}).")
            if self.vllm_gpus % self.vllm_data_parallel:
                raise ConfigError(f"--vllm-data-parallel {self.vllm_data_parallel} must divide --vllm-gpus {self.vllm_gpus} "
                                  "(the server's GPUs are tensor-parallel x data-parallel).")
            if self.nodes > 1:
                raise ConfigError("--vllm-gpus starts the server on this node's GPUs and cannot be combined with --nodes; "
                                  "on several nodes run the server on a node of its own and pass --vllm-server HOST:PORT "
                                  "(docs/gpu.md, \"Several GPUs\").")
        if self.vllm_server is not None:
            if self.vllm_gpus:
                raise ConfigError("--vllm-server uses a server that already runs and --vllm-gpus starts one; pass one of them.")
            host, _, port = self.vllm_server.rpartition(":")
            if not host or not port.isdigit():
                raise ConfigError(f"--vllm-server takes HOST:PORT, e.g. 10.0.0.2:8000; got {self.vllm_server!r}.")
        if self.sharding is not None and self.sharding not in SHARDING:
            raise ConfigError(f"unknown sharding {self.sharding!r}; valid: --deepspeed zero2, --deepspeed zero3, --fsdp.")
        if self.sharding and self.cpu:
            raise ConfigError(f"--{'fsdp' if self.sharding == 'fsdp' else 'deepspeed ' + self.sharding} is for GPUs; "
                              "--cpu-processes runs plain data parallelism (gloo): drop the sharding option.")
        if self.backend == "unsloth" and (self.world_size > 1 or self.sharding or self.vllm_gpus or self.vllm_server):
            why = (f"--deepspeed {self.sharding}" if self.sharding in ("zero2", "zero3") else "--fsdp" if self.sharding
                   else "a vLLM server (--vllm-gpus, --vllm-server)" if self.vllm_gpus or self.vllm_server
                   else f"{self.world_size} training processes")
            raise ConfigError(f"the unsloth backend is single-GPU and cannot run with {why}; pass --backend trl in the run's "
                              "arguments (or leave the backend at auto: the launcher picks trl).")
        if self.nodes < 1 or not 0 <= self.node_rank < self.nodes:
            raise ConfigError(f"--node-rank must be in 0..{self.nodes - 1} for --nodes {self.nodes}, got {self.node_rank}.")
        if self.nodes > 1 and not self.main_process_ip:
            raise ConfigError("--nodes needs --main-process-ip: the address of node 0, which every node can reach.")
        if self.gpu_ids and len(self.gpu_ids) < self.processes:
            raise ConfigError(f"--gpus {self.processes} asks for more GPUs than this machine shows "
                              f"({len(self.gpu_ids)}: {','.join(self.gpu_ids)}); use --gpus {len(self.gpu_ids)} or fewer.")
        return self


def accelerate_config(req: LaunchRequest) -> dict[str, Any]:
    """The accelerate config (``accelerate launch --config_file``) of the training ranks."""
    world = req.world_size
    cfg: dict[str, Any] = {
        "compute_environment": "LOCAL_MACHINE",
        "debug": False,
        "downcast_bf16": "no",
        "machine_rank": req.node_rank,
        "main_training_function": "main",
        # as TRL's own configs: bf16 on GPUs (the trl backend trains in bf16 where the GPU has it), none on CPU
        "mixed_precision": "no" if req.cpu else "bf16",
        "num_machines": req.nodes,
        "num_processes": world,
        "rdzv_backend": "static",
        "same_network": True,
        "main_process_port": req.main_process_port,
        "use_cpu": req.cpu,
        "enable_cpu_affinity": False,
        "tpu_env": [],
        "tpu_use_cluster": False,
        "tpu_use_sudo": False,
    }
    if req.nodes > 1:
        cfg["main_process_ip"] = req.main_process_ip
    if req.sharding in ("zero2", "zero3"):
        zero3 = req.sharding == "zero3"
        cfg["distributed_type"] = "DEEPSPEED"
        cfg["deepspeed_config"] = {
            "deepspeed_multinode_launcher": "standard",
            "offload_optimizer_device": "none",
            "offload_param_device": "none",
            "zero3_init_flag": zero3,
            "zero_stage": 3 if zero3 else 2,
            **({"zero3_save_16bit_model": True} if zero3 else {}),
        }
    elif req.sharding == "fsdp":
        cfg["distributed_type"] = "FSDP"
        cfg["fsdp_config"] = {
            "fsdp_version": 2,
            "fsdp_auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
            "fsdp_cpu_ram_efficient_loading": True,
            "fsdp_offload_params": False,
            "fsdp_reshard_after_forward": True,
            "fsdp_state_dict_type": "FULL_STATE_DICT",
            "fsdp_activation_checkpointing": False,
        }
    elif world > 1:
        # MULTI_GPU is accelerate's torchrun launcher (one process per rank); with use_cpu the ranks join over
        # gloo on CPU (MULTI_CPU would start one process and leave the rest to mpirun)
        cfg["distributed_type"] = "MULTI_GPU"
        cfg["gpu_ids"] = "all"  # which GPUs: CUDA_VISIBLE_DEVICES, set by the launcher
    else:
        cfg["distributed_type"] = "NO"
    return cfg


def config_yaml(req: LaunchRequest) -> str:
    return yaml.safe_dump(accelerate_config(req), sort_keys=True)


def write_config(req: LaunchRequest, folder: Path) -> Path:
    """Write the accelerate config into ``folder`` (the run's output dir) and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / CONFIG_NAME
    path.write_text(config_yaml(req))
    return path


@dataclass(frozen=True)
class Command:
    """One process the launcher starts: its arguments and the environment it adds to the launcher's."""

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)

    def shell(self) -> str:
        """The command as one shell line, environment first: what to type to start it by hand."""
        return " ".join([*(f"{k}={shlex.quote(v)}" for k, v in sorted(self.env.items())), shlex.join(self.argv)])


def server_gpus(req: LaunchRequest) -> list[str]:
    ids = list(req.gpu_ids) or [str(i) for i in range(req.processes)]
    return ids[req.training_processes:req.processes]


def training_gpus(req: LaunchRequest) -> list[str]:
    ids = list(req.gpu_ids) or [str(i) for i in range(req.processes)]
    return ids[:req.training_processes]


def server_command(req: LaunchRequest) -> Command | None:
    """TRL's vLLM server on the last ``vllm_gpus`` GPUs (``trl vllm-serve``, which runs ``vllm serve`` with TRL's flags)."""
    if not req.vllm_gpus:
        return None
    argv = [sys.executable, "-m", "trl.cli.main", "vllm-serve", "--model", req.model,
            "--tensor-parallel-size", str(req.vllm_gpus // req.vllm_data_parallel),
            "--data-parallel-size", str(req.vllm_data_parallel),
            "--host", req.vllm_host, "--port", str(req.vllm_port),
            "--gpu-memory-utilization", str(req.vllm_memory), "--max-model-len", str(req.max_model_len)]
    env = {**NVLINK_MULTICAST_OFF, **VLLM_SERVER_ENV, "CUDA_VISIBLE_DEVICES": ",".join(server_gpus(req))}
    return Command("vLLM server", argv, env)


def server_settings(host: str, port: int) -> list[str]:
    """The run's settings that point its trl backend at a vLLM server (TRL's GRPOConfig fields)."""
    return ["--set", "use_vllm=true", "--set", "vllm_mode=server", "--set", f"vllm_server_host={host}",
            "--set", f"vllm_server_port={port}"]


def rank_arguments(req: LaunchRequest, server: tuple[str, int] | None) -> list[str]:
    """The run's arguments as given, plus what the layout needs (later ``--set`` pairs win over earlier ones)."""
    extra: list[str] = []
    if req.backend == "auto" and (req.world_size > 1 or req.sharding or server):
        extra += ["--set", "backend=trl"]  # auto would take Unsloth on a GPU, and Unsloth is single-GPU
    if server:
        extra += server_settings(*server)
    return [*req.run_args, *extra]


def ranks_command(req: LaunchRequest, config_path: Path, server: tuple[str, int] | None = None) -> Command:
    """``accelerate launch --config_file CONFIG -m grpo_core run ...`` on this node's training GPUs."""
    argv = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config_path),
            "-m", "grpo_core", "run", *rank_arguments(req, server)]
    env = dict(NVLINK_MULTICAST_OFF)
    if req.cpu:
        env["OMP_NUM_THREADS"] = "1"  # N processes on a few cores: one thread each, no oversubscription
        env["CUDA_VISIBLE_DEVICES"] = ""
    else:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(training_gpus(req))
    return Command("training ranks", argv, env)


def server_address(req: LaunchRequest) -> tuple[str, int] | None:
    """Where the ranks reach the vLLM server: ``--vllm-server``'s, or the one this launcher starts (a server bound
    to every interface is reached locally); ``None`` without one."""
    if req.vllm_server is not None:
        host, _, port = req.vllm_server.rpartition(":")
        return host, int(port)
    if not req.vllm_gpus:
        return None
    return ("127.0.0.1" if req.vllm_host in ("0.0.0.0", "::") else req.vllm_host), req.vllm_port


def missing_packages(req: LaunchRequest) -> list[str]:
    """What the chosen layout needs and this environment lacks, each with its pip command."""
    needed = {"accelerate": "pip install accelerate"}
    if req.sharding in ("zero2", "zero3"):
        needed["deepspeed"] = "pip install deepspeed"
    if req.vllm_gpus:
        needed["vllm"] = "pip install 'grpo-core[gpu]' (vLLM for the server)"
        needed["trl"] = "pip install trl"
    return [f"{name} is not installed: {pip}" for name, pip in needed.items() if importlib.util.find_spec(name) is None]


def describe(req: LaunchRequest, config_path: Path) -> str:
    """``--print-config``: the accelerate config and the exact commands, for launching by hand or across nodes."""
    server = server_command(req)
    lines = [f"# accelerate config ({config_path}):", config_yaml(req).rstrip(), ""]
    if req.vllm_server is not None:
        lines += [f"# the vLLM server already runs at {req.vllm_server}; the launcher waits for http://{req.vllm_server}/health", ""]
    if server is not None:
        host, port = server_address(req)
        lines += [f"# {server.name} (GPUs {server.env['CUDA_VISIBLE_DEVICES']}); the launcher waits for http://{host}:{port}/health:",
                  server.shell(), ""]
    ranks = ranks_command(req, config_path, server_address(req))
    where = "CPU processes" if req.cpu else f"GPUs {ranks.env['CUDA_VISIBLE_DEVICES']}"
    lines += [f"# {ranks.name} ({req.training_processes} on this node, {where}; {req.world_size} in all):", ranks.shell()]
    return "\n".join(lines)
