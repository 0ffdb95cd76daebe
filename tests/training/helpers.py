"""Shared helpers for training tests: tiny adding-task configs and subprocess runners."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

from rnnlab import config as config_mod
from rnnlab.config import ExperimentConfig

ROOT = Path(__file__).resolve().parents[2]

TINY = [
    "data.length=6",
    "data.train_samples=64",
    "data.valid_samples=32",
    "data.test_samples=32",
    "model.hidden_size=8",
    "train.batch_size=16",
    "train.epochs=2",
    "train.log_every_steps=2",
    "train.device=cpu",
    "train.num_threads=1",
]


def tiny_config(*overrides: str) -> ExperimentConfig:
    """The adding recipe shrunk to run in well under a second."""
    return config_mod.load("adding", [*TINY, *overrides])


def env() -> dict[str, str]:
    """Environment for subprocesses: the source tree importable, no thread oversubscription."""
    out = dict(os.environ)
    out["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + out.get("PYTHONPATH", "")
    out["OMP_NUM_THREADS"] = "1"
    return out


def rnnlab_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "rnnlab", *args]


def run_cli(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        rnnlab_cmd(*args), cwd=cwd, env=env(), capture_output=True, text=True, timeout=timeout
    )


def weights(path: Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=True)["model"]
