"""Finding a named data set on disk: the data roots searched, in order, and what is there.

The files are looked up under a *data root*::

    <root>/ptb/ptb.train.txt  ptb.valid.txt  ptb.test.txt
    <root>/ptb-char/ptb.char.train.txt ...
    <root>/tinyshakespeare/input.txt
    <root>/ett/ETTh1.csv  ETTh2.csv  ETTm1.csv  ETTm2.csv      (etth1 ... ettm2 share it)
    <root>/timeseries/airline-passengers.csv  monthly-sunspots.csv
    <root>/fsdd/recordings/*.wav  recordings-manifest.tsv

The root is, in order: the ``root`` argument, else ``$RNNLAB_DATA``, else the cache
``$RNNLAB_CACHE/data`` (``~/.cache/rnnlab/data`` when ``RNNLAB_CACHE`` is unset). Without a
``root`` argument :func:`locate` tries ``$RNNLAB_DATA`` first and then the cache.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rnnlab.cache import cache_dir
from rnnlab.data.datasets.catalog import DATASETS, get_spec
from rnnlab.data.datasets.checksums import copy_problems
from rnnlab.data.datasets.errors import DatasetError

FETCH_HINT = "rnnlab data fetch {name}"
"""The command that fetches a missing data set, as error messages suggest it."""


def default_root() -> Path:
    """Where :func:`fetch` writes by default: ``cache_dir() / "data"``."""
    return cache_dir() / "data"


def search_roots(root: str | os.PathLike[str] | None = None) -> list[Path]:
    """The data roots :func:`locate` tries, in order."""
    if root is not None:
        return [Path(root).expanduser()]
    roots = []
    env = os.environ.get("RNNLAB_DATA")
    if env:
        roots.append(Path(env).expanduser())
    roots.append(default_root())
    return roots


def locate(name: str, root: str | os.PathLike[str] | None = None, *, verify: bool = True) -> Path:
    """The path of a named data set, after checking its files.

    Args:
        name: a registry name (see :func:`list_datasets`).
        root: the data root to look in; by default ``$RNNLAB_DATA`` and then the cache.
        verify: check sha256 sums (else only presence and sizes).

    Returns:
        The data set's folder, or for a one-file data set the file itself
        (``<root>/tinyshakespeare/input.txt``, ``<root>/ett/ETTh1.csv``).

    Raises:
        DatasetError: unknown name; files missing in every root tried (the message lists
            them and says how to fetch); or a file with a wrong size or sum.
    """
    spec = get_spec(name)
    looked = []
    for base in search_roots(root):
        folder = base / spec.folder
        problems = copy_problems(spec, folder, verify)
        if not problems:
            return (folder / spec.entry) if spec.entry != "." else folder
        present = folder.is_dir() and any(folder.iterdir())
        if present and not all(p.endswith(" is missing") for p in problems):
            raise DatasetError(
                f"data set {name!r} in {folder} is damaged: {'; '.join(problems[:3])}; "
                f"re-fetch it with `{FETCH_HINT.format(name=name)} --to {base}`"
            )
        looked.append(f"{folder} ({problems[0]})")
    raise DatasetError(
        f"data set {name!r} not found; looked in: {'; '.join(looked)}. "
        f"Fetch it with `{FETCH_HINT.format(name=name)}` (or pass a root / set RNNLAB_DATA)"
    )


def is_present(name: str, root: str | os.PathLike[str] | None = None) -> Path | None:
    """The path :func:`locate` would return (checking sizes only), or ``None``."""
    try:
        return locate(name, root, verify=False)
    except DatasetError:
        return None


def list_datasets(root: str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
    """One row per data set, for a table: name, task, size, license, source, location.

    ``location`` is where the files were found (sizes checked, sums not), or ``None``.
    """
    rows = []
    for spec in DATASETS.values():
        found = is_present(spec.name, root)
        rows.append(
            {
                "name": spec.name,
                "task": spec.task,
                "files": len(spec.files) + (len(spec.tree.names) if spec.tree else 0),
                "size_bytes": spec.size,
                "license": spec.license,
                "source": f"{spec.repo}@{spec.commit[:7]}",
                "location": None if found is None else str(found),
            }
        )
    return rows
