"""Word and character error rates, computed by ``jiwer`` (Levenshtein alignment).

``WER = (S + D + I) / N``: substitutions, deletions and insertions of the best alignment of
each hypothesis to its reference, summed over the corpus, over the number ``N`` of reference
words (characters for CER). Rates are corpus-level (errors summed, then divided), not a mean
of per-utterance rates, and can exceed 1 when there are many insertions. CER counts every
character of the strings as given, spaces included. References must be non-empty; a
hypothesis may be empty (all deletions).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["ErrorCounts", "character_error_rate", "error_counts", "word_error_rate"]


@dataclass(frozen=True)
class ErrorCounts:
    """Edit operations of the best alignment, summed over a corpus.

    Attributes:
        hits: reference units matched.
        substitutions: units replaced.
        deletions: reference units missing from the hypothesis.
        insertions: hypothesis units with no reference unit.
    """

    hits: int
    substitutions: int
    deletions: int
    insertions: int

    @property
    def reference_length(self) -> int:
        """``N``, the number of reference units."""
        return self.hits + self.substitutions + self.deletions

    @property
    def rate(self) -> float:
        """``(S + D + I) / N``."""
        return (self.substitutions + self.deletions + self.insertions) / self.reference_length


def _pair(
    references: str | Sequence[str], hypotheses: str | Sequence[str]
) -> tuple[list[str], list[str]]:
    refs = [references] if isinstance(references, str) else list(references)
    hyps = [hypotheses] if isinstance(hypotheses, str) else list(hypotheses)
    if len(refs) != len(hyps):
        raise ValueError(f"got {len(refs)} references but {len(hyps)} hypotheses")
    if not refs:
        raise ValueError("no references given")
    for index, ref in enumerate(refs):
        if not ref.strip():
            raise ValueError(f"reference {index} is empty; error rates need a non-empty reference")
    return refs, hyps


def error_counts(
    references: str | Sequence[str], hypotheses: str | Sequence[str], unit: str = "word"
) -> ErrorCounts:
    """Hits, substitutions, deletions and insertions over words or characters.

    Args:
        references: one reference string or a list of them.
        hypotheses: the hypotheses, as many as references.
        unit: ``"word"`` (split on whitespace) or ``"char"``.

    Returns:
        The summed :class:`ErrorCounts`.
    """
    import jiwer

    refs, hyps = _pair(references, hypotheses)
    if unit == "word":
        words = jiwer.process_words(refs, hyps)
        return ErrorCounts(words.hits, words.substitutions, words.deletions, words.insertions)
    if unit == "char":
        chars = jiwer.process_characters(refs, hyps)
        return ErrorCounts(chars.hits, chars.substitutions, chars.deletions, chars.insertions)
    raise ValueError(f"unit must be 'word' or 'char', got {unit!r}")


def word_error_rate(references: str | Sequence[str], hypotheses: str | Sequence[str]) -> float:
    """Corpus word error rate.

    Example:
        >>> word_error_rate(["one two three", "four"], ["one too three", "four five"])
        0.5
    """
    return error_counts(references, hypotheses, "word").rate


def character_error_rate(references: str | Sequence[str], hypotheses: str | Sequence[str]) -> float:
    """Corpus character error rate (spaces count as characters).

    Example:
        >>> character_error_rate("314", "3140")
        0.3333333333333333
    """
    return error_counts(references, hypotheses, "char").rate
