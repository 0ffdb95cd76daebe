"""The one exception type of ``rnnlab.data.series``."""

from __future__ import annotations


class SeriesError(ValueError):
    """A bad series file, column, value, split or window setting; the message is one line.

    A ``ValueError`` subclass, so ``except ValueError`` catches it too.
    """
