"""What describes a named data set: its files with sizes and sha256 sums, and its source.

:class:`FileSpec` is one file, :class:`TreeSpec` a folder of many files verified through one
manifest (FSDD's recordings), :class:`DatasetSpec` the whole data set. The pinned entries
themselves are in :mod:`rnnlab.data.datasets.catalog`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class FileSpec:
    """One file of a data set.

    Attributes:
        name: path relative to the data set's folder (``ptb.train.txt``).
        size: expected size in bytes.
        sha256: expected sha256, lower-case hex.
        url_path: path of the file in the source repository at ``commit``.
    """

    name: str
    size: int
    sha256: str
    url_path: str


@dataclass(frozen=True)
class DatasetSpec:
    """A named data set.

    Attributes:
        name: registry name (``ptb``, ``etth1``, ...).
        folder: sub-folder of the data root that holds it (``ett`` for the four ETT sets).
        task: what it is for, in a few words.
        files: the files, each with size and sha256.
        repo: source repository ``owner/name`` on GitHub.
        commit: pinned commit of ``repo``.
        license: the license as stated upstream, in a few words.
        entry: what :func:`locate` returns, relative to ``folder`` (``"."`` for the folder,
            else a file a loader takes directly).
        tree: for FSDD only, the recordings as a whole
            (see :mod:`~rnnlab.data.datasets.checksums`).
        options: hints for loaders (for text: ``level``).
    """

    name: str
    folder: str
    task: str
    files: tuple[FileSpec, ...]
    repo: str
    commit: str
    license: str
    entry: str = "."
    tree: TreeSpec | None = None
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> int:
        """Total bytes of the data set's files."""
        return sum(f.size for f in self.files) + (self.tree.size if self.tree else 0)


@dataclass(frozen=True)
class TreeSpec:
    """A folder of many files verified through one manifest (FSDD's recordings).

    Attributes:
        folder: sub-folder holding the files (``recordings``).
        names: every file name inside ``folder``.
        size: total bytes of the files.
        manifest: name of the manifest file written beside ``folder``.
        manifest_sha256: sha256 of the manifest rebuilt from correct files.
        url_dir: folder of the files in the source repository.
    """

    folder: str
    names: tuple[str, ...]
    size: int
    manifest: str
    manifest_sha256: str
    url_dir: str
