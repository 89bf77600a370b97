"""``grpo-core launch``: one run on several GPUs (or CPU processes), with accelerate, DeepSpeed or FSDP, and a vLLM
server on GPUs of its own when asked. The work is in :mod:`grpo_core.launch`; this reads the options."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from grpo_core.cli.run import settings_from_arguments
from grpo_core.errors import ConfigError
from grpo_core.launch import layout
from grpo_core.launch.supervisor import supervise
from grpo_core.run_folder import check_output_dir
from grpo_core.runtime.hardware import resolve_model


class LaunchCommand(click.Command):
    """Names the fix when the run's own options come before ``--``."""

    def parse_args(self, ctx, args):
        try:
            return super().parse_args(ctx, args)
        except click.NoSuchOption as exc:
            exc.message += " (the run's own options go after `--`: grpo-core launch --gpus 2 -- --model ... --output-dir ...)"
            raise


@click.command(cls=LaunchCommand)
@click.option("--gpus", type=int, help="GPUs on this node, the vLLM server's included (one training process per training GPU).")
@click.option("--cpu-processes", type=int, help="Instead of --gpus: this many training processes on CPU (gloo), e.g. to try a launch without a GPU.")
@click.option("--vllm-gpus", type=int, default=0, show_default=True,
              help="Run TRL's vLLM server on the last M of the --gpus GPUs; the others train and ask it for completions.")
@click.option("--deepspeed", type=click.Choice(["zero2", "zero3"]), help="Shard with DeepSpeed ZeRO-2 (optimizer, gradients) or ZeRO-3 (also the weights).")
@click.option("--fsdp", is_flag=True, help="Shard with PyTorch FSDP2 (weights, gradients, optimizer).")
@click.option("--print-config", is_flag=True, help="Print the accelerate config and the exact commands (with their environment), run nothing.")
@click.option("--vllm-data-parallel", type=int, default=1, show_default=True,
              help="The server's data-parallel size; its tensor-parallel size is --vllm-gpus divided by this (keep 1 for dense models).")
@click.option("--vllm-host", default="127.0.0.1", show_default=True, help="Address the vLLM server listens on (0.0.0.0: every interface).")
@click.option("--vllm-port", type=int, default=8000, show_default=True, help="The vLLM server's port.")
@click.option("--vllm-gpu-memory-utilization", "vllm_memory", type=click.FloatRange(0, 1, min_open=True), default=0.9, show_default=True,
              help="Share of each server GPU vLLM may take (its GPUs are its own).")
@click.option("--vllm-timeout", type=click.FloatRange(min=0), default=600.0, show_default=True,
              help="Seconds to wait for the vLLM server's health check before giving up.")
@click.option("--vllm-server", metavar="HOST:PORT", help="Use a vLLM server that already runs (e.g. on a node of its own) instead of starting one.")
@click.option("--nodes", type=int, default=1, show_default=True, help="Machines taking part; run the same command on each with its --node-rank.")
@click.option("--node-rank", type=int, default=0, show_default=True, help="This machine's rank among --nodes (0 is the main one).")
@click.option("--main-process-ip", help="Address of node 0, reachable from every node (needed with --nodes).")
@click.option("--main-process-port", type=int, default=29500, show_default=True, help="Port of the ranks' rendezvous on node 0 (0: a free one).")
@click.option("--grace", type=click.FloatRange(min=0), default=60.0, show_default=True,
              help="Seconds the processes get to stop (the run saves what it trained) before they are killed.")
@click.argument("run_args", nargs=-1, type=click.UNPROCESSED)
def launch(gpus, cpu_processes, vllm_gpus, deepspeed, fsdp, print_config, vllm_data_parallel, vllm_host, vllm_port, vllm_memory,
           vllm_timeout, vllm_server, nodes, node_rank, main_process_ip, main_process_port, grace, run_args):
    """Train one run on several GPUs: `grpo-core launch --gpus N [--vllm-gpus M] [--deepspeed zero2|zero3 | --fsdp] -- RUN ARGUMENTS`.

    Everything after `--` goes to `grpo-core run` on every training process. Writes the accelerate config
    into the run's --output-dir, starts TRL's vLLM server on the last M GPUs when asked and waits for its health
    check, then starts the training ranks with `accelerate launch`. Stops everything it started when a part fails
    or on Ctrl-C. NCCL's NVLink multicast is kept off in every process (NCCL_NVLS_ENABLE=0 and companions).

    Exit status: the training ranks' (0 when the run finished), 130 on Ctrl-C or SIGTERM, the server's code when
    the vLLM server failed, 2 for options refused before anything started.
    """
    if deepspeed and fsdp:
        raise ConfigError("--deepspeed and --fsdp are two ways to shard; pick one (--deepspeed zero2, --deepspeed zero3 or --fsdp).")
    if (gpus is None) == (cpu_processes is None):
        raise ConfigError("say how many processes: --gpus N (GPUs) or --cpu-processes N (CPU), one of them.")
    cpu = cpu_processes is not None
    count = cpu_processes if cpu else gpus
    gpu_ids: tuple[str, ...] = ()
    if not cpu and not print_config:
        gpu_ids = visible_gpus()
        if not gpu_ids:
            raise ConfigError(f"--gpus {gpus}: no CUDA GPU is visible here. Use --cpu-processes {gpus} to run {gpus} processes on CPU "
                              "(gloo), or --print-config to print the commands for a machine with GPUs.")
    if not run_args:
        layout.LaunchRequest(count, (), "", cpu=cpu).check()  # names the missing `--` arguments
    cfg, modes = settings_from_arguments(run_args)
    request = layout.LaunchRequest(
        count, tuple(run_args), cfg.output_dir, cpu=cpu, vllm_gpus=vllm_gpus, sharding=deepspeed or ("fsdp" if fsdp else None),
        backend=cfg.backend, model=_server_model(cfg.model) if vllm_gpus else "", max_model_len=cfg.max_seq_length,
        vllm_host=vllm_host, vllm_port=vllm_port, vllm_data_parallel=vllm_data_parallel, vllm_memory=vllm_memory,
        main_process_port=main_process_port, nodes=nodes, node_rank=node_rank, main_process_ip=main_process_ip,
        gpu_ids=gpu_ids, vllm_server=vllm_server,
    ).check()
    out_dir = Path(cfg.output_dir)
    if print_config:
        click.echo(layout.describe(request, out_dir / layout.CONFIG_NAME))
        return
    missing = layout.missing_packages(request)
    if missing:
        raise ConfigError("the chosen layout needs what is not installed here: " + "; ".join(missing) + ".")
    if not modes["overwrite"]:  # with --overwrite the run clears its folder itself
        check_output_dir(out_dir, resume=modes["resume"], dry_run=modes["dry_run"])
    config_path = layout.write_config(request, out_dir)
    click.echo(f"launch: accelerate config written to {config_path}")
    address = layout.server_address(request)
    code = supervise(
        layout.ranks_command(request, config_path, address), server=layout.server_command(request),
        health_url=f"http://{address[0]}:{address[1]}/health" if address else None,
        log_path=out_dir / layout.SERVER_LOG_NAME, health_timeout=vllm_timeout, grace=grace,
        echo=lambda s: click.echo(s, err=True),
    )
    sys.exit(code)


def visible_gpus() -> tuple[str, ...]:
    """This machine's usable GPUs, as CUDA_VISIBLE_DEVICES entries (its own list when set)."""
    import torch  # deferred: heavy, and only a launch on GPUs asks

    count = torch.cuda.device_count()
    listed = [g.strip() for g in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if g.strip()]
    return tuple(listed[:count]) if listed else tuple(str(i) for i in range(count))


def _server_model(model: str | None) -> str:
    return resolve_model(model, echo=lambda s: click.echo(s, err=True), check_hub=False)
