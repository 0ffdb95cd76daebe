"""Plain layers exported as ONNX's LSTM/GRU/RNN operators equal the eager layers in onnxruntime:
lengths other than the export example's (1 and the full length), zero outputs past each
length, h_n at each sequence's last step, both directions, stacked, with an initial state;
layers the operators cannot express keep the Scan loop."""

from __future__ import annotations

import copy
from typing import Any

import onnx
import pytest
import torch
from torch import Tensor, nn

import rnnlab
from rnnlab.export.formats import Signature, run_file, write
from rnnlab.export.graph import ExportRecurrent, replace_recurrent
from rnnlab.export.onnx_ops import OnnxOpsRecurrent, onnx_ops_reason
from rnnlab.export.run import layer_paths

pytest.importorskip("onnxruntime")

TOL = 1e-5


class WithState(nn.Module):
    """A layer's output and final state for padded batches with lengths and an initial state."""

    def __init__(self, layer: nn.Module, lstm: bool) -> None:
        super().__init__()
        self.layer = layer
        self.lstm = lstm

    def forward(self, x: Tensor, lengths: Tensor, h: Tensor, c: Tensor) -> Any:
        out, state = self.layer(x, (h, c) if self.lstm else h, lengths=lengths)
        return (out, *state) if isinstance(state, tuple) else (out, state)


SIGNATURE = Signature(
    ("x", "lengths", "h", "c"),
    {"x": {0: "batch", 1: "time"}, "lengths": {0: "batch"}, "h": {1: "batch"}, "c": {1: "batch"}},
)


def _inputs(layer: nn.RNNBase, batch: int, steps: int, lengths: list[int]) -> tuple[Tensor, ...]:
    rows = layer.num_layers * (2 if layer.bidirectional else 1)
    h = 0.5 * torch.randn(rows, batch, layer.hidden_size)
    c = 0.5 * torch.randn(rows, batch, layer.hidden_size)
    return torch.randn(batch, steps, layer.input_size), torch.tensor(lengths), h, c


CASES = [
    (rnnlab.LSTM, {}),
    (rnnlab.GRU, {}),
    (rnnlab.RNN, {}),
    (rnnlab.RNN, {"nonlinearity": "relu"}),
    (rnnlab.LSTM, {"bias": False}),
]


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize(("cls", "options"), CASES)
def test_onnx_operators_match_eager(
    cls: Any, options: dict[str, Any], bidirectional: bool, tmp_path: Any
) -> None:
    torch.manual_seed(0)
    layer = cls(4, 6, num_layers=2, bidirectional=bidirectional, batch_first=True, **options)
    layer = layer.eval()
    lstm = layer.mode == "LSTM"

    def make(loop: Any) -> nn.Module:
        return WithState(replace_recurrent(copy.deepcopy(layer), loop), lstm)

    assert isinstance(make("onnx-ops").layer, OnnxOpsRecurrent)
    path = write(make, _inputs(layer, 3, 7, [7, 5, 3]), SIGNATURE, "onnx", tmp_path / "m.onnx")
    ops = {node.op_type for node in onnx.load(str(path)).graph.node}
    assert layer.mode.split("_")[0] in ops and "Scan" not in ops
    for batch, steps, lengths in ((4, 9, [9, 1, 5, 3]), (2, 1, [1, 1]), (1, 12, [12])):
        inputs = _inputs(layer, batch, steps, lengths)
        with torch.no_grad():
            expected = WithState(layer, lstm)(*inputs)
        got = run_file(path, "onnx", inputs)
        assert len(got) == len(expected)
        for a, b in zip(got, expected, strict=True):
            assert a.shape == b.shape
            assert float((a - b).abs().max()) < TOL
        for i, length in enumerate(lengths):  # outputs past each length are zero
            assert bool((got[0][i, length:] == 0).all())


def test_eager_reference_of_the_operator_matches_the_layer() -> None:
    torch.manual_seed(1)
    layer = rnnlab.GRU(3, 5, num_layers=2, bidirectional=True).eval()
    x, lengths = torch.randn(6, 3, 3), torch.tensor([6, 2, 1])
    with torch.no_grad():
        out, h_n = OnnxOpsRecurrent(layer)(x, None, lengths)
        ref, ref_h = layer(x, lengths=lengths)
    assert torch.allclose(out, ref, atol=TOL) and torch.allclose(h_n, ref_h, atol=TOL)


@pytest.mark.parametrize(
    ("options", "reason"),
    [({"layer_norm": True}, "layer norm"), ({"zoneout": 0.1}, "zoneout"), ({}, None)],
)
def test_inexpressible_layers_keep_the_scan_loop(options: dict[str, Any], reason: str) -> None:
    layer = rnnlab.LSTM(3, 4, **options).eval()
    assert onnx_ops_reason(layer) == reason
    replaced = replace_recurrent(nn.Sequential(layer), "onnx-ops").get_submodule("0")
    assert isinstance(replaced, ExportRecurrent if reason else OnnxOpsRecurrent)


def test_report_names_each_layers_path() -> None:
    model = nn.ModuleDict({"plain": rnnlab.GRU(3, 4), "normed": rnnlab.LSTM(3, 4, layer_norm=True)})
    paths = layer_paths(model, "onnx")
    assert paths["plain"] == "ONNX GRU operator per layer"
    assert paths["normed"].startswith("Scan time loop (layer norm")
    assert layer_paths(model, "torchscript")["plain"] == "scripted time loop"
