"""Named data sets: where their files live, what they must hash to, and how to fetch them.

Each name maps to a :class:`DatasetSpec`: a folder name, the files inside it with their sizes
and sha256 sums, and the public repository and commit they come from. The modules:

- :mod:`~rnnlab.data.datasets.specs`: :class:`FileSpec`, :class:`TreeSpec`, :class:`DatasetSpec`;
- :mod:`~rnnlab.data.datasets.catalog`: the pinned entries (:data:`DATASETS`, :func:`get_spec`);
- :mod:`~rnnlab.data.datasets.checksums`: sizes, sha256 sums and the FSDD manifest on disk;
- :mod:`~rnnlab.data.datasets.locating`: the data roots and :func:`locate` (layout diagram there);
- :mod:`~rnnlab.data.datasets.fetching`: :func:`fetch`, verified downloads;
- :mod:`~rnnlab.data.datasets.errors`: :class:`DatasetError`.

Example:
    >>> from rnnlab.data.datasets import get_spec
    >>> get_spec("ptb").files[0].name
    'ptb.train.txt'
"""

from __future__ import annotations

from rnnlab.data.datasets.catalog import DATASETS, get_spec
from rnnlab.data.datasets.checksums import build_manifest, sha256_file
from rnnlab.data.datasets.errors import DatasetError
from rnnlab.data.datasets.fetching import DEFAULT_BASE_URL, Progress, fetch
from rnnlab.data.datasets.locating import (
    FETCH_HINT,
    default_root,
    is_present,
    list_datasets,
    locate,
    search_roots,
)
from rnnlab.data.datasets.specs import DatasetSpec, FileSpec, TreeSpec

__all__ = [
    "DATASETS",
    "DEFAULT_BASE_URL",
    "FETCH_HINT",
    "DatasetError",
    "DatasetSpec",
    "FileSpec",
    "Progress",
    "TreeSpec",
    "build_manifest",
    "default_root",
    "fetch",
    "get_spec",
    "is_present",
    "list_datasets",
    "locate",
    "search_roots",
    "sha256_file",
]
