"""Test-wide settings.

Tests use one torch thread (and pass ``OMP_NUM_THREADS=1`` to the subprocesses they start):
their tensors are tiny, and on a 2-core machine two OpenMP threads per process, with
subprocess tests running beside the main process, spin against each other and run up to
10x slower than one thread. The suite itself runs in one worker per core (pytest-xdist,
``-n auto`` in pyproject.toml), each worker with one thread.
"""

from __future__ import annotations

import os

import torch

os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)


def pytest_sessionstart(session: object) -> None:
    """Build rnnlab's native CPU kernel once, before any test.

    The subprocesses that tests start (CLI runs, torchrun, workers) then find it in the
    cache instead of each printing a build notice or building concurrently.
    """
    from rnnlab.nn import native

    native.built()
