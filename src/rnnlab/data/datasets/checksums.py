"""Checking a data set's files on disk: sizes, sha256 sums, and the manifest of a file tree.

Files listed in a :class:`~rnnlab.data.datasets.specs.DatasetSpec` are checked one by one.
FSDD (3,000 recordings) is verified as a whole: the manifest ``recordings-manifest.tsv``
(header ``file<TAB>bytes<TAB>sha256``, then one sorted row per ``recordings/*.wav``) is rebuilt
from the files on disk and its sha256 compared with the pinned one, so one sum covers every
byte of every recording, and a changed, missing or extra file is caught.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

from rnnlab.data.datasets.specs import DatasetSpec, TreeSpec

CHUNK = 1 << 20
"""Bytes read (or downloaded) at a time while hashing."""


def sha256_file(path: Path) -> str:
    """The sha256 of a file, lower-case hex, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def build_manifest(folder: Path, names: Iterable[str], prefix: str) -> str:
    """The manifest text of ``names`` in ``folder``: a header, then ``prefix/name, bytes, sha256``.

    Rows are sorted by their path, as in FSDD's ``recordings-manifest.tsv``.
    """
    rows = ["file\tbytes\tsha256"]
    for name in sorted(f"{prefix}/{n}" for n in names):
        path = folder / name.split("/", 1)[1]
        rows.append(f"{name}\t{path.stat().st_size}\t{sha256_file(path)}")
    return "\n".join(rows) + "\n"


def copy_problems(spec: DatasetSpec, folder: Path, verify: bool) -> list[str]:
    """What is wrong with ``folder`` as a copy of ``spec``: an empty list when nothing is.

    Args:
        spec: the data set.
        folder: its folder under a data root.
        verify: compare sha256 sums too (else only presence and sizes).
    """
    problems = []
    for f in spec.files:
        path = folder / f.name
        if not path.is_file():
            problems.append(f"{path} is missing")
        elif path.stat().st_size != f.size:
            problems.append(f"{path} has {path.stat().st_size} bytes, expected {f.size}")
        elif verify and (actual := sha256_file(path)) != f.sha256:
            problems.append(f"{path} has sha256 {actual}, expected {f.sha256}")
    if spec.tree is not None:
        problems.extend(tree_problems(spec.tree, folder, verify))
    return problems


def tree_problems(tree: TreeSpec, folder: Path, verify: bool) -> list[str]:
    """What is wrong with ``folder / tree.folder``: missing, extra or changed files, or ``[]``."""
    sub = folder / tree.folder
    if not sub.is_dir():
        return [f"{sub} is missing"]
    present = {p.name for p in sub.iterdir() if p.is_file()}
    missing = sorted(set(tree.names) - present)
    extra = sorted(present - set(tree.names))
    if missing or extra:
        return [
            f"{sub}: {len(missing)} file(s) missing (first: {missing[:3]}), "
            f"{len(extra)} unexpected (first: {extra[:3]})"
        ]
    total = sum((sub / n).stat().st_size for n in tree.names)
    if total != tree.size:
        return [f"{sub}: files total {total} bytes, expected {tree.size}"]
    if verify:
        manifest = build_manifest(sub, tree.names, tree.folder)
        actual = hashlib.sha256(manifest.encode()).hexdigest()
        if actual != tree.manifest_sha256:
            return [f"{sub}: manifest sha256 {actual}, expected {tree.manifest_sha256}"]
    return []
