"""The one exception type of ``rnnlab.data.datasets``."""

from __future__ import annotations

from rnnlab.errors import DataError


class DatasetError(DataError, ValueError):
    """A named data set is unknown, missing, or has a file that fails its checksum.

    A :class:`~rnnlab.errors.DataError` (the command line prints it as one line) and a
    ``ValueError``.
    """
