"""Checkpoints: plain dicts of tensors and numbers, written atomically, read with
``weights_only=True``.

A checkpoint holds everything needed to continue a run bit for bit::

    format, version            "rnnlab-checkpoint", 1
    model, optimizer, scaler   state dicts (scaler: fp16 loss scaling, else None)
    schedule, callbacks        learning-rate schedule and callback states (early stopping, best)
    meters                     running sums of the current logging interval and epoch
    step, epoch, batch         position: global step, 0-based epoch, batches done in it
    task_state                 a stateful task's carried hidden state (tensors) or None
    rng                        python random, numpy, torch CPU and CUDA generator states,
                               all as tensors and numbers (no pickled objects)
    config                     the resolved config as a plain dict
    metrics                    the latest validation metrics

Writing goes to a temporary file in the same folder, flushed and fsynced, then renamed over
the target, so a crash leaves the previous checkpoint intact. Reading failures (truncated,
corrupted, not a checkpoint) raise :class:`~rnnlab.errors.CheckpointError` naming the file.
"""

from __future__ import annotations

import os
import random
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rnnlab.errors import CheckpointError
from rnnlab.io import atomic_write
from rnnlab.training.untrusted import pickled_object

FORMAT = "rnnlab-checkpoint"
VERSION = 1


# ------------------------------------------------------------------------------ RNG states


def capture_rng() -> dict[str, Any]:
    """Every global RNG state, as tensors and numbers (loadable with ``weights_only``)."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    state: dict[str, Any] = {
        "python": {
            "version": int(version),
            "state": torch.tensor(internal, dtype=torch.int64),
            "gauss": gauss,
        },
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Restore what :func:`capture_rng` captured (CUDA states only where CUDA is present)."""
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss"]))
    npy = state["numpy"]
    np.random.set_state(
        (
            npy["kind"],
            npy["keys"].numpy().astype(np.uint32),
            npy["pos"],
            npy["has_gauss"],
            npy["cached"],
        )
    )
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"][: torch.cuda.device_count()])


# ---------------------------------------------------------------------------- save / load


def save_checkpoint(payload: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write ``payload`` to ``path`` atomically (temporary file, flush, fsync, rename).

    Args:
        payload: the checkpoint dict (its ``format``/``version`` keys are added here).
        path: the target file; its folder is created if needed.

    Returns:
        The path written.
    """
    return atomic_write(
        path, lambda handle: torch.save({"format": FORMAT, "version": VERSION, **payload}, handle)
    )


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint with ``torch.load(weights_only=True)`` onto the CPU.

    Torch's warnings are silenced while it reads.

    Raises:
        CheckpointError: the file is missing, truncated or corrupted, holds pickled Python
            objects (refused: loading them could run code), or is not an rnnlab checkpoint;
            the message names the file. The file itself is left untouched.
    """
    source = Path(path)
    if not source.is_file():
        raise CheckpointError(f"checkpoint {source} does not exist")
    try:
        with warnings.catch_warnings():  # torch's notes on pickle protocols are not for users
            warnings.simplefilter("ignore")
            payload = torch.load(source, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises RuntimeError, EOFError, UnpicklingError, ...
        raise _unreadable(source, err) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{source} is not an rnnlab checkpoint (no '{FORMAT}' marker)")
    if payload.get("version") != VERSION:
        raise CheckpointError(
            f"checkpoint {source} has format version {payload.get('version')}; "
            f"this rnnlab reads version {VERSION}"
        )
    return payload


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


RESUME_FIELDS: dict[str, tuple[type, ...]] = {
    "model": (dict,),
    "optimizer": (dict,),
    "schedule": (dict,),
    "callbacks": (dict,),
    "meters": (dict,),
    "step": (int,),
    "epoch": (int,),
    "batch": (int,),
    "best": (float, int, type(None)),
    "metrics": (dict,),
    "rng": (dict,),
    "task_state": (torch.Tensor, list, tuple, type(None)),
}
"""What a checkpoint must hold, and of which type, to continue a run from it."""


def check_resumable(payload: dict[str, Any], source: str | os.PathLike[str]) -> None:
    """Check that ``payload`` holds every field a resume restores, with its type.

    Raises:
        CheckpointError: one line naming the file and the first missing or mistyped field
            (a checkpoint written by another program, or edited).
    """
    for field, kinds in RESUME_FIELDS.items():
        if field not in payload:
            raise CheckpointError(
                f"checkpoint {source} cannot be resumed: it has no '{field}' (not written by "
                "an rnnlab run, or damaged)"
            )
        value = payload[field]
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise CheckpointError(
                f"checkpoint {source} cannot be resumed: '{field}' is a "
                f"{type(value).__name__}, expected {' or '.join(k.__name__ for k in kinds)}"
            )
    for meter in ("interval", "epoch"):
        if not isinstance(payload["meters"].get(meter), dict):
            raise CheckpointError(f"checkpoint {source} cannot be resumed: no meters.{meter}")


def _unreadable(source: Path, err: Exception) -> CheckpointError:
    """The one-line error for a checkpoint ``torch.load`` could not read."""
    refused = pickled_object(source, err)
    if refused is not None:
        return CheckpointError(
            f"checkpoint {source} holds pickled Python objects ({refused}) that could run code "
            "when loaded; rnnlab refuses to load them (checkpoints are read with "
            "weights_only=True: tensors and plain values only)"
        )
    text = _ANSI.sub("", str(err))
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    reason = lines[0] if lines else type(err).__name__
    return CheckpointError(
        f"checkpoint {source} is truncated or corrupted and cannot be read "
        f"({type(err).__name__}: {reason[:200]})"
    )


def load_model_state(model: nn.Module, state: Any, source: str | os.PathLike[str]) -> None:
    """Load weights into ``model``, or raise one clear error when they do not fit.

    Args:
        state: the checkpoint's ``model`` table (``payload.get("model")``: ``None`` when the
            checkpoint has none).

    Raises:
        CheckpointError: no weights table, or naming missing and unexpected parameters and
            shape mismatches, and the file they came from.
    """
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {source} holds no model weights (no 'model' table)")
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [
        f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
        for k in sorted(set(own) & set(state))
        if tuple(state[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing {_few(missing)}")
        if unexpected:
            parts.append(f"unexpected {_few(unexpected)}")
        if shapes:
            parts.append(f"shape (checkpoint vs model) {_few(shapes)}")
        raise CheckpointError(
            f"checkpoint {source} does not match the model built from the config: "
            f"{'; '.join(parts)} (was the model section changed since the checkpoint was written?)"
        )
    model.load_state_dict(state)


def _few(items: list[str], limit: int = 4) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")
