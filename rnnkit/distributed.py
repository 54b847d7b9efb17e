"""Multi-process, multi-machine training: `torchrun` + DistributedDataParallel.

    torchrun --nproc-per-node 2 -m rnnkit train input.txt --out runs/input

torchrun starts one process per rank and tells each, through environment variables (RANK,
WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT), who it is and where to meet. Each process
joins the group (gloo on CPU, NCCL on GPU), trains on its own share of the token streams, and
DistributedDataParallel averages the gradients in the backward pass, so every rank takes the same
optimizer step and the weights stay identical. Rank 0 alone prints, encodes the corpus and
writes checkpoints; values that decide control flow (the loss for the divergence check, the
elapsed time for a --time budget) are agreed on by all ranks each step, so no rank stops or
evaluates while the others wait in a collective.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.size > 1


SINGLE = World()


def join(device_type: str) -> World:
    """The world this process belongs to; joins the process group when started by torchrun
    with more than one process (WORLD_SIZE > 1), and is a no-op otherwise."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return SINGLE
    world = World(rank=int(os.environ["RANK"]), size=size, local_rank=int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        if device_type == "cuda":
            gpus = torch.cuda.device_count()
            if world.local_rank >= gpus:  # NCCL needs a GPU of its own for every process
                from .errors import UsageError
                raise UsageError(f"torchrun started more processes on this machine than PyTorch sees GPUs ({gpus}); "
                                 f"use --nproc-per-node {gpus}, or --device cpu to train on the CPU")
            torch.cuda.set_device(world.local_rank)
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    return world


def leave(world: World) -> None:
    """Leave the process group, all ranks together: a rank that exits while another's gloo threads
    still talk to it can take that rank down with SIGABRT ("terminate called without an active
    exception"), seen now and then at the end of two-process CPU runs."""
    if world.active and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def share(world: World, obj: Any) -> Any:
    """Rank 0's `obj` on every rank (any picklable value; rank 0's own data, never a file's)."""
    if not world.active:
        return obj
    box = [obj if world.is_main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(world: World) -> None:
    if world.active:
        dist.barrier()


def agree(world: World, values: list[float], device: torch.device) -> list[float]:
    """The mean over ranks of each value; identical on every rank afterwards."""
    if not world.active:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return (t / world.size).tolist()


def gather(world: World, tensors: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """Each tensor stacked over ranks: (world size, ...), on every rank. The tensors must have
    the same names and shapes on every rank (carried state, RNG state); they travel on `device`
    (NCCL moves only GPU tensors)."""
    if not world.active:
        return tensors
    out = {}
    for name in sorted(tensors):
        t = tensors[name].to(device).contiguous()
        parts = [torch.empty_like(t) for _ in range(world.size)]
        dist.all_gather(parts, t)
        out[name] = torch.stack(parts)
    return out


def wrap(model: nn.Module, world: World, device: torch.device) -> nn.Module:
    """The module the training step calls: DDP around `model` when there are several ranks.
    DDP copies rank 0's weights to every rank on construction."""
    if not world.active:
        return model
    from torch.nn.parallel import DistributedDataParallel
    return DistributedDataParallel(model, device_ids=[world.local_rank] if device.type == "cuda" else None)


def shard(start: int, stop: int, world: World) -> tuple[int, int]:
    """This rank's contiguous share [a, b) of the token range [start, stop); shares are equal."""
    share_length = (stop - start) // world.size
    a = start + world.rank * share_length
    return a, a + share_length
