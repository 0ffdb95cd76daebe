"""Exported recurrences equal the eager rnnlab layers: onnxruntime, TorchScript and the exported
program, on batch sizes, times and lengths other than the export example's (length 1 and
the full length among them), both directions, stacked, every cell, extras in eval mode."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor, nn

import rnnlab
from rnnlab.export.formats import Signature, check, write
from rnnlab.export.graph import ExportRecurrent, Loop, replace_recurrent

pytest.importorskip("onnxruntime")

TOL = 1e-5
EXTRAS = {"layer_norm": True, "zoneout": 0.2, "recurrent_dropout": 0.3, "weight_drop": 0.4}


class Outputs(nn.Module):
    """A layer's output, h_n (and c_n) for padded batches with lengths."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x: Tensor, lengths: Tensor) -> Any:
        out, state = self.layer(x, None, lengths=lengths)
        return (out, *state) if isinstance(state, tuple) else (out, state)


SIGNATURE = Signature(("x", "lengths"), {"x": {0: "batch", 1: "time"}, "lengths": {0: "batch"}}, ())
EXAMPLE = (torch.randn(3, 7, 4), torch.tensor([7, 5, 3]))  # export time
TEST = (torch.randn(4, 9, 4), torch.tensor([9, 1, 5, 3]))  # other sizes, lengths 1 and 9
ONE_STEP = (torch.randn(2, 1, 4), torch.tensor([1, 1]))


def layer(cell: str, **options: Any) -> nn.Module:
    torch.manual_seed(0)
    cls = {"rnn": rnnlab.RNN, "lstm": rnnlab.LSTM, "gru": rnnlab.GRU}[cell]
    return cls(4, 6, batch_first=True, **options).eval()


def export_and_check(model: nn.Module, format: str, folder: Path) -> list[float]:
    def make(loop: Loop) -> nn.Module:
        return Outputs(replace_recurrent(copy.deepcopy(model), loop))

    path = write(make, EXAMPLE, SIGNATURE, format, folder / f"m.{format}")  # type: ignore[arg-type]
    reference = Outputs(model)
    return [check(path, format, reference, inputs) for inputs in (TEST, ONE_STEP)]  # type: ignore[arg-type]


CASES = {
    "rnn-tanh-bi-stacked": ("rnn", {"num_layers": 2, "bidirectional": True}),
    "rnn-relu-extras": ("rnn", {"nonlinearity": "relu", **EXTRAS}),
    "lstm-proj-bi-stacked": ("lstm", {"num_layers": 2, "bidirectional": True, "proj_size": 3}),
    "lstm-extras-bi": ("lstm", {"bidirectional": True, "forget_bias": 1.0, **EXTRAS}),
    "gru-extras-bi-stacked": ("gru", {"num_layers": 2, "bidirectional": True, **EXTRAS}),
    "gru-plain": ("gru", {}),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("format", ["onnx", "torchscript", "exported-program"])
def test_exported_layer_matches_eager(case: str, format: str, tmp_path: Path) -> None:
    cell, options = CASES[case]
    if format == "onnx" and case in ("gru-plain",):
        pytest.skip("covered by the other ONNX cases (each dynamo export takes seconds)")
    diffs = export_and_check(layer(cell, **options), format, tmp_path)
    assert max(diffs) < TOL, diffs


@pytest.mark.parametrize("cell", ["rnn", "gru"])
def test_legacy_onnx_loop_matches_eager(cell: str, tmp_path: Path) -> None:
    diffs = export_and_check(
        layer(cell, bidirectional=True, layer_norm=True), "onnx-legacy", tmp_path
    )
    assert max(diffs) < TOL, diffs


@pytest.mark.parametrize("loop", ["scan", "script"])
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_graph_equals_layer_in_eager_pytorch(cell: str, loop: Loop) -> None:
    model = layer(cell, num_layers=2, bidirectional=True, **EXTRAS)
    graph = ExportRecurrent(model, loop)
    with torch.no_grad():
        for x, lengths in (TEST, ONE_STEP):
            want = Outputs(model)(x, lengths)
            got = Outputs(graph)(x, lengths)
            for a, b in zip(got, want, strict=True):
                torch.testing.assert_close(a, b, atol=TOL, rtol=0)
    # padding is zero past each length; the same parameter names as the layer
    out = Outputs(graph)(*TEST)[0]
    assert float(out[1, 1:].abs().max()) == 0.0 and float(out[1, 0].abs().max()) > 0.0
    assert list(graph.state_dict()) == list(model.state_dict())


def test_graph_without_lengths_and_with_a_state_equals_layer() -> None:
    model = layer("lstm", num_layers=2, proj_size=2, zoneout=0.1)
    h0, c0 = torch.randn(2, 3, 2), torch.randn(2, 3, 6)
    x = torch.randn(3, 5, 4)
    with torch.no_grad():
        want = model(x, (h0, c0))
        got = ExportRecurrent(model)(x, (h0, c0))
    torch.testing.assert_close(got[0], want[0], atol=TOL, rtol=0)
    torch.testing.assert_close(got[1][1], want[1][1], atol=TOL, rtol=0)


def test_torch_nn_layers_export_too(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = nn.GRU(4, 6, batch_first=True, bidirectional=True).eval()
    # torch.nn takes no lengths; compare with the rnnlab layer holding the same weights
    twin = rnnlab.GRU(4, 6, batch_first=True, bidirectional=True).eval()
    twin.load_state_dict(model.state_dict())
    graph = Outputs(ExportRecurrent(model))
    with torch.no_grad():
        for a, b in zip(graph(*TEST), Outputs(twin)(*TEST), strict=True):
            torch.testing.assert_close(a, b, atol=TOL, rtol=0)
