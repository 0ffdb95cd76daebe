"""The export-friendly recurrence: an explicit, masked time loop over a trained layer's weights.

rnnlab's layers run torch's fused kernel in eval mode and handle ``lengths`` by packing,
which the exporters do not follow (a packed sequence has data-dependent shapes). An
:class:`ExportRecurrent` computes the same function as the eval-mode layer with ops every
exporter keeps, for any batch size and any number of steps::

    x: (T, B, I) --one matmul per layer and direction--> gx: (T, B, G*H)
    for t in 0..T-1 (T-1..0 reversed):           # a loop in the graph, not unrolled
        h~, c~ = step(gx[t], h, c)               # rnnlab.nn.steps equations
        h~ = z * h + (1 - z) * h~                 # zoneout: its expectation in eval
        where t >= length: h~ = h, output_t = 0  # the reverse direction starts at length-1

Two loop forms, the same numbers:

- ``loop="scan"``: ``torch._higher_order_ops.scan``, kept by ``torch.export`` (an exported
  program with a symbolic time dimension) and turned into an ONNX ``Scan`` by the dynamo
  ONNX exporter.
- ``loop="script"``: a TorchScript function with a ``for`` loop; ``torch.jit.trace`` of a
  model that calls it keeps the loop (a TorchScript model, and an ONNX ``Loop`` through the
  legacy exporter).

Eval-mode extras are deterministic and built in: layer normalization, zoneout (its
expectation ``p * previous + (1 - p) * new``); recurrent dropout, DropConnect and dropout
between layers are the identity. The parameters are the layer's own tensors under the same
names (``weight_ih_l0``, ``ln_hh_weight_l1_reverse``, ...), so ``state_dict()`` matches.

Example:
    >>> import torch, rnnlab
    >>> layer = rnnlab.GRU(4, 8, num_layers=2, bidirectional=True, zoneout=0.1).eval()
    >>> graph = ExportRecurrent(layer)
    >>> x, lengths = torch.randn(7, 3, 4), torch.tensor([7, 4, 1])
    >>> out, h_n = graph(x, None, lengths)
    >>> ref, ref_h = layer(x, lengths=lengths)
    >>> bool(torch.allclose(out, ref, atol=1e-6)), bool(torch.allclose(h_n, ref_h, atol=1e-6))
    (True, True)
"""

from __future__ import annotations

import functools
from typing import Any, Literal, cast

import torch
from torch import Tensor, nn
from torch._higher_order_ops.scan import scan

from rnnlab.nn.steps import LAYER_NORM_EPS

if LAYER_NORM_EPS != 1e-5:  # pragma: no cover - the literal in _norm must follow it
    raise ImportError("rnnlab.export.graph: _norm's epsilon differs from LAYER_NORM_EPS")

Loop = Literal["scan", "script", "onnx-ops"]
State = Tensor | tuple[Tensor, Tensor]

__all__ = ["ExportRecurrent", "Loop", "layer_family", "replace_recurrent"]

_FAMILIES = {"RNN_TANH": "rnn", "RNN_RELU": "rnn", "LSTM": "lstm", "GRU": "gru"}


def layer_family(layer: nn.RNNBase) -> str:
    """``"rnn"``, ``"lstm"`` or ``"gru"`` for a torch.nn or rnnlab recurrent layer."""
    return _FAMILIES[layer.mode]


def _norm(x: Tensor, weight: Tensor | None, bias: Tensor | None) -> Tensor:
    """Layer norm over the last dimension; in TorchScript written out (no shape argument: the
    legacy ONNX exporter needs a constant one, which a scripted loop does not give)."""
    if weight is None or bias is None:
        return x
    if not torch.jit.is_scripting():  # the scan loop: torch's layer norm
        return torch.nn.functional.layer_norm(x, (weight.shape[0],), weight, bias, 1e-5)
    mean = x.mean(dim=-1, keepdim=True)
    centered = x - mean
    var = (centered * centered).mean(dim=-1, keepdim=True)
    return centered * torch.rsqrt(var + 1e-5) * weight + bias  # 1e-5: LAYER_NORM_EPS


def cell_step(
    family: str,
    nonlinearity: str,
    gx: Tensor,
    h: Tensor,
    c: Tensor,
    w_hh: Tensor,
    b_hh: Tensor | None,
    w_hr: Tensor | None,
    ln_hh_w: Tensor | None,
    ln_hh_b: Tensor | None,
    ln_c_w: Tensor | None,
    ln_c_b: Tensor | None,
    zoneout: float,
) -> tuple[Tensor, Tensor]:
    """One eval-mode step of one direction: ``(h', c')`` (``c`` passes through unless LSTM)."""
    gh = _norm(torch.matmul(h, w_hh.t()), ln_hh_w, ln_hh_b)
    if b_hh is not None:
        gh = gh + b_hh
    c_new = c
    if family == "lstm":
        i, f, g, o = (gx + gh).chunk(4, dim=-1)
        c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h_new = torch.sigmoid(o) * torch.tanh(_norm(c_new, ln_c_w, ln_c_b))
        if w_hr is not None:
            h_new = torch.matmul(h_new, w_hr.t())
        if zoneout > 0.0:
            c_new = zoneout * c + (1.0 - zoneout) * c_new
    elif family == "gru":
        x_r, x_z, x_n = gx.chunk(3, dim=-1)
        h_r, h_z, h_n = gh.chunk(3, dim=-1)
        r = torch.sigmoid(x_r + h_r)
        z = torch.sigmoid(x_z + h_z)
        n = torch.tanh(x_n + r * h_n)
        h_new = (1.0 - z) * n + z * h
    else:
        pre = gx + gh
        h_new = torch.tanh(pre) if nonlinearity == "tanh" else torch.relu(pre)
    if zoneout > 0.0:
        h_new = zoneout * h + (1.0 - zoneout) * h_new
    return h_new, c_new


def script_direction(
    family: str,
    nonlinearity: str,
    gx: Tensor,
    valid: Tensor,
    h: Tensor,
    c: Tensor,
    w_hh: Tensor,
    b_hh: Tensor | None,
    w_hr: Tensor | None,
    ln_hh_w: Tensor | None,
    ln_hh_b: Tensor | None,
    ln_c_w: Tensor | None,
    ln_c_b: Tensor | None,
    zoneout: float,
    reverse: bool,
) -> tuple[Tensor, Tensor, Tensor]:
    """The TorchScript time loop of one direction: ``(outputs (T, B, H_out), h_T, c_T)``.

    ``valid`` is ``(T, B, 1)`` bool (``True`` inside each sequence).
    """
    steps = gx.shape[0]
    outputs: list[Tensor] = []
    for i in range(steps):
        t = steps - 1 - i if reverse else i
        h_new, c_new = cell_step(
            family, nonlinearity, gx[t], h, c, w_hh, b_hh, w_hr,
            ln_hh_w, ln_hh_b, ln_c_w, ln_c_b, zoneout,
        )  # fmt: skip
        keep = valid[t]
        h = torch.where(keep, h_new, h)
        c = torch.where(keep, c_new, c)
        outputs.append(torch.where(keep, h_new, torch.zeros_like(h_new)))
    out = torch.stack(outputs)
    if reverse:
        out = out.flip(0)
    return out, h, c


@functools.cache
def scripted_direction() -> Any:
    """:func:`script_direction` compiled by TorchScript (once, on first use)."""
    return torch.jit.script(script_direction)


class ExportRecurrent(nn.Module):
    """An eval-mode recurrent layer as an explicit masked loop (see the module docstring).

    Args:
        layer: an ``rnnlab.RNN/LSTM/GRU`` (any extras) or a ``torch.nn.RNN/LSTM/GRU``.
        loop: ``"scan"`` (torch.export, dynamo ONNX) or ``"script"`` (TorchScript, legacy ONNX);
            :func:`replace_recurrent` also takes ``"onnx-ops"`` (:mod:`rnnlab.export.onnx_ops`).

    The call is the layer's: ``forward(x, hx=None, lengths=None)`` returning ``output, h_n``
    (LSTM: ``output, (h_n, c_n)``); ``lengths`` is a ``(B,)`` integer tensor.
    """

    def __init__(self, layer: nn.RNNBase, loop: Loop = "scan") -> None:
        super().__init__()
        if loop not in ("scan", "script"):
            raise ValueError(f"loop must be 'scan' or 'script', got {loop!r}")
        self.loop: Loop = loop
        self.family = layer_family(layer)
        self.nonlinearity = "relu" if layer.mode == "RNN_RELU" else "tanh"
        self.input_size = layer.input_size
        self.hidden_size = layer.hidden_size
        self.proj_size = int(getattr(layer, "proj_size", 0) or 0)
        self.num_layers = layer.num_layers
        self.bidirectional = bool(layer.bidirectional)
        self.batch_first = bool(layer.batch_first)
        self.bias = bool(layer.bias)
        self.layer_norm = bool(getattr(layer, "layer_norm", False))
        self.zoneout = float(getattr(layer, "zoneout", 0.0))
        for name, param in layer.named_parameters(recurse=False):
            self.register_parameter(name, param)

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    def _get(self, name: str) -> Tensor | None:
        value = getattr(self, name, None)
        return cast(Tensor, value) if value is not None else None

    def forward(
        self, x: Tensor, hx: State | None = None, lengths: Tensor | None = None
    ) -> tuple[Tensor, State]:
        seq = x.transpose(0, 1) if self.batch_first else x  # (T, B, I)
        steps, batch = seq.shape[0], seq.shape[1]
        out_size = self.proj_size or self.hidden_size
        rows = self.num_layers * self.directions
        if hx is None:
            h0 = seq.new_zeros(rows, batch, out_size)
            c0 = seq.new_zeros(rows, batch, self.hidden_size)
        elif isinstance(hx, tuple | list):
            h0, c0 = hx[0], hx[1]
        else:
            h0, c0 = hx, seq.new_zeros(rows, batch, self.hidden_size)
        if lengths is None:
            valid = torch.ones_like(seq[:, :, :1], dtype=torch.bool)  # (T, B, 1)
        else:
            time = torch.arange(steps, device=seq.device).unsqueeze(1)  # (T, 1)
            valid = (time < lengths.to(seq.device).unsqueeze(0)).unsqueeze(-1)  # (T, B, 1)
        layer_input = seq
        h_last: list[Tensor] = []
        c_last: list[Tensor] = []
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(self.directions):
                row = layer * self.directions + direction
                suffix = f"_l{layer}" + ("_reverse" if direction else "")
                out, h_n, c_n = self._direction(
                    layer_input, valid, h0[row], c0[row], suffix, direction == 1
                )
                outputs.append(out)
                h_last.append(h_n)
                c_last.append(c_n)
            layer_input = outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=-1)
        output = layer_input.transpose(0, 1) if self.batch_first else layer_input
        h_all = torch.stack(h_last)
        if self.family == "lstm":
            return output, (h_all, torch.stack(c_last))
        return output, h_all

    def _direction(
        self, x: Tensor, valid: Tensor, h: Tensor, c: Tensor, suffix: str, reverse: bool
    ) -> tuple[Tensor, Tensor, Tensor]:
        w_ih = cast(Tensor, self._get("weight_ih" + suffix))
        b_ih = self._get("bias_ih" + suffix)
        gx = torch.matmul(x, w_ih.t())  # (T, B, G*H)
        if self.layer_norm:
            gx = _norm(gx, self._get("ln_ih_weight" + suffix), self._get("ln_ih_bias" + suffix))
        if b_ih is not None:
            gx = gx + b_ih
        weights = (
            cast(Tensor, self._get("weight_hh" + suffix)),
            self._get("bias_hh" + suffix),
            self._get("weight_hr" + suffix),
            self._get("ln_hh_weight" + suffix),
            self._get("ln_hh_bias" + suffix),
            self._get("ln_c_weight" + suffix),
            self._get("ln_c_bias" + suffix),
        )
        if self.loop == "script":
            return cast(
                tuple[Tensor, Tensor, Tensor],
                scripted_direction()(
                    self.family,
                    self.nonlinearity,
                    gx,
                    valid,
                    h,
                    c,
                    *weights,
                    self.zoneout,
                    reverse,
                ),
            )
        return self._scan_direction(gx, valid, h, c, weights, reverse)

    def _scan_direction(
        self,
        gx: Tensor,
        valid: Tensor,
        h: Tensor,
        c: Tensor,
        weights: tuple[Tensor | None, ...],
        reverse: bool,
    ) -> tuple[Tensor, Tensor, Tensor]:
        family, nonlinearity, zoneout = self.family, self.nonlinearity, self.zoneout
        w_hh, b_hh, w_hr, ln_hh_w, ln_hh_b, ln_c_w, ln_c_b = weights

        def combine(
            carry: tuple[Tensor, Tensor], xs: tuple[Tensor, Tensor]
        ) -> tuple[tuple[Tensor, Tensor], Tensor]:
            h_prev, c_prev = carry
            gx_t, keep = xs
            h_new, c_new = cell_step(
                family, nonlinearity, gx_t, h_prev, c_prev, cast(Tensor, w_hh), b_hh, w_hr,
                ln_hh_w, ln_hh_b, ln_c_w, ln_c_b, zoneout,
            )  # fmt: skip
            out = torch.where(keep, h_new, torch.zeros_like(h_new))
            return (torch.where(keep, h_new, h_prev), torch.where(keep, c_new, c_prev)), out

        (h_n, c_n), outputs = scan(combine, (h, c), (gx, valid), reverse=reverse)
        return outputs, h_n, c_n


def replace_recurrent(module: nn.Module, loop: Loop = "scan") -> nn.Module:
    """Replace, in place, every recurrent layer under ``module`` by its :class:`ExportRecurrent`.

    Returns ``module`` (or the replacement, when ``module`` itself is a recurrent layer).

    Example:
        >>> import copy, rnnlab
        >>> model = torch.nn.Sequential(rnnlab.LSTM(3, 5))
        >>> type(replace_recurrent(copy.deepcopy(model))[0]).__name__
        'ExportRecurrent'
    """
    if isinstance(module, nn.RNNBase):
        return _replacement(module, loop)
    for name, child in list(module.named_children()):
        if isinstance(child, nn.RNNBase):
            setattr(module, name, _replacement(child, loop))
        else:
            replace_recurrent(child, loop)
    return module


def _replacement(layer: nn.RNNBase, loop: Loop) -> nn.Module:
    """``loop="onnx-ops"``: ONNX's own operator where exact, else the scan loop."""
    if loop != "onnx-ops":
        return ExportRecurrent(layer, loop)
    from rnnlab.export.onnx_ops import OnnxOpsRecurrent, onnx_ops_reason

    if onnx_ops_reason(layer) is None:
        return OnnxOpsRecurrent(layer)
    return ExportRecurrent(layer, "scan")
