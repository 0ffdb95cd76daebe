"""WER and CER on hand-made strings with known edit counts."""

from __future__ import annotations

import pytest

from rnnlab.speech import ErrorCounts, character_error_rate, error_counts, word_error_rate


def test_word_errors_count_each_kind() -> None:
    # "one two three four" -> "one too three four five": 1 substitution, 1 insertion
    counts = error_counts("one two three four", "one too three four five")
    assert counts == ErrorCounts(hits=3, substitutions=1, deletions=0, insertions=1)
    assert counts.reference_length == 4
    assert word_error_rate("one two three four", "one too three four five") == 0.5


def test_corpus_rate_sums_errors_before_dividing() -> None:
    refs = ["seven", "one two three"]  # 4 reference words
    hyps = ["", "one three"]  # 1 + 1 deletions
    assert word_error_rate(refs, hyps) == pytest.approx(2 / 4)  # not the mean 0.67


def test_character_error_rate_counts_characters_and_spaces() -> None:
    assert character_error_rate("314", "3140") == pytest.approx(1 / 3)
    assert character_error_rate("3 1", "31") == pytest.approx(1 / 3)  # the space deleted
    assert character_error_rate(["12", "99"], ["12", "98"]) == pytest.approx(1 / 4)
    assert error_counts("abc", "xbcd", unit="char") == ErrorCounts(2, 1, 0, 1)


def test_perfect_and_insertion_heavy_hypotheses() -> None:
    assert word_error_rate("a b c", "a b c") == 0.0
    assert word_error_rate("a", "b c d") == 3.0  # rates can exceed 1


def test_bad_inputs_are_named() -> None:
    with pytest.raises(ValueError, match="2 references but 1 hypotheses"):
        word_error_rate(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="reference 1 is empty"):
        word_error_rate(["a", " "], ["a", "b"])
    with pytest.raises(ValueError, match="unit must be"):
        error_counts("a", "a", unit="phone")
