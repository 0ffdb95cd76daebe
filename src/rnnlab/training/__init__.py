"""The training engine: a task-agnostic loop, checkpoints, callbacks, schedules and DDP."""

from rnnlab.data.loaders import EpochLoader, ShuffledBatches
from rnnlab.training.callbacks import Callback, EarlyStopping, PlainLog, ProgressBar
from rnnlab.training.checkpoint import load_checkpoint, save_checkpoint
from rnnlab.training.metrics_log import read_metrics
from rnnlab.training.outcome import FitResult
from rnnlab.training.protocol import StepInfo, TrainerView
from rnnlab.training.run_dir import RunDir
from rnnlab.training.schedules import build_schedule
from rnnlab.training.trainer import Trainer

__all__ = [
    "Callback",
    "EarlyStopping",
    "EpochLoader",
    "FitResult",
    "PlainLog",
    "ProgressBar",
    "RunDir",
    "ShuffledBatches",
    "StepInfo",
    "Trainer",
    "TrainerView",
    "build_schedule",
    "load_checkpoint",
    "read_metrics",
    "save_checkpoint",
]
