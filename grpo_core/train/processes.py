"""What the processes of one run (``torchrun``, ``accelerate launch``) tell each other outside TRL's own gathers."""

from __future__ import annotations

from typing import Any


def every_process(value: Any) -> list[Any]:
    """``value`` from every process of the run, in process order; ``[value]`` in a single process.

    A collective operation: every process must call it at the same point, or the ones that did wait for ever."""
    import torch.distributed as dist  # deferred: heavy (torch); the runner imports this module before the model loads

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return [value]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, value)
    return out


def leave_together() -> None:
    """At the end of a run: wait for every process, then close the process group.

    torchrun stops every process of a job as soon as one exits with a failure status (an interrupted run exits
    with 130), so none leaves before the main one has saved; and a gloo or NCCL group left to the interpreter's
    teardown can abort a process whose work is done ("terminate called without an active exception")."""
    import torch.distributed as dist  # deferred: heavy (torch)

    if not (dist.is_available() and dist.is_initialized()):
        return
    if dist.get_world_size() > 1:
        dist.barrier()
    dist.destroy_process_group()
