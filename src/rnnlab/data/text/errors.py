"""The one exception type of ``rnnlab.data.text``."""

from __future__ import annotations

from rnnlab.errors import DataError


class CorpusError(DataError, ValueError):
    """A corpus file or directory cannot be read as asked (encoding, emptiness, layout).

    A :class:`~rnnlab.errors.DataError` and a ``ValueError``.
    """
