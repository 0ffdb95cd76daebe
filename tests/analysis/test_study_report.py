"""The study report: table rows, plots and sentences that follow the numbers."""

from __future__ import annotations

from pathlib import Path

import pytest

from rnnlab.analysis.comparison.gradient_section import gradient_sentences
from rnnlab.analysis.comparison.records import RunRecord
from rnnlab.analysis.comparison.study_plots import plot_curves, plot_lengths
from rnnlab.analysis.comparison.table import table_rows, to_records
from rnnlab.analysis.conclusions import conclusions


def run(cell: str, seed: int, value: float, length: int = 100, **settings: object) -> RunRecord:
    return RunRecord(
        run_id=f"adding-T{length}-{cell}-s{seed}",
        task="adding",
        length=length,
        cell=cell,
        settings={"cell": cell, **settings},
        seed=seed,
        metric="mse",
        value=value,
        baseline=1 / 6,
        test={"mse": value},
        parameters=100 if cell == "rnn" else 400,
        seconds=10.0 + seed,
        steps=1000,
        seconds_per_1000_steps=10.0 + seed,
        status="max_steps",
        curve=[(100, 0.16), (200, value)],
    )


def study(rnn: list[float], lstm: list[float], length: int = 100) -> list[RunRecord]:
    return [run("rnn", s, v, length) for s, v in enumerate(rnn)] + [
        run("lstm", s, v, length) for s, v in enumerate(lstm)
    ]


def test_table_rows_aggregate_seeds() -> None:
    rows = table_rows(study([0.167, 0.165, 0.166], [0.001, 0.003, 0.2]))
    by_cell = {r.cell: r for r in rows}
    assert by_cell["rnn"].solved_text == "0/3" and by_cell["lstm"].solved_text == "2/3"
    assert by_cell["lstm"].mean == pytest.approx((0.001 + 0.003 + 0.2) / 3)
    assert by_cell["rnn"].parameters == 100
    assert by_cell["rnn"].seconds_per_1000_steps == pytest.approx(11.0)


def test_sentences_follow_the_numbers() -> None:
    normal = conclusions(to_records(study([0.167, 0.165, 0.166], [0.001, 0.002, 0.003])))
    swapped = conclusions(to_records(study([0.001, 0.002, 0.003], [0.167, 0.165, 0.166])))
    assert normal != swapped
    assert "LSTM solves it" in normal[0] and "the tanh RNN stays at the mean predictor" in normal[0]
    assert (
        "the tanh RNN solves it" in swapped[0] and "LSTM stays at the mean predictor" in swapped[0]
    )


def test_other_varied_settings_become_part_of_the_label() -> None:
    records = [run("gru", 0, 0.01, hidden_size=h) for h in (16, 64)]
    labels = {r.cell for r in table_rows(records)}
    assert labels == {"gru hidden_size=16", "gru hidden_size=64"}


def test_gradient_sentences_follow_the_numbers() -> None:
    ratios = {
        "init": {"rnn": 1e-30, "lstm": 1e-14, "gru": 1e-31},
        "trained": {"rnn": 1e-20, "lstm": 1e-2, "gru": 0.3},
    }
    text = gradient_sentences(ratios, "adding", 100)
    assert "the tanh RNN 1.0e-30, LSTM 1.0e-14, GRU 1.0e-31" in text[0]
    assert "LSTM's is 16 orders of magnitude above; GRU's is 1 order of magnitude below" in text[0]
    assert "LSTM's is 18 orders of magnitude above; GRU's is 19 orders" in text[1]
    flipped = gradient_sentences({"init": {"rnn": 1e-2, "lstm": 2e-2}}, "adding", 100)
    assert "LSTM's is within one order of magnitude of it" in flipped[0]
    other = gradient_sentences({"init": {"gru": 1e-9, "lstm": 1e-2}}, "adding", 100)
    assert "LSTM's is 7 orders of magnitude above GRU's" in other[0]


def test_plots_are_written(tmp_path: Path) -> None:
    records = study([0.167, 0.166], [0.002, 0.003], 50) + study([0.167, 0.166], [0.01, 0.02], 100)
    assert plot_curves(records, "adding", tmp_path / "c.png").stat().st_size > 1000
    assert plot_lengths(records, "adding", tmp_path / "l.png").stat().st_size > 1000
