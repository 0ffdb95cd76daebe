"""The token <-> id map of a corpus, :class:`Vocabulary`, and its JSON file form.

The vocabulary is built from the train split only: tokens seen at least ``min_freq`` times,
at most ``max_size`` entries, ``<unk>`` (and ``<eos>`` for the line-based levels) first, then
by descending count, ties broken by the token itself; everything else maps to ``<unk>``.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from rnnlab.data.text.reading import read_text
from rnnlab.data.text.tokens import EOS, UNK, Level, check_level, uses_eos
from rnnlab.io import atomic_write_text

VOCAB_FORMAT = "rnnlab-vocabulary"


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
        check_level(level)
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
        check_level(level)
        if isinstance(min_freq, bool) or not isinstance(min_freq, int) or min_freq < 1:
            raise ValueError(f"min_freq must be an integer >= 1, got {min_freq!r}")
        specials = [UNK, EOS] if uses_eos(level) else [UNK]
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
        return cls(kept, level=level, eos=EOS if uses_eos(level) else None)

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
