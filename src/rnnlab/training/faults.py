"""Storage faults of a run directory, as one-line errors: a full disk, a read-only mount.

Writing a checkpoint or ``metrics.jsonl`` can fail for reasons the user fixes outside
rnnlab: the device is full (``ENOSPC``, ``EDQUOT``) or the directory cannot be written
(``EROFS`` on a read-only mount, ``EACCES``/``EPERM`` without permission). :func:`writing`
turns such an :class:`OSError` into a :class:`~rnnlab.errors.DiskFullError` or
:class:`~rnnlab.errors.NotWritableError` that names the run directory, the file being
written and the checkpoint a resume continues from (atomic writes leave it intact and
remove their temporary file). Other errors pass through unchanged.

:func:`check_writable` refuses up front a run directory that cannot be written, before
anything in it changes; :func:`remove_stale_temporaries` removes the temporary files that a
process killed in the middle of an atomic write left behind.

Example:
    >>> import errno
    >>> error = storage_error(OSError(errno.ENOSPC, "No space"), Path("runs/x"), None, None)
    >>> type(error).__name__
    'DiskFullError'
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from rnnlab.errors import DiskFullError, NotWritableError, StorageError
from rnnlab.io import stale_temporaries

DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})
NOT_WRITABLE = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})


def _shown(path: Path, run: Path) -> str:
    """``path`` relative to the run directory when it lies in it, else as given."""
    try:
        return str(path.relative_to(run))
    except ValueError:
        return str(path)


def storage_error(
    err: OSError, run: Path, target: Path | None, last_good: Path | None
) -> StorageError | None:
    """The one-line error for a failed write in ``run``, or ``None`` when ``err`` is not a
    full disk or an unwritable directory.

    Args:
        err: the error the write raised.
        run: the run directory.
        target: the file being written (``None``: somewhere in the run directory).
        last_good: the checkpoint a resume would continue from, if any.
    """
    where = f"writing {_shown(target, run)}" if target is not None else "writing the run"
    if last_good is not None and last_good.is_file():
        kept = f"the last good checkpoint {_shown(last_good, run)} is intact"
        then = f"resume with rnnlab train --resume {run}"
    else:
        kept = "no checkpoint was written yet"
        then = f"start the run again (remove {run} first)"
    if err.errno in DISK_FULL:
        return DiskFullError(
            f"no space left on the device holding {run} ({where}); {kept}: free space and {then}"
        )
    if err.errno in NOT_WRITABLE:
        reason = "read-only file system" if err.errno == errno.EROFS else "permission denied"
        return NotWritableError(
            f"run directory {run} is not writable ({reason}, {where}); {kept}: make it "
            f"writable (or copy the run to a writable place) and {then}"
        )
    return None


def _none() -> Path | None:
    return None


@contextmanager
def writing(
    run: Path, target: Path | None, last_good: Callable[[], Path | None] = _none
) -> Iterator[None]:
    """Inside the block, a full disk or an unwritable directory raises its one-line
    :class:`~rnnlab.errors.StorageError` (see :func:`storage_error`); ``last_good`` tells,
    when it happens, the checkpoint a resume would continue from."""
    try:
        yield
    except OSError as err:
        error = storage_error(err, run, target, last_good())
        if error is None:
            raise
        raise error from None


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(".")


def check_writable(run: Path, resume: bool) -> None:
    """Refuse, before anything changes, a run directory that cannot be written.

    A resume needs to write the run directory and its ``checkpoints/``; a new run needs to
    create (or write) the directory, so its nearest existing folder must be writable.
    ``os.access`` sees read-only mounts even for root.

    Raises:
        NotWritableError: naming the directory and that it is not writable.
    """
    if resume:
        for folder in (run, run / "checkpoints"):
            if folder.is_dir() and not os.access(folder, os.W_OK):
                raise NotWritableError(
                    f"run directory {run} is not writable (read-only file system or no "
                    f"permission: {folder}); nothing was changed: make it writable (or copy "
                    f"the run to a writable place) and resume with rnnlab train --resume {run}"
                )
        return
    existing = _nearest_existing(run)
    if existing.is_dir() and not os.access(existing, os.W_OK):
        raise NotWritableError(
            f"cannot write the run directory {run}: {existing} is not writable (read-only "
            "file system or no permission); choose another --run-dir (or output.dir)"
        )


def remove_stale_temporaries(run: Path, notice: Callable[[str], None]) -> list[Path]:
    """Remove the temporaries of atomic writes cut short by a killed process (files named
    like the atomic writer's temporaries only, in the run directory and ``checkpoints/``),
    and say so in one line through ``notice``. Call it only while holding the run's lock.

    Returns:
        The files removed.
    """
    stale = [*stale_temporaries(run), *stale_temporaries(run / "checkpoints")]
    for path in stale:
        with writing(run, path):
            path.unlink(missing_ok=True)
    if stale:
        names = ", ".join(_shown(path, run) for path in stale)
        notice(
            f"removed {len(stale)} temporary file(s) left in {run} by an interrupted write: {names}"
        )
    return stale
