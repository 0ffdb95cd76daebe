"""Data-parallel training under ``torchrun``: process group, model wrapping, flag exchange.

``torchrun --nproc_per_node=N -m rnnlab train ...`` sets ``RANK``, ``WORLD_SIZE`` and
``LOCAL_RANK``; :func:`setup` then joins the process group (``gloo`` on CPU, ``nccl`` on
CUDA). Each process takes ``batch_size / N`` rows of every global batch (see
``rnnlab.data.loaders``) and DDP averages the gradients, so one optimizer step sees the
same global batch as a one-process run. Only rank 0 writes the run directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: ``rank`` of ``world_size``, ``local_rank`` on its node."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0, the only process that writes files and prints."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        """More than one process."""
        return self.world_size > 1


def from_env() -> DistInfo:
    """Read ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` as set by ``torchrun`` (1 process if absent)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    return DistInfo(
        rank=int(os.environ.get("RANK", "0")),
        world_size=world,
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
    )


def setup(device_type: str) -> tuple[DistInfo, bool]:
    """Join the process group when started by ``torchrun``.

    Returns:
        The process's :class:`DistInfo` and whether this call created the group (and so
        should destroy it at the end).
    """
    info = from_env()
    if not info.enabled:
        return info, False
    if dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), info.local_rank), False
    backend = "nccl" if device_type == "cuda" else "gloo"
    if device_type == "cuda":
        torch.cuda.set_device(info.local_rank)
    dist.init_process_group(backend=backend)
    return info, True


def teardown(created: bool) -> None:
    """Destroy the process group if :func:`setup` created it."""
    if created and dist.is_initialized():
        dist.destroy_process_group()


def wrap(model: nn.Module, info: DistInfo, device: torch.device) -> nn.Module:
    """``DistributedDataParallel(model)`` under torchrun, else the model itself."""
    if not info.enabled:
        return model
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)


def any_true(flags: list[bool], info: DistInfo, device: torch.device) -> list[bool]:
    """For each flag, whether it is true on any process (one all-reduce)."""
    if not info.enabled:
        return flags
    tensor = torch.tensor([float(f) for f in flags], device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return [bool(v) for v in tensor.tolist()]


def broadcast(value: Any, info: DistInfo) -> Any:
    """Rank 0's ``value`` on every process."""
    if not info.enabled:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(info: DistInfo) -> None:
    """Wait for every process."""
    if info.enabled:
        dist.barrier()
