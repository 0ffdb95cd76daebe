"""The training engine: a task-agnostic loop, checkpoints, callbacks, schedules and DDP."""

from rnnlab.training.callbacks import Callback, EarlyStopping, PlainLog, ProgressBar, StepInfo
from rnnlab.training.checkpoint import load_checkpoint, save_checkpoint
from rnnlab.training.loader import EpochLoader, ShuffledBatches
from rnnlab.training.metrics import read_metrics
from rnnlab.training.schedules import build_schedule
from rnnlab.training.trainer import FitResult, Trainer

__all__ = [
    "Callback",
    "EarlyStopping",
    "EpochLoader",
    "FitResult",
    "PlainLog",
    "ProgressBar",
    "ShuffledBatches",
    "StepInfo",
    "Trainer",
    "build_schedule",
    "load_checkpoint",
    "read_metrics",
    "save_checkpoint",
]
