"""Stopping on SIGINT/SIGTERM: finish the current step, write ``last.pt``, then stop.

:class:`StopSignals` installs the handlers while training runs. The first signal is only
recorded (:attr:`StopSignals.received`): the trainer reads it after each step, on every DDP
process alike, writes ``last.pt`` and raises :class:`~rnnlab.errors.TrainingInterrupted`.
A second signal stops at once (``KeyboardInterrupt``).
"""

from __future__ import annotations

import signal
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

    def __init__(self) -> None:
        self.received: int | None = None

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
                raise KeyboardInterrupt
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
