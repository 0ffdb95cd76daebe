"""The exceptions rnnlab raises on purpose, so that callers can tell bad input from bugs.

Every error that a user can fix by changing a config, a file or a command-line argument is a
:class:`UserError`; the command line prints its one-line message and exits with code 2, with
no traceback. Other modules raise the subclasses below (or their own subclasses of them).

Example:
    >>> from rnnlab.errors import ConfigError, UserError
    >>> issubclass(ConfigError, UserError)
    True
"""

from __future__ import annotations


class RnnlabError(Exception):
    """Base class of every exception rnnlab raises on purpose."""


class UserError(RnnlabError):
    """Bad input the user can fix: the message says what was wrong and what is allowed."""


class ConfigError(UserError):
    """A config key or value is invalid; the message names its dotted path."""


class CheckpointError(UserError):
    """A checkpoint file is missing, truncated, corrupted or does not fit the model."""


class RunDirError(UserError):
    """A run directory is missing, incomplete, or would be overwritten."""


class StorageError(RunDirError):
    """Writing the run directory failed for a reason the user fixes outside rnnlab.

    The message names the run directory and what was being written; the files written
    before (the last good checkpoint) are intact.
    """


class DiskFullError(StorageError):
    """The device holding the run directory is full (``ENOSPC``, ``EDQUOT``)."""


class NotWritableError(StorageError):
    """The run directory cannot be written (read-only mount, no permission)."""


class RunLockedError(RunDirError):
    """Another training process holds the run directory's ``run.lock``."""


class DataError(UserError):
    """Data files are missing or malformed, or a split is too small for the settings."""


class NonFiniteLossError(RnnlabError):
    """Training met a NaN or infinite loss and stopped (see ``train.skip_nonfinite``)."""


class TrainingInterrupted(RnnlabError):  # noqa: N818  (not an error: a requested stop)
    """Training stopped on SIGINT or SIGTERM after writing ``last.pt``.

    Attributes:
        signum: the signal number that stopped the run.
        run_dir: the run directory to resume.
    """

    def __init__(self, message: str, signum: int, run_dir: str) -> None:
        super().__init__(message)
        self.signum = signum
        self.run_dir = run_dir

    @property
    def exit_code(self) -> int:
        """The conventional shell exit status for the signal: ``128 + signum``."""
        return 128 + self.signum
