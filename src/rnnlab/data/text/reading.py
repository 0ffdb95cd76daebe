"""Reading a text file strictly as UTF-8, with the byte offset of the first bad byte."""

from __future__ import annotations

import os
from pathlib import Path

from rnnlab.data.text.errors import CorpusError


def read_text(path: str | os.PathLike[str]) -> str:
    """A file's text, strictly UTF-8.

    Raises:
        CorpusError: the file is not UTF-8 (the message gives the byte offset) or unreadable.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise CorpusError(f"cannot read {path}: {error.strerror}") from error
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise CorpusError(
            f"{path} is not UTF-8: byte 0x{data[error.start]:02x} at offset {error.start} "
            f"({error.reason})"
        ) from None
