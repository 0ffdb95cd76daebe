"""The run directory: one object that knows where a run keeps each of its files.

A run directory holds::

    config.toml              the resolved config
    metrics.jsonl            one JSON record per log line, evaluation and end
    checkpoints/last.pt      written every ``train.checkpoint_every`` steps and on stop
    checkpoints/best.pt      the checkpoint of the best validation metric so far

plus what a task adds beside them (a vocabulary, a scaler). Every command that reads a
finished or interrupted run (evaluate, generate, forecast, recognize, diagnose, resume,
studies) goes through :class:`RunDir`, so the file names and the rule "best, else last when
there is no best yet" are written once.

Example:
    >>> import tempfile
    >>> run = RunDir(tempfile.mkdtemp())
    >>> run.checkpoint_path("last").name
    'last.pt'
    >>> run.is_run()
    False
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from torch import nn

from rnnlab import config as config_mod
from rnnlab.config import ExperimentConfig
from rnnlab.errors import RunDirError, UserError
from rnnlab.training.checkpoint import load_checkpoint, load_model_state

Which = Literal["best", "last"]
CHECKPOINT_KINDS: tuple[Which, ...] = ("best", "last")


def check_which(which: str) -> Which:
    """``which`` itself when it is ``best`` or ``last``, else a one-line :class:`UserError`."""
    if which not in CHECKPOINT_KINDS:
        raise UserError(f"checkpoint {which!r} is not allowed (allowed: best, last)")
    return which


class RunDir:
    """A run directory and the files in it.

    Args:
        path: the directory (it need not exist yet: the trainer creates it).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def __fspath__(self) -> str:
        return os.fspath(self.path)

    @property
    def config_path(self) -> Path:
        """``config.toml``: the resolved config of the run."""
        return self.path / "config.toml"

    @property
    def metrics_path(self) -> Path:
        """``metrics.jsonl``: the run's log records."""
        return self.path / "metrics.jsonl"

    @property
    def checkpoint_dir(self) -> Path:
        """``checkpoints/``."""
        return self.path / "checkpoints"

    def checkpoint_path(self, which: Which) -> Path:
        """``checkpoints/best.pt`` or ``checkpoints/last.pt`` (whether or not it exists)."""
        return self.checkpoint_dir / f"{check_which(which)}.pt"

    def is_run(self) -> bool:
        """Whether the directory holds a run (its ``config.toml``)."""
        return self.config_path.is_file()

    def require(self) -> RunDir:
        """This run directory, after checking that it holds a run.

        Raises:
            RunDirError: naming the missing ``config.toml``.
        """
        if self.path.exists() and not self.path.is_dir():
            raise RunDirError(f"{self.path} is a file, not a run directory")
        if not self.is_run():
            raise RunDirError(
                f"{self.path} is not a run directory: {self.config_path} does not exist"
            )
        return self

    def check_path(self) -> RunDir:
        """This run directory, after checking that it is a directory or can be created: no
        file stands at its path or at the path of a folder above it (``output.dir``).

        Raises:
            RunDirError: naming the file in the way.
        """
        for folder in (self.path, *self.path.parents):
            if folder.is_dir():
                break
            if folder.exists() or folder.is_symlink():
                what = "a file" if folder.is_file() else "not a directory"
                if folder == self.path:
                    raise RunDirError(f"run directory {folder} is {what}; choose another --run-dir")
                raise RunDirError(
                    f"cannot create the run directory {self.path}: {folder} is {what}; "
                    "choose another --run-dir (or output.dir)"
                )
        return self

    def check_start(self, resume: bool) -> RunDir:
        """This run directory, after checking that training may start in it: a resume needs
        ``last.pt``; a new run needs a directory without a run's files.

        Raises:
            RunDirError: naming the missing checkpoint, or how to resume the run found.
        """
        last = self.checkpoint_path("last")
        if resume:
            if not last.is_file():
                raise RunDirError(f"cannot resume {self.path}: {last} does not exist")
        elif last.exists() or self.metrics_path.exists():
            raise RunDirError(
                f"run directory {self.path} already holds a run; resume it with "
                f"'rnnlab train --resume {self.path}' or choose another --run-dir"
            )
        return self

    def config(self, overrides: Sequence[str] = ()) -> ExperimentConfig:
        """The run's resolved config (with dotted ``overrides`` applied).

        Raises:
            RunDirError: not a run directory. ConfigError: the config does not validate.
        """
        self.require()
        return config_mod.load(self.config_path, overrides)

    def find_checkpoint(self, which: Which = "best") -> Path:
        """The path of the checkpoint to use: ``which``, where ``best`` falls back to
        ``last`` when the run has no best checkpoint yet (stopped before its first
        evaluation). The file may be missing; :meth:`checkpoint` then says so."""
        path = self.checkpoint_path(which)
        if which == "best" and not path.is_file():
            return self.checkpoint_path("last")
        return path

    def checkpoint(self, which: Which = "best") -> tuple[Path, dict[str, Any]]:
        """The checkpoint :meth:`find_checkpoint` chooses and its loaded payload.

        Raises:
            CheckpointError: the file is missing, corrupted or not an rnnlab checkpoint.
        """
        path = self.find_checkpoint(which)
        return path, load_checkpoint(path)

    def load_model(self, model: nn.Module, which: Which = "best") -> Path:
        """Load the weights of the chosen checkpoint into ``model``; returns its path (so a
        caller can say which checkpoint it used).

        Raises:
            CheckpointError: missing, corrupted, or weights that do not fit ``model``.
        """
        path, payload = self.checkpoint(which)
        load_model_state(model, payload.get("model"), path)
        return path
