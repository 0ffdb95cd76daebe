"""Atomic file writes: readers see the old file or the new one, never half of either.

Every file rnnlab saves (configs, checkpoints, vocabularies, scalers, plots, reports) goes
through :func:`atomic_write`: the content is written to a temporary file in the same folder,
flushed and fsynced, then renamed over the target (``os.replace`` is atomic on POSIX and
Windows). On any error the temporary file is removed and the previous file stays intact.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

# The temporary files of atomic_write: ".<target name>.<8 characters of mkstemp>.tmp".
_TEMPORARY = re.compile(r"\.(?P<target>.+)\.[a-z0-9_]{8}\.tmp")


def atomic_write(path: str | os.PathLike[str], write: Callable[[BinaryIO], object]) -> Path:
    """Call ``write(handle)`` on a temporary binary file, then rename it to ``path``.

    Creates the parent folder. Returns the path written.

    Example:
        >>> import tempfile, pathlib
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "hello.txt"
        >>> atomic_write(target, lambda f: f.write(b"hi")).read_bytes()
        b'hi'
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` as UTF-8 to ``path`` atomically (newlines kept as given)."""
    data = text.encode("utf-8")
    return atomic_write(path, lambda handle: handle.write(data))


def temporary_target(name: str) -> str | None:
    """The name of the file that ``name`` was a temporary of (an :func:`atomic_write` that
    never finished), or ``None`` when ``name`` is not such a temporary.

    Example:
        >>> temporary_target(".last.pt.k2j4_x9a.tmp"), temporary_target("last.pt")
        ('last.pt', None)
    """
    match = _TEMPORARY.fullmatch(name)
    return match.group("target") if match else None


def stale_temporaries(folder: str | os.PathLike[str]) -> list[Path]:
    """The temporaries of :func:`atomic_write` left in ``folder`` (not its subfolders) by a
    process killed mid-write: regular files whose names match the writer's pattern only."""
    source = Path(folder)
    if not source.is_dir():
        return []
    return sorted(
        entry
        for entry in source.iterdir()
        if temporary_target(entry.name) is not None and entry.is_file() and not entry.is_symlink()
    )
