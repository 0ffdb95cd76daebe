r"""Text normalization and the CTC units of sentence recognition: characters or word pieces.

**Normalization** (:func:`normalize_text`), the same for training transcripts, language-model
text and references: Unicode NFKD with accents dropped (``é`` -> ``e``), lower case, curly
apostrophes -> ``'``, hyphens, dashes, slashes and underscores -> space, other punctuation
and symbols (Unicode categories P and S: ``.,;:!?"()``, quotes...) removed, runs of spaces
collapsed. What is left must be letters ``a-z``, the apostrophe and the space; anything else
(a digit, another script) is an error naming the file and the character
(:func:`check_text`), never silently dropped: a digit stands for spoken words the transcript
should spell out.

**Units** (:class:`TextUnits`), class 0 being the CTC blank:

- ``char``: the space, the apostrophe and ``a``-``z`` (29 classes with the blank).
- ``wordpiece``: byte-pair-encoding pieces learnt from the training transcripts
  (:meth:`TextUnits.train_pieces`; Sennrich et al. 2016): every word is ``▁`` + its letters,
  and the most frequent adjacent pair is merged until ``vocab_size`` pieces exist. A piece
  starting with ``▁`` starts a word, so decoding joins pieces and turns ``▁`` into spaces.
  The pieces always include every single character, so any normalized text encodes.

Example:
    >>> units = TextUnits.characters()
    >>> units.decode(units.encode(normalize_text("Don't  STOP!")))
    "don't stop"
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from rnnlab.errors import DataError

__all__ = ["LETTERS", "WORD_START", "TextUnits", "check_text", "normalize_text"]

LETTERS = " '" + "abcdefghijklmnopqrstuvwxyz"
"""The character units (space first), in class order 1, 2, ..."""
WORD_START = "\u2581"
"""Marks a word piece that starts a word (as SentencePiece writes it)."""

_SPACE_LIKE = re.compile(r"[-\u2010-\u2015/_\s]+")


def normalize_text(text: str) -> str:
    """Lower case, accents and punctuation removed, spaces collapsed (see the module doc).

    Example:
        >>> normalize_text("Café -- \u201cHe said\u201d, it\u2019s OK.")
        "cafe he said it's ok"
    """
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).lower()
    plain = plain.replace("\u2019", "'").replace("\u2018", "'").replace("`", "'")
    plain = _SPACE_LIKE.sub(" ", plain)
    plain = "".join(c for c in plain if c == "'" or unicodedata.category(c)[0] not in ("P", "S"))
    return " ".join(plain.split())


def check_text(text: str, where: str) -> str:
    """``text`` normalized, or a :class:`DataError` naming ``where`` and the first character
    outside the units (letters, apostrophe, space) or an empty result."""
    normalized = normalize_text(text)
    for char in normalized:
        if char not in LETTERS:
            raise DataError(
                f"{where}: character {char!r} (U+{ord(char):04X}) in {text!r} is not a letter, "
                "apostrophe or space; spell it out in the transcript"
            )
    if not normalized:
        raise DataError(f"{where}: the transcript {text!r} is empty after normalization")
    return normalized


@dataclass(frozen=True)
class TextUnits:
    """CTC output units: class 0 is the blank, class ``i + 1`` is ``tokens[i]``.

    Attributes:
        kind: ``char`` or ``wordpiece``.
        tokens: the characters, or the pieces (``▁`` marking a word start).
        merges: the learnt merges of word pieces, in order (each pair makes one piece).
    """

    kind: str
    tokens: tuple[str, ...]
    merges: tuple[tuple[str, str], ...] = ()

    @classmethod
    def characters(cls) -> TextUnits:
        """Letters, apostrophe and space."""
        return cls("char", tuple(LETTERS))

    @classmethod
    def train_pieces(cls, texts: Iterable[str], vocab_size: int) -> TextUnits:
        """Byte-pair-encoding word pieces learnt from normalized ``texts``.

        Starts from single characters (``▁x`` for a word's first letter ``x`` and plain
        ``x`` elsewhere, all 26 letters and the apostrophe in both forms) and merges the most
        frequent adjacent pair (ties: the first in sorted order) until ``vocab_size`` pieces.
        """
        base = [WORD_START + c for c in LETTERS[1:]] + list(LETTERS[1:])
        if vocab_size < len(base):
            raise ValueError(f"vocab_size must be >= {len(base)} (single characters)")
        words = Counter(w for text in texts for w in text.split())
        spelled = {w: [WORD_START + w[0], *w[1:]] for w in words}
        pieces = list(base)
        merges: list[tuple[str, str]] = []
        while len(pieces) < vocab_size:
            pairs: Counter[tuple[str, str]] = Counter()
            for word, parts in spelled.items():
                for pair in itertools.pairwise(parts):
                    pairs[pair] += words[word]
            if not pairs:
                break
            best_count = max(pairs.values())
            first, second = min(p for p, n in pairs.items() if n == best_count)
            merged = first + second
            merges.append((first, second))
            if merged not in pieces:
                pieces.append(merged)
            for word, parts in spelled.items():
                spelled[word] = _merge(parts, first, second)
        return cls("wordpiece", tuple(pieces), tuple(merges))

    @classmethod
    def from_dict(cls, payload: dict[str, Any]) -> TextUnits:
        """Inverse of :meth:`to_dict`."""
        merges = tuple((str(a), str(b)) for a, b in payload.get("merges", ()))
        return cls(str(payload["kind"]), tuple(payload["tokens"]), merges)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (``units.json`` in a run directory)."""
        return {
            "kind": self.kind,
            "blank": 0,
            "tokens": list(self.tokens),
            "merges": [list(m) for m in self.merges],
        }

    @property
    def num_classes(self) -> int:
        """Units plus the blank."""
        return len(self.tokens) + 1

    def encode(self, text: str) -> list[int]:
        """Class indices of normalized ``text`` (letters, apostrophe, single spaces)."""
        index = {t: i + 1 for i, t in enumerate(self.tokens)}
        if self.kind == "char":
            return [index[c] for c in text]
        out: list[int] = []
        for word in text.split():
            parts = [WORD_START + word[0], *word[1:]]
            for first, second in self.merges:  # in the order they were learnt
                if len(parts) == 1:
                    break
                parts = _merge(parts, first, second)
            out.extend(index[p] for p in parts)
        return out

    def decode(self, classes: Sequence[int]) -> str:
        """Text of class indices (blanks removed); spaces normalized."""
        text = "".join(self.tokens[c - 1] for c in classes)
        return " ".join(text.replace(WORD_START, " ").split())

    def ends_word_before(self, prefix: Sequence[int], token: int) -> bool:
        """Whether appending ``token`` to ``prefix`` completes the prefix's last word.

        Characters: ``token`` is the space and the prefix ends in a letter. Word pieces:
        ``token`` starts a word and the prefix is not empty.
        """
        if not prefix:
            return False
        piece = self.tokens[token - 1]
        if self.kind == "char":
            return piece == " " and self.tokens[prefix[-1] - 1] != " "
        return piece.startswith(WORD_START)

    def last_word(self, prefix: Sequence[int]) -> str:
        """The (possibly partial) last word spelled by ``prefix``."""
        words = self.decode(prefix).split()
        return words[-1] if words else ""


def _merge(parts: list[str], first: str, second: str) -> list[str]:
    """``parts`` with each adjacent ``first, second`` joined (left to right)."""
    out: list[str] = []
    i = 0
    while i < len(parts):
        if i + 1 < len(parts) and parts[i] == first and parts[i + 1] == second:
            out.append(first + second)
            i += 2
        else:
            out.append(parts[i])
            i += 1
    return out
