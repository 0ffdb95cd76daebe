"""Conclusions are generated from the numbers: different numbers, different sentences."""

from __future__ import annotations

import pytest

from rnnlab.analysis import SOLVED, Criterion, Record, conclusions, markdown_table, summarize


def _study(values: dict[str, list[float]], length: int = 200, task: str = "adding") -> list[Record]:
    return [
        Record(task, length, cell, seed, "mse", value, 1 / 6)
        for cell, seeds in values.items()
        for seed, value in enumerate(seeds)
    ]


def test_sentence_states_the_numbers_and_seed_counts() -> None:
    records = _study({"rnn": [0.166, 0.167, 0.168], "gru": [0.001, 0.002, 0.003]})
    text = conclusions(records)
    first = text[0]
    assert first.startswith("At T=200 on the adding problem")
    assert "GRU solves it (MSE 0.0020 ± 0.0010, 3/3 seeds solved)" in first
    assert "the tanh RNN stays at the mean predictor (MSE 0.167 ± 0.001, 0/3 seeds solved)" in first
    assert "while" in first
    assert "83.5 times lower than the tanh RNN" in text[1]


def test_swapping_the_winner_changes_the_text() -> None:
    gru_wins = _study({"rnn": [0.166, 0.167, 0.168], "gru": [0.001, 0.002, 0.003]})
    rnn_wins = _study({"rnn": [0.001, 0.002, 0.003], "gru": [0.166, 0.167, 0.168]})
    a, b = conclusions(gru_wins), conclusions(rnn_wins)
    assert a != b
    assert "GRU solves it" in a[0] and "the tanh RNN stays at" in a[0]
    assert "the tanh RNN solves it" in b[0] and "GRU stays at" in b[0]
    assert "GRU is best" in a[1] and "the tanh RNN is best" in b[1]


def test_other_numbers_other_verdicts() -> None:
    # partly solved and beats-the-baseline-without-solving
    records = _study({"lstm": [0.005, 0.02, 0.004], "rnn": [0.08, 0.09, 0.07]})
    first = conclusions(records)[0]
    assert "LSTM solves it in 2/3 seeds" in first
    assert "the tanh RNN beats the mean predictor without solving it (MSE 0.080" in first
    summaries = {s.cell: s for s in summarize(records)}
    assert summaries["lstm"].verdict == "partly solved" and summaries["lstm"].solved == 2
    assert summaries["rnn"].verdict == "beats baseline"
    assert summaries["rnn"].progress == pytest.approx(1 - 0.08 / (1 / 6))


def test_threshold_is_strict_and_overridable() -> None:
    at_threshold = _study({"gru": [0.01]})
    assert summarize(at_threshold)[0].solved == 0
    loose = {("adding", "mse"): Criterion(higher_is_better=False, threshold=0.02)}
    assert summarize(at_threshold, loose)[0].solved == 1
    assert ("copy", "recall_accuracy") in SOLVED


def test_ties_are_called_ties() -> None:
    records = _study({"lstm": [0.002, 0.004, 0.003], "gru": [0.003, 0.002, 0.0035]})
    text = conclusions(records)
    assert "do not differ beyond the spread over seeds" in text[1]


def test_lengths_sentence_and_higher_is_better_metric() -> None:
    records = []
    for length, rnn_acc in ((50, 1.0), (100, 0.6), (200, 0.5)):
        for seed in range(2):
            records.append(Record("reber", length, "lstm", seed, "long_range_accuracy", 1.0, 0.5))
            records.append(
                Record("reber", length, "rnn", seed, "long_range_accuracy", rnn_acc, 0.5)
            )
    text = conclusions(records)
    assert text[-1] == (
        "On embedded Reber (long-range accuracy) at T = 50, 100, 200: LSTM solves every length; "
        "the tanh RNN solves up to T=50 and fails from T=100."
    )
    at_200 = next(s for s in text if s.startswith("At T=200 on"))
    assert "the tanh RNN stays at the memoryless baseline (long-range accuracy 0.50" in at_200
    assert "solved: long-range accuracy > 0.99" in at_200


def test_relative_criterion_uses_the_baseline() -> None:
    base = 0.1733
    records = [
        Record("copy", 100, "gru", 0, "cross_entropy", 0.005, base),
        Record("copy", 100, "rnn", 0, "cross_entropy", 0.17, base),
    ]
    summaries = {s.cell: s for s in summarize(records)}
    assert summaries["gru"].verdict == "solved"  # 0.005 < 0.05 * 0.1733
    assert summaries["rnn"].verdict == "at baseline"
    assert "| copy | 100 | gru | cross_entropy |" in markdown_table(list(summaries.values()))


def test_record_from_dict_checks_fields() -> None:
    row = {
        "task": "adding",
        "length": "50",
        "cell": "gru",
        "seed": 0,
        "metric": "mse",
        "value": 0.1,
    }
    assert Record.from_dict(row).length == 50
    with pytest.raises(ValueError, match="lacks"):
        Record.from_dict({"task": "adding"})
    with pytest.raises(ValueError, match="bad value"):
        Record.from_dict({**row, "value": "high"})
