"""Plots are written as PNG files, atomically."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import rnnlab
from rnnlab.analysis import (
    gate_statistics,
    gradient_flow,
    hidden_statistics,
    plot_gate_statistics,
    plot_gradient_flow,
    plot_hidden_statistics,
)

PNG = b"\x89PNG\r\n\x1a\n"


def test_all_plots_write_pngs(tmp_path: Path) -> None:
    torch.manual_seed(0)
    x = torch.randn(12, 4, 2)
    layers = {"tanh RNN": rnnlab.RNN(2, 8), "LSTM": rnnlab.LSTM(2, 8), "GRU": rnnlab.GRU(2, 8)}
    flows = {k: gradient_flow(m, x, lambda out: out[-1].sum()) for k, m in layers.items()}
    gated = {k: gate_statistics(m, x) for k, m in layers.items() if k != "tanh RNN"}
    hidden = {k: hidden_statistics(m, x) for k, m in layers.items()}
    written = [
        plot_gradient_flow(flows, tmp_path / "plots" / "grad.png", title="init"),
        plot_gate_statistics(gated, tmp_path / "gates.png"),
        plot_hidden_statistics(hidden, tmp_path / "hidden.png"),
    ]
    for path in written:
        assert path.read_bytes()[:8] == PNG and path.stat().st_size > 5000
    assert sorted(p.name for p in tmp_path.rglob("*")) == [
        "gates.png",
        "grad.png",
        "hidden.png",
        "plots",
    ]


def test_plot_failure_leaves_no_partial_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one"):
        plot_gradient_flow({}, tmp_path / "empty.png")
    assert list(tmp_path.iterdir()) == []
