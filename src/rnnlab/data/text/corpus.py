"""A corpus on disk as three encoded splits: :func:`load_corpus` and :class:`Corpus`.

A corpus is either a directory with one file per split (``*train*``, ``*valid*``, ``*test*``,
as in PTB: ``ptb.train.txt``, ``ptb.valid.txt``, ``ptb.test.txt``) or one raw text file cut
into train / valid / test by token fractions, in that order, without shuffling. Named corpora
of the registry (:mod:`rnnlab.data.datasets`) load with :func:`load_named_corpus`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from torch import Tensor

from rnnlab.data.datasets.catalog import get_spec
from rnnlab.data.datasets.locating import locate
from rnnlab.data.text.errors import CorpusError
from rnnlab.data.text.reading import read_text
from rnnlab.data.text.tokens import EOS, Level, check_level, tokenize
from rnnlab.data.text.vocabulary import Vocabulary

SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class Corpus:
    """The three splits of a corpus as 1-D ``int64`` token-id tensors, and their vocabulary.

    ``test`` is empty when a raw file was split with a test fraction of 0.
    """

    vocab: Vocabulary
    train: Tensor
    valid: Tensor
    test: Tensor

    def split(self, name: str) -> Tensor:
        """``train``, ``valid`` or ``test`` by name."""
        if name not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {name!r}")
        return cast(Tensor, getattr(self, name))


def find_split_files(directory: str | os.PathLike[str]) -> dict[str, Path]:
    """The train / valid / test files of a corpus directory.

    A file belongs to a split when one of the dot-separated parts of its name is the split's
    name (``ptb.train.txt``, ``train.txt``, ``ptb.char.valid.txt``); each split needs exactly one.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise CorpusError(f"corpus directory {directory} does not exist")
    files = sorted(p for p in directory.iterdir() if p.is_file() and not p.name.startswith("."))
    found = {}
    for split in SPLITS:
        matches = [p for p in files if split in p.name.split(".")]
        if len(matches) != 1:
            names = [p.name for p in matches]
            raise CorpusError(
                f"{directory}: expected one file for split {split!r} "
                f"(a name like '{split}.txt' or 'ptb.{split}.txt'), found {names or 'none'}"
            )
        found[split] = matches[0]
    return found


def _read_tokens(path: Path, level: Level) -> list[str]:
    tokens = tokenize(read_text(path), level)
    if all(t == EOS for t in tokens):
        raise CorpusError(f"{path} holds no tokens (only blank lines, or nothing)")
    return tokens


def _split_by_fraction(
    tokens: list[str], fractions: Sequence[float], source: Path
) -> list[list[str]]:
    if len(fractions) != 3 or any(
        isinstance(f, bool) or not isinstance(f, (int, float)) or not 0 <= f <= 1 for f in fractions
    ):
        raise ValueError(f"split must be three fractions in [0, 1], got {tuple(fractions)!r}")
    if not math.isclose(sum(fractions), 1.0, abs_tol=1e-9):
        raise ValueError(f"split fractions must sum to 1, got {tuple(fractions)!r}")
    if fractions[0] == 0 or fractions[1] == 0:
        raise ValueError(f"the train and valid fractions must be > 0, got {tuple(fractions)!r}")
    n = len(tokens)
    first = round(n * fractions[0])
    second = n if fractions[2] == 0 else round(n * (fractions[0] + fractions[1]))
    parts = [tokens[:first], tokens[first:second], tokens[second:]]
    for name, part, fraction in zip(SPLITS, parts, fractions, strict=True):
        if fraction > 0 and not part:
            raise CorpusError(
                f"{source}: split {name!r} is empty ({n} tokens at fraction {fraction})"
            )
    return parts


def load_corpus(
    path: str | os.PathLike[str],
    level: Level = "word",
    *,
    vocab: Vocabulary | None = None,
    min_freq: int = 1,
    max_size: int | None = None,
    split: Sequence[float] = (0.9, 0.05, 0.05),
) -> Corpus:
    """Read a corpus directory (one file per split) or one raw file (split by fractions).

    Args:
        path: a directory with ``*train*``, ``*valid*``, ``*test*`` files, or one text file.
        level: ``"word"``, ``"char"`` or ``"char-spaced"`` (see :mod:`rnnlab.data.text.tokens`).
        vocab: a vocabulary to use (a trained model's); else one is built from train.
        min_freq: for a built vocabulary, keep tokens seen at least this often in train.
        max_size: for a built vocabulary, at most this many entries (specials included).
        split: fractions for train / valid / test of a raw file, in order; test may be 0.

    Returns:
        A :class:`Corpus`.

    Raises:
        CorpusError: missing or ambiguous split files, a non-UTF-8 file (with byte offset),
            an empty file or split.
    """
    check_level(level)
    path = Path(path)
    if path.is_dir():
        files = find_split_files(path)
        parts = [_read_tokens(files[s], level) for s in SPLITS]
    elif path.is_file():
        parts = _split_by_fraction(_read_tokens(path, level), split, path)
    else:
        raise CorpusError(f"corpus path {path} does not exist")
    if vocab is None:
        vocab = Vocabulary.build(parts[0], level=level, min_freq=min_freq, max_size=max_size)
    elif vocab.level != level:
        raise ValueError(f"vocabulary level {vocab.level!r} differs from level {level!r}")
    train, valid, test = (vocab.encode(p) for p in parts)
    return Corpus(vocab=vocab, train=train, valid=valid, test=test)


def load_named_corpus(
    name: str, root: str | os.PathLike[str] | None = None, **kwargs: Any
) -> Corpus:
    """:func:`load_corpus` on a named data set (``ptb``, ``ptb-char``, ``tinyshakespeare``).

    The level comes from the registry unless ``level=`` is given; other keyword arguments go
    to :func:`load_corpus`.
    """
    spec = get_spec(name)
    if "level" not in spec.options:
        raise ValueError(f"data set {name!r} is not a text corpus ({spec.task})")
    kwargs.setdefault("level", spec.options["level"])
    return load_corpus(locate(name, root), **kwargs)
