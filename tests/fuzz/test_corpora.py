"""Fuzzed text corpora for ``rnnlab train`` of the language task: each split file missing,
empty, random bytes, text in random encodings (with or without a byte-order mark), control
characters, odd line endings, very long lines. Each case must exit 0 or 2 with no traceback
and a one-line error, and leave the corpus and config byte-identical."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.fuzz.helpers import check, fuzz, scratch, sets, snapshot
from tests.language.helpers import SENTENCES

SPLITS = ("train", "valid", "test")
ENCODINGS = ["utf-8", "utf-8", "utf-8", "utf-8-sig", "utf-16", "utf-32", "latin-1", "cp1252"]

words = st.one_of(
    st.sampled_from(" ".join(SENTENCES).split()),
    st.text(min_size=1, max_size=6),
    st.sampled_from(
        ["\x00", "\t", "\r", "\x0c", "\u2028", "\ufeff", "<unk>", "<eos>", "\U0001f600"]
    ),
)


@st.composite
def split_file(draw: st.DrawFn, huge: bool) -> bytes | None:
    """One split's bytes, or ``None`` for a missing file; ``huge`` allows very long lines
    (the training split only: the others are evaluated in full)."""
    kind = draw(st.sampled_from(["missing", "empty", "bytes", "long", *["text"] * 4]))
    if kind == "missing":
        return None
    if kind == "empty":
        return b""
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    if kind == "long":
        length = 30_000 if huge else 300
        word = draw(st.sampled_from(["the", "x" * length, "\u00e9" * 50]))
        text = " ".join([word] * (length // len(word) + 1)) if len(word) < 100 else word
    else:
        lines = draw(st.lists(st.lists(words, max_size=8).map(" ".join), max_size=20))
        text = draw(st.sampled_from(["\n", "\r\n", "\r", ""])).join(lines)
    return text.encode(draw(st.sampled_from(ENCODINGS)), errors="replace")


@st.composite
def corpora(draw: st.DrawFn) -> tuple[bytes | None, ...]:
    """The three splits: the language tests' sentences, one or more splits replaced by a
    generated file."""
    clean = ("\n".join(SENTENCES * 10) + "\n").encode()
    files: list[bytes | None] = [clean, clean, clean]
    for index in draw(st.sets(st.sampled_from(range(len(SPLITS))), min_size=1)):
        files[index] = draw(split_file(huge=index == 0))
    return tuple(files)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-corpora")


@fuzz(20)
@given(files=corpora())
def test_generated_corpora(
    root: Path, language_config: Path, files: tuple[bytes | None, ...]
) -> None:
    case = scratch(root)
    corpus = case / "corpus"
    corpus.mkdir()
    for split, data in zip(SPLITS, files, strict=True):
        if data is not None:
            (corpus / f"{split}.txt").write_bytes(data)
    before = snapshot(corpus, language_config)
    args = ["train", language_config, "--quiet", "--run-dir", case / "run"]
    args += sets(f"data.path={corpus}", "train.max_steps=3", "train.epochs=1")
    check(args, before)


@fuzz(10)
@given(files=corpora())
def test_generated_corpus_given_as_one_file(
    root: Path, language_config: Path, files: tuple[bytes | None, ...]
) -> None:
    """``data.path`` naming a file rather than a folder of splits."""
    case = scratch(root)
    path = case / "corpus.txt"
    path.write_bytes(files[0] or b"")
    before = snapshot(path, language_config)
    args = ["train", language_config, "--quiet", "--run-dir", case / "run"]
    args += sets(f"data.path={path}", "train.max_steps=3", "train.epochs=1")
    check(args, before)
