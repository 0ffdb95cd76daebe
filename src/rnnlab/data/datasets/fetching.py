"""Downloading a named data set into a data root, each file checked before it is kept.

Downloads (:func:`fetch`) come from ``https://raw.githubusercontent.com/<repo>/<commit>/<path>``
at the commits pinned in :mod:`~rnnlab.data.datasets.catalog`; ``$RNNLAB_DOWNLOAD_BASE`` or
``base_url=`` replaces the host part (a mirror, or a local server in tests). Every file is
written to a temporary name in the destination folder, hashed while it streams, and renamed
into place only when its sha256 matches, so an interrupted or corrupt download never leaves a
file under its final name. A file tree (FSDD's recordings) is downloaded into a temporary
folder, its manifest sum checked (:mod:`~rnnlab.data.datasets.checksums`), then the folder is
renamed and the manifest written.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from rnnlab.data.datasets.catalog import get_spec
from rnnlab.data.datasets.checksums import (
    CHUNK,
    build_manifest,
    copy_problems,
    sha256_file,
    tree_problems,
)
from rnnlab.data.datasets.errors import DatasetError
from rnnlab.data.datasets.locating import default_root
from rnnlab.data.datasets.specs import DatasetSpec, FileSpec, TreeSpec
from rnnlab.io import atomic_write_text

DEFAULT_BASE_URL = "https://raw.githubusercontent.com"

Progress = Callable[[str, int, int], None]
"""Called as ``progress(file_name, bytes_done, bytes_total)`` while downloading."""


def _url(spec: DatasetSpec, path: str, base_url: str | None) -> str:
    base = base_url or os.environ.get("RNNLAB_DOWNLOAD_BASE") or DEFAULT_BASE_URL
    return f"{base.rstrip('/')}/{spec.repo}/{spec.commit}/{path}"


def _download(url: str, out: BinaryIO, size: int, progress: Progress | None, timeout: float) -> str:
    """Stream ``url`` into the open file ``out``; return the sha256 of what was written."""
    digest = hashlib.sha256()
    done = 0
    name = url.rsplit("/", 1)[-1]
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            while chunk := response.read(CHUNK):
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(name, done, size)
        out.flush()
        os.fsync(out.fileno())
    except (urllib.error.URLError, OSError) as error:
        raise DatasetError(f"download of {url} failed: {error}") from error
    return digest.hexdigest()


def _fetch_file(
    spec: DatasetSpec,
    f: FileSpec,
    dest: Path,
    base_url: str | None,
    progress: Progress | None,
    timeout: float,
) -> None:
    """Download one file to a temporary name beside ``dest``; rename it if its sum matches."""
    url = _url(spec, f.url_path, base_url)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            actual = _download(url, out, f.size, progress, timeout)
        if actual != f.sha256:
            raise DatasetError(
                f"{url}: sha256 {actual} does not match the expected {f.sha256}; nothing was saved"
            )
        os.replace(tmp, dest)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _fetch_tree(
    spec: DatasetSpec,
    tree: TreeSpec,
    folder: Path,
    base_url: str | None,
    progress: Progress | None,
    timeout: float,
) -> None:
    """Download a file tree into a temporary folder; rename it into place if its sum matches."""
    staging = Path(tempfile.mkdtemp(prefix=f".{tree.folder}.", suffix=".part", dir=folder))
    try:
        for n in tree.names:
            url = _url(spec, f"{tree.url_dir}/{n}", base_url)
            with (staging / n).open("xb") as out:
                _download(url, out, 0, progress, timeout)
        manifest = build_manifest(staging, tree.names, tree.folder)
        actual = hashlib.sha256(manifest.encode()).hexdigest()
        if actual != tree.manifest_sha256:
            raise DatasetError(
                f"{spec.name}: the downloaded {tree.folder}/ has manifest sha256 {actual}, "
                f"expected {tree.manifest_sha256}; nothing was saved"
            )
        target = folder / tree.folder
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
        atomic_write_text(folder / tree.manifest, manifest)
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def fetch(
    name: str | DatasetSpec,
    to: str | os.PathLike[str] | None = None,
    *,
    base_url: str | None = None,
    force: bool = False,
    progress: Progress | None = None,
    timeout: float = 60.0,
) -> Path:
    """Download a named data set, verify it, and return what :func:`locate` returns.

    Files already present with the right sum are kept (unless ``force``). Each file is
    downloaded to a temporary name beside its final one and renamed only after its sha256
    matches; on any error the temporary file is removed and a :class:`DatasetError` raised.

    Args:
        name: a registry name, or a :class:`DatasetSpec` (a data set not in the registry).
        to: the data root to write into (``<to>/<folder>/...``); default :func:`default_root`.
        base_url: replaces ``https://raw.githubusercontent.com`` (also ``$RNNLAB_DOWNLOAD_BASE``).
        force: download even files that are already correct.
        progress: optional callback ``progress(file_name, bytes_done, bytes_total)``.
        timeout: seconds for each connection.

    Returns:
        The data set's folder, or its file for a one-file data set.
    """
    spec = name if isinstance(name, DatasetSpec) else get_spec(name)
    root = Path(to).expanduser() if to is not None else default_root()
    folder = root / spec.folder
    folder.mkdir(parents=True, exist_ok=True)
    for f in spec.files:
        path = folder / f.name
        intact = path.is_file() and path.stat().st_size == f.size and sha256_file(path) == f.sha256
        if intact and not force:
            continue
        _fetch_file(spec, f, path, base_url, progress, timeout)
    if spec.tree is not None and (force or tree_problems(spec.tree, folder, verify=True)):
        _fetch_tree(spec, spec.tree, folder, base_url, progress, timeout)
    problems = copy_problems(spec, folder, verify=False)
    if problems:
        raise DatasetError(f"data set {spec.name!r} after fetch: {'; '.join(problems[:3])}")
    return (folder / spec.entry) if spec.entry != "." else folder
