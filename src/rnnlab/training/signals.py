"""Stopping on SIGINT/SIGTERM: finish the current step, write ``last.pt``, then stop.

:class:`StopSignals` installs the handlers while training runs. The first signal is only
recorded (:attr:`StopSignals.received`): the trainer reads it after each step, on every DDP
process alike, writes ``last.pt`` and raises :class:`~rnnlab.errors.TrainingInterrupted`.
A later signal (an impatient second Ctrl-C) never cuts the checkpoint write short: it only
prints one line saying that the run is stopping and saving ``last.pt`` and exits when it is
saved (SIGKILL still stops at once; ``last.pt`` then keeps its previous content).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

SIGNAL_NAMES = {signal.SIGINT: "SIGINT", signal.SIGTERM: "SIGTERM"}


class StopSignals:
    """The stop signals of one training run.

    Attributes:
        received: the number of the first signal received, or ``None``.
    """

    def __init__(self, saving: str | os.PathLike[str] = "checkpoints/last.pt") -> None:
        self.received: int | None = None
        self.saving = os.fspath(saving)

    def _again(self, signum: int) -> None:
        """Say, on the main process only, that the stop is under way."""
        if os.environ.get("RANK", "0") != "0":
            return
        name = SIGNAL_NAMES.get(signal.Signals(signum), str(signum))
        line = (
            f"{name} received again: the run is stopping, saving {self.saving}; "
            "it exits when the checkpoint is saved\n"
        )
        try:
            sys.stderr.write(line)
            sys.stderr.flush()
        except (OSError, RuntimeError, ValueError):  # stderr busy (reentrant) or closed
            with contextlib.suppress(OSError):  # nowhere to say it: the stop goes on
                os.write(2, line.encode())

    @contextmanager
    def installed(self) -> Iterator[None]:
        """Catch SIGINT and SIGTERM inside the block (previous handlers restored after it).

        Handlers can be installed only from the main thread; elsewhere nothing is caught.
        """
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum: int, frame: FrameType | None) -> None:
            if self.received is not None:
                self._again(signum)
            else:
                self.received = signum

        previous: dict[int, Callable[..., Any] | int | None] = {}
        for sig in SIGNAL_NAMES:
            previous[int(sig)] = signal.signal(sig, handler)
        try:
            yield
        finally:
            for number, old in previous.items():
                signal.signal(number, old)

    @property
    def number(self) -> int:
        """The signal received (``SIGTERM`` when none was, e.g. another DDP process got it)."""
        return int(self.received if self.received is not None else signal.SIGTERM)

    @property
    def name(self) -> str:
        """``SIGINT``, ``SIGTERM`` or the number of :attr:`number`."""
        return SIGNAL_NAMES.get(signal.Signals(self.number), str(self.number))
