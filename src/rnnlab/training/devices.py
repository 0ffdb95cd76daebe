"""Where training runs: the device named by ``train.device`` and the autocast of
``train.precision``."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch

from rnnlab.errors import ConfigError


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` -> CUDA, then MPS, then CPU; an explicit device must be available."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank)
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(
                "train.device='cuda' but no CUDA device is available (allowed here: auto, cpu)"
            )
        return torch.device("cuda", local_rank)
    if name == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("train.device='mps' but MPS is not available (allowed here: auto, cpu)")
    return torch.device(name)


def autocast(precision: str, device: torch.device) -> AbstractContextManager[Any]:
    """The mixed-precision context of ``train.precision``: none for ``fp32``, else
    ``torch.autocast`` to bfloat16 (``bf16``) or float16 (``fp16``) on ``device``."""
    if precision == "fp32":
        return nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def check_precision(precision: str, device: torch.device) -> None:
    """Raise a :class:`ConfigError` when ``train.precision`` cannot run on ``device``
    (``fp16`` needs CUDA)."""
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError(
            f"train.precision='fp16' needs a CUDA device (device is {device.type}); "
            "use fp32 or bf16"
        )
