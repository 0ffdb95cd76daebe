"""Plain recurrent layers as ONNX's own ``LSTM`` / ``GRU`` / ``RNN`` operators.

onnxruntime runs these operators with its fused kernels, several times faster at batch 1 than
the ``Scan`` loop of :mod:`rnnlab.export.graph`. A layer qualifies when the operator computes
exactly its eval-mode function (:func:`onnx_ops_reason` is ``None``): RNN (tanh or relu),
LSTM or GRU, no layer normalization, no zoneout, no ``proj_size``. Recurrent dropout and
DropConnect are the identity in eval mode. Anything else keeps the ``Scan`` loop.

Each stacked layer is one operator (both directions in one, ``direction="bidirectional"``)
with ``sequence_lens`` = the lengths. The weights are the layer's in ONNX's gate order
(torch's LSTM ``i f g o`` -> ONNX ``i o f c``, GRU ``r z n`` -> ``z r h``; GRU with
``linear_before_reset=1``, torch's form). Outputs past each length are masked to zero in
the graph (onnxruntime leaves them unspecified in some versions), and ``h_n`` is the
operator's ``Y_h`` (the state at each sequence's last valid step).

In PyTorch the operator is the custom op ``rnnlab_export::onnx_rnn`` (a masked reference loop
in eager mode, a shape function for ``torch.export``), which :data:`TRANSLATIONS` turns into
the ONNX node when ``torch.onnx.export`` writes the program.
"""

from __future__ import annotations

from typing import Any, cast

import torch
from torch import Tensor, nn

__all__ = ["TRANSLATIONS", "OnnxOpsRecurrent", "onnx_ops_reason"]

# torch's chunk order -> ONNX's (indices of torch chunks in ONNX order)
_ORDER = {"lstm": (0, 3, 1, 2), "gru": (1, 0, 2), "rnn": (0,)}
_GATES = {"lstm": 4, "gru": 3, "rnn": 1}
_FAMILIES = {"RNN_TANH": "rnn", "RNN_RELU": "rnn", "LSTM": "lstm", "GRU": "gru"}


def onnx_ops_reason(layer: nn.RNNBase) -> str | None:
    """Why ``layer`` cannot be an ONNX recurrent operator exactly, or ``None`` when it can."""
    if getattr(layer, "layer_norm", False):
        return "layer norm"
    if float(getattr(layer, "zoneout", 0.0)) > 0.0:
        return "zoneout"
    if int(getattr(layer, "proj_size", 0) or 0):
        return "proj_size"
    if layer.mode not in ("RNN_TANH", "RNN_RELU", "LSTM", "GRU"):
        return f"mode {layer.mode}"
    return None


def _reorder(weight: Tensor, family: str) -> Tensor:
    chunks = weight.chunk(_GATES[family], dim=0)
    return torch.cat([chunks[i] for i in _ORDER[family]], dim=0)


def _reference_direction(
    family: str, relu: bool, x: Tensor, valid: Tensor, w: Tensor, r: Tensor, b: Tensor,
    h: Tensor, c: Tensor, reverse: bool,
) -> tuple[Tensor, Tensor, Tensor]:  # fmt: skip
    """ONNX semantics for one direction, gates in ONNX order: ``(Y (T, B, H), h_T, c_T)``."""
    size = r.shape[1]
    wb, rb = b[: w.shape[0]], b[w.shape[0] :]
    gx = torch.matmul(x, w.t()) + wb
    outputs: list[Tensor] = [x.new_zeros(0)] * x.shape[0]
    steps = range(x.shape[0] - 1, -1, -1) if reverse else range(x.shape[0])
    for t in steps:
        gh = torch.matmul(h, r.t()) + rb
        if family == "lstm":
            i, o, f, g = (gx[t] + gh).chunk(4, dim=-1)
            c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h_new = torch.sigmoid(o) * torch.tanh(c_new)
        elif family == "gru":
            z = torch.sigmoid(gx[t, :, :size] + gh[:, :size])
            rr = torch.sigmoid(gx[t, :, size : 2 * size] + gh[:, size : 2 * size])
            n = torch.tanh(gx[t, :, 2 * size :] + rr * gh[:, 2 * size :])
            h_new, c_new = (1.0 - z) * n + z * h, c
        else:
            pre = gx[t] + gh
            h_new, c_new = (torch.relu(pre) if relu else torch.tanh(pre)), c
        keep = valid[t]
        h, c = torch.where(keep, h_new, h), torch.where(keep, c_new, c)
        outputs[t] = torch.where(keep, h_new, torch.zeros_like(h_new))
    return torch.stack(outputs), h, c


@torch.library.custom_op("rnnlab_export::onnx_rnn", mutates_args=())
def onnx_rnn(
    x: Tensor, w: Tensor, r: Tensor, b: Tensor, lengths: Tensor, h0: Tensor, c0: Tensor,
    family: str, relu: bool,
) -> tuple[Tensor, Tensor, Tensor]:  # fmt: skip
    """ONNX ``LSTM``/``GRU``/``RNN``: ``Y (T, D, B, H)``, ``Y_h (D, B, H)``, ``Y_c (D, B, H)``."""
    steps = x.shape[0]
    valid = (torch.arange(steps).unsqueeze(1) < lengths.unsqueeze(0)).unsqueeze(-1)
    ys, hs, cs = [], [], []
    for d in range(w.shape[0]):
        y, h, c = _reference_direction(
            family, relu, x, valid, w[d], r[d], b[d], h0[d], c0[d], reverse=d == 1
        )
        ys.append(y)
        hs.append(h)
        cs.append(c)
    return torch.stack(ys, dim=1), torch.stack(hs), torch.stack(cs)


@onnx_rnn.register_fake
def _(
    x: Tensor, w: Tensor, r: Tensor, b: Tensor, lengths: Tensor, h0: Tensor, c0: Tensor,
    family: str, relu: bool,
) -> tuple[Tensor, Tensor, Tensor]:  # fmt: skip
    dirs, size = w.shape[0], r.shape[2]
    return (
        x.new_empty(x.shape[0], dirs, x.shape[1], size),
        h0.new_empty(h0.shape),
        c0.new_empty(c0.shape),
    )


def _translate(
    x: Any, w: Any, r: Any, b: Any, lengths: Any, h0: Any, c0: Any, family: str, relu: bool
) -> Any:
    """The ONNX node for :func:`onnx_rnn` (onnxscript, opset 18)."""
    from onnxscript import opset18 as op

    size = int(r.shape[2])
    direction = "bidirectional" if int(w.shape[0]) == 2 else "forward"
    seq: Any = op.Cast(lengths, to=6)  # int32
    if family == "lstm":
        y, y_h, y_c = op.LSTM(x, w, r, b, seq, h0, c0, hidden_size=size, direction=direction)
        return y, y_h, y_c
    if family == "gru":
        y, y_h = op.GRU(
            x, w, r, b, seq, h0, hidden_size=size, direction=direction,
            linear_before_reset=1,
        )  # fmt: skip
    else:
        activation = "Relu" if relu else "Tanh"
        activations = [activation] * (2 if direction == "bidirectional" else 1)
        y, y_h = op.RNN(
            x, w, r, b, seq, h0, hidden_size=size, direction=direction,
            activations=activations,
        )  # fmt: skip
    return y, y_h, c0


TRANSLATIONS: dict[Any, Any] = {torch.ops.rnnlab_export.onnx_rnn.default: _translate}


class OnnxOpsRecurrent(nn.Module):
    """An eval-mode plain layer as one ONNX recurrent operator per stacked layer.

    The call is the layer's: ``forward(x, hx=None, lengths=None) -> output, h_n`` (LSTM:
    ``output, (h_n, c_n)``). Raises ``ValueError`` for a layer :func:`onnx_ops_reason` rejects.
    """

    def __init__(self, layer: nn.RNNBase) -> None:
        super().__init__()
        reason = onnx_ops_reason(layer)
        if reason is not None:
            raise ValueError(f"no exact ONNX operator for this layer ({reason})")
        self.family = _FAMILIES[layer.mode]
        self.relu = layer.mode == "RNN_RELU"
        self.hidden_size = layer.hidden_size
        self.num_layers = layer.num_layers
        self.bidirectional = bool(layer.bidirectional)
        self.batch_first = bool(layer.batch_first)
        self.directions = 2 if self.bidirectional else 1
        gates = _GATES[self.family] * layer.hidden_size
        for k in range(self.num_layers):
            ws, rs, bs = [], [], []
            for d in range(self.directions):
                suffix = f"_l{k}" + ("_reverse" if d else "")
                ws.append(_reorder(getattr(layer, "weight_ih" + suffix).detach(), self.family))
                rs.append(_reorder(getattr(layer, "weight_hh" + suffix).detach(), self.family))
                parts = []
                for kind in ("bias_ih", "bias_hh"):
                    bias = getattr(layer, kind + suffix, None)
                    zeros = torch.zeros(gates)
                    parts.append(zeros if bias is None else _reorder(bias.detach(), self.family))
                bs.append(torch.cat(parts))
            self.register_buffer(f"w{k}", torch.stack(ws).clone())
            self.register_buffer(f"r{k}", torch.stack(rs).clone())
            self.register_buffer(f"b{k}", torch.stack(bs).clone())

    def forward(
        self, x: Tensor, hx: Any = None, lengths: Tensor | None = None
    ) -> tuple[Tensor, Any]:
        seq = x.transpose(0, 1) if self.batch_first else x  # (T, B, I)
        steps, batch = seq.shape[0], seq.shape[1]
        rows = self.num_layers * self.directions
        if hx is None:
            h0 = seq.new_zeros(rows, batch, self.hidden_size)
            c0 = seq.new_zeros(rows, batch, self.hidden_size)
        elif isinstance(hx, tuple | list):
            h0, c0 = hx[0], hx[1]
        else:
            h0, c0 = hx, seq.new_zeros(rows, batch, self.hidden_size)
        if lengths is None:
            lens = torch.full((batch,), steps, dtype=torch.long, device=seq.device)
        else:
            lens = lengths.to(device=seq.device, dtype=torch.long)
        valid = torch.arange(steps, device=seq.device).unsqueeze(1) < lens.unsqueeze(0)
        valid = valid.unsqueeze(-1)  # (T, B, 1)
        h_last, c_last, layer_input = [], [], seq
        for k in range(self.num_layers):
            span = slice(k * self.directions, (k + 1) * self.directions)
            y, y_h, y_c = torch.ops.rnnlab_export.onnx_rnn(
                layer_input, cast(Tensor, getattr(self, f"w{k}")),
                cast(Tensor, getattr(self, f"r{k}")), cast(Tensor, getattr(self, f"b{k}")),
                lens, h0[span], c0[span], self.family, self.relu,
            )  # fmt: skip
            out = y.permute(0, 2, 1, 3).reshape(steps, batch, self.directions * self.hidden_size)
            layer_input = torch.where(valid, out, torch.zeros_like(out))  # zero past lengths
            h_last.append(y_h)
            c_last.append(y_c)
        output = layer_input.transpose(0, 1) if self.batch_first else layer_input
        h_n = torch.cat(h_last)
        return (output, (h_n, torch.cat(c_last))) if self.family == "lstm" else (output, h_n)
