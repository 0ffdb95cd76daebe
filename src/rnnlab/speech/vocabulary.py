"""The CTC token set of a speech run: the blank and the words or characters it emits.

:class:`CTCVocabulary` maps digit sequences to CTC class indices and back (class
:data:`BLANK` = 0 is the blank, class ``i + 1`` is ``tokens[i]``). It is written to the run
directory as ``vocabulary.json``. (Not to be confused with
:class:`rnnlab.data.text.Vocabulary`, the word list of a text corpus.)

Example:
    >>> vocab = CTCVocabulary.for_words(["zero", "one"], "char")
    >>> vocab.decode(vocab.encode([1, 0]))
    'one zero'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["BLANK", "CTCVocabulary"]

BLANK = 0
"""The class index of the CTC blank in every speech run."""


@dataclass(frozen=True)
class CTCVocabulary:
    """CTC tokens: class 0 is the blank, class ``i + 1`` is ``tokens[i]``.

    Attributes:
        unit: ``word`` or ``char``.
        tokens: the words, or the characters (the space included).
        words: the words the characters spell (for ``char``, the same as for ``word``).
    """

    unit: str
    tokens: tuple[str, ...]
    words: tuple[str, ...]

    @classmethod
    def for_words(cls, words: Sequence[str], unit: str) -> CTCVocabulary:
        """The vocabulary of ``words`` in units ``word`` or ``char``."""
        if unit == "word":
            return cls("word", tuple(words), tuple(words))
        if unit == "char":
            return cls("char", tuple(sorted({" ", *"".join(words)})), tuple(words))
        raise ValueError(f"unit must be 'word' or 'char', got {unit!r}")

    @property
    def num_classes(self) -> int:
        """Tokens plus the blank."""
        return len(self.tokens) + 1

    def encode(self, digits: Sequence[int]) -> list[int]:
        """Class indices of a digit sequence (words, or characters with single spaces)."""
        if self.unit == "word":
            return [d + 1 for d in digits]
        text = " ".join(self.words[d] for d in digits)
        return [self.tokens.index(c) + 1 for c in text]

    def decode(self, classes: Sequence[int]) -> str:
        """Text of class indices (blanks already removed); spaces normalized."""
        if self.unit == "word":
            return " ".join(self.tokens[c - 1] for c in classes)
        return " ".join("".join(self.tokens[c - 1] for c in classes).split())

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (``vocabulary.json`` in the run directory)."""
        return {"unit": self.unit, "blank": BLANK, "tokens": list(self.tokens)}
