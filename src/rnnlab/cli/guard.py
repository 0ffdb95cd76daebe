"""The one place where rnnlab's errors become a message and an exit code.

Every command runs its body through :func:`guard`:

======================================  ====================================================
error                                   what the user sees
======================================  ====================================================
:class:`~rnnlab.errors.UserError`       ``error: <one line>`` on stderr, exit code 2
:class:`~rnnlab.errors.NonFiniteLossError`  ``error: <one line>``, exit code 1
:class:`~rnnlab.errors.TrainingInterrupted` its message (and how to continue), exit 128 + signal
======================================  ====================================================

Anything else is a bug and keeps its traceback.

Example:
    >>> from rnnlab.errors import ConfigError
    >>> def bad() -> None:
    ...     raise ConfigError("train.lr: must be positive")
    >>> guard(bad)  # doctest: +SKIP
    error: train.lr: must be positive
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import typer
from rich.console import Console

from rnnlab.errors import NonFiniteLossError, TrainingInterrupted, UserError

err = Console(stderr=True, highlight=False, soft_wrap=True)

T = TypeVar("T")


def one_line(error: BaseException) -> str:
    """The error's message on one line: a message of several lines (a config with several
    bad keys: one per key) has its lines joined by ``"; "``, and a line break that came with
    the user's input (a key or a file name) cannot start a line of its own.

    Example:
        >>> one_line(ValueError("a: bad\\nb: unknown key"))
        'a: bad; b: unknown key'
    """
    return "; ".join(line.strip() for line in str(error).splitlines() if line.strip())


def guard(body: Callable[[], T], interrupted_hint: str = "") -> T:
    """Run ``body``; turn rnnlab's expected errors into one line on stderr and an exit code.

    Args:
        body: the command's work.
        interrupted_hint: appended to the message of a stop by SIGINT/SIGTERM (e.g. "; run
            the same command again to resume the study").

    Raises:
        typer.Exit: with code 2 (bad input), 1 (non-finite loss) or 128 + signal (stopped).
    """
    try:
        return body()
    except UserError as error:
        err.print(f"error: {one_line(error)}", markup=False)
        raise typer.Exit(2) from None
    except NonFiniteLossError as error:
        err.print(f"error: {one_line(error)}", markup=False)
        raise typer.Exit(1) from None
    except TrainingInterrupted as error:
        err.print(f"{error}{interrupted_hint}", markup=False)
        raise typer.Exit(error.exit_code) from None
