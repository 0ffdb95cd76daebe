"""One training per run directory: ``run.lock``, held with ``fcntl.flock`` while it trains.

:func:`claim` takes a run directory for one training, in this order: the path must be a
directory (or creatable), writable; the lock is taken (a second training into the same
directory refuses with one line naming the holder); the directory must fit the start (a
resume needs ``last.pt``, a new run an empty directory); then the temporaries of atomic
writes cut short by a killed process are removed.

``flock`` locks belong to the open file: the kernel drops them when the holder dies, even by
SIGKILL, so a lock file left behind never blocks a later run. The holder writes its pid and
host into the file (shown to the one refused) and removes it on release; a process that
opened the file just before it was removed sees that its file is no longer the one at
``run.lock`` and opens again. Under ``torchrun`` only rank 0 calls :func:`claim`. Where
``fcntl`` does not exist (Windows) no lock is taken.

Example:
    >>> import tempfile
    >>> lock = RunLock(tempfile.mkdtemp()).acquire()
    >>> lock.path.name
    'run.lock'
    >>> lock.release()
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from pathlib import Path

from rnnlab.errors import RunLockedError
from rnnlab.training.faults import check_writable, remove_stale_temporaries, writing
from rnnlab.training.run_dir import RunDir

LOCK_NAME = "run.lock"


class RunLock:
    """The exclusive lock of one run directory.

    Args:
        folder: the run directory (it must exist).
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        """Take the lock now, or refuse.

        Raises:
            RunLockedError: another process holds it (the message names it).
            OSError: the file cannot be created (see :mod:`rnnlab.training.faults`).
        """
        if sys.platform == "win32":
            return self
        import fcntl

        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = self._holder(fd)
                os.close(fd)
                raise RunLockedError(
                    f"run directory {self.folder} is in use by another training ({holder}); "
                    "wait for it to end (or stop it), or choose another --run-dir"
                ) from None
            except BaseException:
                os.close(fd)
                raise
            if self._is_current(fd):
                break
            os.close(fd)  # released and removed between our open and flock: open again
        try:
            record = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
            os.ftruncate(fd, 0)
            os.write(fd, (json.dumps(record) + "\n").encode())
        except BaseException:
            self._fd = fd
            self.release()
            raise
        self._fd = fd
        return self

    def _is_current(self, fd: int) -> bool:
        try:
            return os.path.samestat(os.fstat(fd), os.stat(self.path))
        except FileNotFoundError:
            return False

    @staticmethod
    def _holder(fd: int) -> str:
        try:
            record = json.loads(os.pread(fd, 4096, 0).decode())
            since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(record["since"])))
            return f"pid {int(record['pid'])} on {record['host']}, since {since}"
        except (OSError, ValueError, KeyError, TypeError):
            return "a process that has not written its pid yet"

    def release(self) -> None:
        """Remove ``run.lock`` and drop the lock (nothing when it is not held)."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):  # a file left behind blocks no one: flock is gone
            self.path.unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._fd is not None


def _printer(text: str) -> None:
    print(f"note: {text}", file=sys.stderr, flush=True)


def _silent(text: str) -> None:
    del text


def claim(run: RunDir, resume: bool, announce: bool = True) -> RunLock:
    """Take ``run`` for one training (see the module docstring for the steps).

    Args:
        run: the run directory.
        resume: whether the training continues the run.
        announce: print a one-line notice on stderr when stale temporaries are removed.

    Returns:
        The held lock; release it when training ends.

    Raises:
        RunDirError: not a directory, not writable, in use, or not fit for the start.
    """
    run.check_path()
    check_writable(run.path, resume)
    with writing(run.path, run.path):
        run.path.mkdir(parents=True, exist_ok=True)
    with writing(run.path, run.path / LOCK_NAME):
        lock = RunLock(run.path).acquire()
    try:
        run.check_start(resume)
        remove_stale_temporaries(run.path, _printer if announce else _silent)
    except BaseException:
        lock.release()
        raise
    return lock
