"""The shipped study "modern": loads, expands, and every run's config is valid."""

from __future__ import annotations

from rnnlab import config as cfg
from rnnlab.analysis.comparison.expansion import expand
from rnnlab.analysis.comparison.study_spec import load_study, study_names

CELLS = {"rnn", "lstm", "gru", "mingru", "minlstm", "indrnn", "slstm", "mlstm"}


def test_modern_study_expands_to_valid_runs() -> None:
    assert "modern" in study_names()
    specs = expand(load_study("modern"))
    synthetic = [s for s in specs if s.task in ("adding", "copy")]
    assert {s.cell for s in synthetic} == CELLS
    assert {s.length for s in synthetic if s.task == "adding"} == {100, 400, 1000}
    assert {s.task for s in specs} == {"adding", "copy", "language", "speech-digits", "forecasting"}
    real = [s for s in specs if s not in synthetic]
    assert {s.cell for s in real} == CELLS
    for spec in specs:
        assert cfg.from_dict(spec.config).model.cell == spec.cell
