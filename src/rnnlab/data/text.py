"""Text corpora for language modeling: reading, tokens, vocabulary, streams and BPTT windows.

A corpus is either a directory with one file per split (``*train*``, ``*valid*``, ``*test*``,
as in PTB: ``ptb.train.txt``, ``ptb.valid.txt``, ``ptb.test.txt``) or one raw text file cut
into train / valid / test by token fractions, in that order, without shuffling.

Token levels (``level=``):

- ``"word"``: each line is split on whitespace and ``<eos>`` appended (PTB: one sentence per
  line, rare words already ``<unk>``). ``" the cat \\n"`` -> ``["the", "cat", "<eos>"]``.
- ``"char"``: every Unicode character is a token, newlines included; no ``<eos>``
  (Tiny Shakespeare). ``"Hi!\\n"`` -> ``["H", "i", "!", "\\n"]``.
- ``"char-spaced"``: Mikolov's PTB-char format: each line holds single characters separated by
  spaces, ``_`` marks a word boundary, and ``<eos>`` is appended per line. A word-level
  ``<unk>`` is spelled ``< u n k >`` there, so it is five symbols, not the unknown token.
  ``" a _ c a t \\n "`` -> ``["a", "_", "c", "a", "t", "<eos>"]``.

The vocabulary is built from the train split only: tokens seen at least ``min_freq`` times,
at most ``max_size`` entries, ``<unk>`` (and ``<eos>`` for the line-based levels) first, then
by descending count, ties broken by the token itself; everything else maps to ``<unk>``.

Batching, as in pytorch/examples ``word_language_model``: the token stream of a split is cut
into ``B`` equal contiguous streams, one per column (the tail that does not fill a row is
dropped), and a stream's hidden state carries over from one window to the next::

    tokens: a b c d e f g h i j k l m n o p q r s t u v w x y z     (N = 26)

    batchify(tokens, 4) -> (T = 6, B = 4); "y z" dropped
        +-         -+
        | a g m s |
        | b h n t |
        | c i o u |
        | d j p v |
        | e k q w |
        | f l r x |
        +-         -+

BPTT windows of length ``L = 2`` on that matrix: the targets are the inputs one row down, so
the last row is only ever a target, and the last window may be shorter::

    window 0: inputs rows 0-1  | a g m s |   targets rows 1-2  | b h n t |
                               | b h n t |                     | c i o u |
    window 1: inputs rows 2-3  (c i o u / d j p v), targets rows 3-4
    window 2: inputs row  4    (e k q w),           targets row  5       (L = 1)

Varied lengths (AWD-LSTM, Merity et al. 2018): for each window, ``base = bptt`` with
probability ``p_full = 0.95``, else ``bptt / 2``; ``L = round(N(base, sigma = 5))``, clamped
to ``[min(5, bptt), bptt + 4 * sigma]`` and to the tokens left. AWD-LSTM also scales the
learning rate of that step by ``L / bptt``; that is the trainer's business
(``inputs.shape[0] / bptt``). The lengths of epoch ``e`` come from a generator seeded with
``(seed, e)`` alone, so :meth:`BPTTBatches.windows` can restart an epoch at any window index
and reproduce the rest exactly.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple, cast

import numpy as np
import torch
from torch import Tensor

from rnnlab.errors import DataError
from rnnlab.io import atomic_write_text

Level = Literal["word", "char", "char-spaced"]
LEVELS: tuple[str, ...] = ("word", "char", "char-spaced")
SPLITS = ("train", "valid", "test")
UNK = "<unk>"
EOS = "<eos>"
VOCAB_FORMAT = "rnnlab-vocabulary"


class CorpusError(DataError, ValueError):
    """A corpus file or directory cannot be read as asked (encoding, emptiness, layout).

    A :class:`~rnnlab.errors.DataError` and a ``ValueError``.
    """


def _check_level(level: str) -> None:
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")


def _uses_eos(level: str) -> bool:
    return level != "char"


# ------------------------------------------------------------------------------ reading


def read_text(path: str | os.PathLike[str]) -> str:
    """A file's text, strictly UTF-8.

    Raises:
        CorpusError: the file is not UTF-8 (the message gives the byte offset) or unreadable.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise CorpusError(f"cannot read {path}: {error.strerror}") from error
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise CorpusError(
            f"{path} is not UTF-8: byte 0x{data[error.start]:02x} at offset {error.start} "
            f"({error.reason})"
        ) from None


def tokenize(text: str, level: Level) -> list[str]:
    """Split text into tokens at the given level (see the module docstring)."""
    _check_level(level)
    if level == "char":
        return list(text)
    lines = text.split("\n")
    if lines and not lines[-1].strip():
        lines.pop()  # the piece after the final newline (PTB-char ends in "\n ")
    tokens: list[str] = []
    for line in lines:
        tokens.extend(line.split())
        tokens.append(EOS)
    return tokens


def detokenize(tokens: Iterable[str], level: Level) -> str:
    """Tokens back to readable text: words joined by spaces, ``<eos>`` as a newline.

    For ``char-spaced``, ``_`` becomes a space. ``detokenize(tokenize(t, "char"), "char") == t``.
    """
    _check_level(level)
    if level == "char":
        return "".join(tokens)
    if level == "char-spaced":
        return "".join("\n" if t == EOS else " " if t == "_" else t for t in tokens)
    lines: list[list[str]] = [[]]
    for t in tokens:
        if t == EOS:
            lines.append([])
        else:
            lines[-1].append(t)
    return "\n".join(" ".join(words) for words in lines)


# ---------------------------------------------------------------------------- vocabulary


class Vocabulary:
    """A token <-> id map with an unknown token.

    Args:
        tokens: the tokens in id order; must hold ``unk`` (and ``eos`` when given), no repeats.
        level: the token level the vocabulary was built for.
        unk: the unknown token.
        eos: the end-of-line token, or ``None`` (``char`` level).

    Example:
        >>> v = Vocabulary.build(["a", "b", "a", "<eos>"], level="word")
        >>> v.tokens
        ['<unk>', '<eos>', 'a', 'b']
        >>> v.encode(["a", "zebra"]).tolist()
        [2, 0]
    """

    def __init__(
        self, tokens: Sequence[str], *, level: Level, unk: str = UNK, eos: str | None = EOS
    ) -> None:
        _check_level(level)
        self.tokens = list(tokens)
        self.level: Level = level
        self.unk = unk
        self.eos = eos
        self._index = {t: i for i, t in enumerate(self.tokens)}
        if len(self._index) != len(self.tokens):
            repeated = sorted(t for t, c in Counter(self.tokens).items() if c > 1)
            raise ValueError(f"vocabulary tokens repeat: {repeated[:5]}")
        for role, special in (("unk", unk), ("eos", eos)):
            if special is not None and special not in self._index:
                raise ValueError(f"vocabulary lacks its {role} token {special!r}")
        self.unk_index = self._index[unk]

    @classmethod
    def build(
        cls,
        tokens: Iterable[str],
        *,
        level: Level,
        min_freq: int = 1,
        max_size: int | None = None,
    ) -> Vocabulary:
        """Count ``tokens`` and keep the frequent ones (see the module docstring for the order).

        Args:
            tokens: the training tokens.
            level: the token level; ``<eos>`` is a special for ``word`` and ``char-spaced``.
            min_freq: keep tokens seen at least this often.
            max_size: at most this many entries, specials included.
        """
        _check_level(level)
        if isinstance(min_freq, bool) or not isinstance(min_freq, int) or min_freq < 1:
            raise ValueError(f"min_freq must be an integer >= 1, got {min_freq!r}")
        specials = [UNK, EOS] if _uses_eos(level) else [UNK]
        if max_size is not None and (not isinstance(max_size, int) or max_size < len(specials)):
            raise ValueError(
                f"max_size must be an integer >= {len(specials)} (the specials {specials}), "
                f"got {max_size!r}"
            )
        counts = Counter(tokens)
        ranked = sorted(
            (t for t, c in counts.items() if c >= min_freq and t not in specials),
            key=lambda t: (-counts[t], t),
        )
        kept = specials + ranked
        if max_size is not None:
            kept = kept[:max_size]
        return cls(kept, level=level, eos=EOS if _uses_eos(level) else None)

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: object) -> bool:
        return token in self._index

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Vocabulary):
            return NotImplemented
        return (self.tokens, self.level, self.unk, self.eos) == (
            other.tokens,
            other.level,
            other.unk,
            other.eos,
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Vocabulary(size={len(self)}, level={self.level!r})"

    def index(self, token: str) -> int:
        """The id of ``token``, or of ``<unk>`` when it is not in the vocabulary."""
        return self._index.get(token, self.unk_index)

    def encode(self, tokens: Iterable[str]) -> Tensor:
        """Token ids as a 1-D ``int64`` tensor; unknown tokens become ``<unk>``."""
        get, unk = self._index.get, self.unk_index
        return torch.tensor([get(t, unk) for t in tokens], dtype=torch.long)

    def decode(self, ids: Iterable[int] | Tensor) -> list[str]:
        """Tokens for ids; an id outside ``[0, len)`` is a ``ValueError``."""
        values = ids.tolist() if isinstance(ids, Tensor) else list(ids)
        size = len(self.tokens)
        bad = [i for i in values if not 0 <= i < size]
        if bad:
            raise ValueError(f"token ids must lie in [0, {size}), got {bad[:5]}")
        return [self.tokens[i] for i in values]

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: format tag, version, level, specials and tokens."""
        return {
            "format": VOCAB_FORMAT,
            "version": 1,
            "level": self.level,
            "unk": self.unk,
            "eos": self.eos,
            "tokens": self.tokens,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "vocabulary") -> Vocabulary:
        """Inverse of :meth:`to_dict`; a malformed dict is a ``ValueError`` naming ``source``."""
        if not isinstance(data, dict) or data.get("format") != VOCAB_FORMAT:
            raise ValueError(f"{source}: not an rnnlab vocabulary (format {VOCAB_FORMAT!r})")
        if data.get("version") != 1:
            raise ValueError(f"{source}: unsupported vocabulary version {data.get('version')!r}")
        tokens = data.get("tokens")
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise ValueError(f"{source}: 'tokens' must be a list of strings")
        try:
            return cls(tokens, level=data.get("level"), unk=data.get("unk"), eos=data.get("eos"))  # type: ignore[arg-type]
        except ValueError as error:
            raise ValueError(f"{source}: {error}") from None

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the vocabulary as JSON, atomically (temporary file, flush, rename)."""
        atomic_write_text(path, json.dumps(self.to_dict(), ensure_ascii=False, indent=0) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Vocabulary:
        """Read a vocabulary written by :meth:`save`."""
        path = Path(path)
        try:
            data = json.loads(read_text(path))
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: not JSON ({error.msg} at line {error.lineno})") from None
        return cls.from_dict(data, source=str(path))


# -------------------------------------------------------------------------------- corpus


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
        level: ``"word"``, ``"char"`` or ``"char-spaced"`` (see the module docstring).
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
    _check_level(level)
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
    from rnnlab.data import datasets

    spec = datasets.get_spec(name)
    if "level" not in spec.options:
        raise ValueError(f"data set {name!r} is not a text corpus ({spec.task})")
    kwargs.setdefault("level", spec.options["level"])
    return load_corpus(datasets.locate(name, root), **kwargs)


# ------------------------------------------------------------------------------ batching


def batchify(data: Tensor, batch_size: int) -> Tensor:
    """Cut a 1-D token stream into ``batch_size`` contiguous columns (see the module docstring).

    Args:
        data: ``(N,)`` token ids.
        batch_size: the number of streams ``B``.

    Returns:
        ``(N // B, B)``: column ``b`` is ``data[b * T : (b + 1) * T]``; the tail is dropped.
    """
    if data.dim() != 1:
        raise ValueError(f"data must be 1-D token ids, got shape {tuple(data.shape)}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    steps = data.numel() // batch_size
    if steps < 2:
        raise ValueError(
            f"{data.numel()} tokens are too few for batch_size {batch_size}: "
            f"each stream needs at least 2 tokens (an input and its target)"
        )
    return data[: steps * batch_size].view(batch_size, steps).t().contiguous()  # (T, B)


class Window(NamedTuple):
    """One BPTT window: ``inputs`` and ``targets`` of shape ``(L, B)`` (``(B, L)`` batch-first)."""

    inputs: Tensor
    targets: Tensor


class BPTTBatches:
    """BPTT windows over ``B`` contiguous streams, fixed or AWD-LSTM-varied in length.

    Iterating gives the windows of the current epoch (:meth:`set_epoch`) in order; the hidden
    state should be carried from one window to the next and detached (truncated BPTT).

    Args:
        data: ``(N,)`` token ids of one split.
        batch_size: number of streams ``B``.
        bptt: window length (the mean length when ``vary``).
        vary: draw window lengths as AWD-LSTM does (see the module docstring).
        seed: with the epoch, fixes the varied lengths.
        p_full: probability of base length ``bptt`` rather than ``bptt / 2``.
        sigma: standard deviation of the varied length.
        min_len: shortest varied window (capped at ``bptt``).
        batch_first: give windows as ``(B, L)`` instead of ``(L, B)``.
        device: where to keep the streams.

    Example:
        >>> batches = BPTTBatches(torch.arange(26), batch_size=4, bptt=2)
        >>> [tuple(w.inputs.shape) for w in batches]
        [(2, 4), (2, 4), (1, 4)]
        >>> batches.streams[:, 0].tolist()
        [0, 1, 2, 3, 4, 5]
    """

    def __init__(
        self,
        data: Tensor,
        batch_size: int,
        bptt: int,
        *,
        vary: bool = False,
        seed: int = 0,
        p_full: float = 0.95,
        sigma: float = 5.0,
        min_len: int = 5,
        batch_first: bool = False,
        device: torch.device | str | None = None,
    ) -> None:
        if isinstance(bptt, bool) or not isinstance(bptt, int) or bptt < 1:
            raise ValueError(f"bptt must be an integer >= 1, got {bptt!r}")
        if not 0.0 <= p_full <= 1.0:
            raise ValueError(f"p_full must lie in [0, 1], got {p_full!r}")
        if not sigma >= 0.0:
            raise ValueError(f"sigma must be >= 0, got {sigma!r}")
        if isinstance(min_len, bool) or not isinstance(min_len, int) or min_len < 1:
            raise ValueError(f"min_len must be an integer >= 1, got {min_len!r}")
        self.streams = batchify(data, batch_size)  # (T, B)
        if device is not None:
            self.streams = self.streams.to(device)
        self.batch_size = batch_size
        self.bptt = bptt
        self.vary = bool(vary)
        self.seed = int(seed)
        self.p_full = float(p_full)
        self.sigma = float(sigma)
        self.min_len = min(min_len, bptt)
        self.max_len = bptt + math.ceil(4 * sigma)
        self.batch_first = bool(batch_first)
        self.epoch = 0

    @property
    def num_tokens(self) -> int:
        """Target tokens per epoch: ``(T - 1) * B``."""
        return (self.streams.shape[0] - 1) * self.batch_size

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose windows iteration gives (matters only when ``vary``)."""
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise ValueError(f"epoch must be an integer >= 0, got {epoch!r}")
        self.epoch = epoch

    def schedule(self, epoch: int | None = None) -> list[tuple[int, int]]:
        """``(start_row, length)`` of every window of an epoch; the lengths sum to ``T - 1``."""
        epoch = self.epoch if epoch is None else epoch
        last = self.streams.shape[0] - 1  # rows that can be inputs
        windows = []
        start = 0
        rng = np.random.default_rng([self.seed, epoch]) if self.vary else None
        while start < last:
            length = self.bptt
            if rng is not None:
                base = self.bptt if rng.random() < self.p_full else self.bptt / 2
                drawn = round(float(rng.normal(base, self.sigma)))
                length = min(max(drawn, self.min_len), self.max_len)
            length = min(length, last - start)
            windows.append((start, length))
            start += length
        return windows

    def __len__(self) -> int:
        return len(self.schedule())

    def window(self, start: int, length: int) -> Window:
        """The window whose inputs are rows ``start .. start + length - 1``."""
        inputs = self.streams[start : start + length]  # (L, B)
        targets = self.streams[start + 1 : start + 1 + length]  # (L, B)
        if self.batch_first:
            return Window(inputs.t(), targets.t())  # (B, L)
        return Window(inputs, targets)

    def windows(self, epoch: int | None = None, start_index: int = 0) -> Iterator[Window]:
        """The windows of ``epoch`` (default: the current one) from window ``start_index`` on."""
        plan = self.schedule(epoch)
        if not 0 <= start_index <= len(plan):
            raise ValueError(f"start_index must lie in [0, {len(plan)}], got {start_index}")
        for start, length in plan[start_index:]:
            yield self.window(start, length)

    def __iter__(self) -> Iterator[Window]:
        return self.windows()
