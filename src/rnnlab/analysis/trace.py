"""Run a recurrent layer step by step and keep every intermediate: states and gates.

The fused kernels hide the per-step hidden states and the gate activations. :func:`trace`
reruns a layer with its own weights, one step at a time, through the shared step equations of
``rnnlab.nn.steps``, so that the state ``h_t`` of every layer and direction is a tensor of its
own: the one that feeds step ``t + 1``. Gradients of a loss with respect to those tensors are
the total derivatives ``dL/dh_t`` (every path through later steps included), and the gate
activations can be recorded on the way::

    layer l, direction d:   h_0 -> step -> h_1 -> step -> ... -> h_T      (hidden["l0"][t])
                                     |              |
                            gates["l0"]["i"][0]   gates["l0"]["i"][1] ...  (LSTM i, f, g, o)

The trace runs the layer as in evaluation mode: no dropout between layers, no recurrent
dropout or DropConnect, zoneout replaced by its expectation. Its output equals
``layer.eval()(inputs)``. It works for ``rnnlab.nn.RNN | LSTM | GRU`` (with every option and
extra) and for ``torch.nn.RNN | LSTM | GRU``, whose parameter names are the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

import torch
from torch import Tensor, nn

from rnnlab.nn import regularizers
from rnnlab.nn.steps import StepWeights, gru_step, input_projection, lstm_step, normalize, rnn_step

State = Tensor | tuple[Tensor, Tensor]

LSTM_GATES = ("i", "f", "g", "o")
GRU_GATES = ("r", "z", "n")

_FAMILIES = {"RNN_TANH": "rnn", "RNN_RELU": "rnn", "LSTM": "lstm", "GRU": "gru"}


@dataclass
class Trace:
    """Everything one step-by-step run of a layer computed.

    Attributes:
        family: ``"rnn"``, ``"lstm"`` or ``"gru"``.
        rows: names of the layer/direction rows in the order of ``h_n``: ``"l0"``,
            ``"l0_reverse"``, ``"l1"``, ... (the parameter suffixes).
        output: the layer's output, same layout as the layer returns (padded tensor).
        hidden: per row, the states ``h_1 .. h_T`` in time order, each ``(B, H_out)``; the
            tensor at ``t`` is the one the next step reads (past a sequence's length it
            carries the last valid state on).
        cell: per row, the LSTM cell states ``c_1 .. c_T``, each ``(B, H)``; empty otherwise.
        gates: per row, per gate name, the activations ``(T, B, H)`` (only when recorded):
            LSTM ``i, f, o`` (sigmoid) and ``g`` (tanh); GRU ``r, z`` (sigmoid), ``n`` (tanh).
        valid: ``(T, B)`` booleans, true inside each sequence's length.
    """

    family: str
    rows: tuple[str, ...]
    output: Tensor
    hidden: dict[str, list[Tensor]]
    cell: dict[str, list[Tensor]] = field(default_factory=dict)
    gates: dict[str, dict[str, Tensor]] = field(default_factory=dict)
    valid: Tensor | None = None

    @property
    def steps(self) -> int:
        """Number of time steps ``T``."""
        return len(self.hidden[self.rows[0]])

    def reverse(self, row: str) -> bool:
        """Whether ``row`` runs backwards in time (``h_T`` is its first state)."""
        return row.endswith("_reverse")


def family_of(layer: nn.Module) -> str:
    """``"rnn"``, ``"lstm"`` or ``"gru"`` for a recurrent layer; ``ValueError`` otherwise."""
    mode = getattr(layer, "mode", None)
    if not isinstance(layer, nn.RNNBase) or mode not in _FAMILIES:
        raise ValueError(
            f"expected an rnnlab.nn or torch.nn RNN, LSTM or GRU layer, got {type(layer).__name__}"
        )
    return _FAMILIES[mode]


def _step_weights(layer: nn.RNNBase, suffix: str, family: str) -> StepWeights:
    def get(name: str) -> Tensor:
        return cast(Tensor, getattr(layer, name + suffix))

    layer_norm = bool(getattr(layer, "layer_norm", False))

    def norm(where: str) -> tuple[Tensor, Tensor] | None:
        if not layer_norm:
            return None
        return get(f"ln_{where}_weight"), get(f"ln_{where}_bias")

    return StepWeights(
        w_ih=get("weight_ih"),
        w_hh=get("weight_hh"),
        b_ih=get("bias_ih") if layer.bias else None,
        b_hh=get("bias_hh") if layer.bias else None,
        w_hr=get("weight_hr") if layer.proj_size > 0 else None,
        ln_ih=norm("ih"),
        ln_hh=norm("hh"),
        ln_c=norm("c") if family == "lstm" else None,
    )


def _gate_values(family: str, gx: Tensor, h: Tensor, w: StepWeights) -> dict[str, Tensor]:
    """Gate activations at one step (detached), from the same pre-activations as the step."""
    gh = normalize(torch.matmul(h, w.w_hh.t()), w.ln_hh)  # (B, G*H)
    if w.b_hh is not None:
        gh = gh + w.b_hh
    if family == "lstm":
        i, f, g, o = (gx + gh).chunk(4, dim=-1)
        return {"i": i.sigmoid(), "f": f.sigmoid(), "g": g.tanh(), "o": o.sigmoid()}
    x_r, x_z, x_n = gx.chunk(3, dim=-1)
    h_r, h_z, h_n = gh.chunk(3, dim=-1)
    r = (x_r + h_r).sigmoid()
    return {"r": r, "z": (x_z + h_z).sigmoid(), "n": (x_n + r * h_n).tanh()}


def trace(
    layer: nn.Module,
    inputs: Tensor,
    hx: State | None = None,
    lengths: Tensor | list[int] | None = None,
    *,
    record_gates: bool = False,
) -> Trace:
    """Run ``layer`` step by step on a padded batch and keep every state (and gate).

    Args:
        layer: an ``rnnlab.nn`` or ``torch.nn`` RNN, LSTM or GRU.
        inputs: ``(T, B, I)``, or ``(B, T, I)`` when the layer is ``batch_first``.
        hx: initial state as the layer takes it; zeros when omitted.
        lengths: per-sequence lengths in ``[1, T]`` for a padded batch.
        record_gates: also record the gate activations (LSTM and GRU), detached.

    Returns:
        A :class:`Trace`; ``trace.output`` equals ``layer.eval()(inputs)[0]``. Gradients flow
        from ``trace.output`` into ``trace.hidden`` and the layer's parameters.

    Example:
        >>> import torch, rnnlab
        >>> lstm = rnnlab.LSTM(3, 5, num_layers=2)
        >>> tr = trace(lstm, torch.randn(7, 2, 3), record_gates=True)
        >>> tr.rows, len(tr.hidden["l1"]), tuple(tr.gates["l0"]["f"].shape)
        (('l0', 'l1'), 7, (7, 2, 5))
    """
    family = family_of(layer)
    rnn = cast(nn.RNNBase, layer)
    if inputs.dim() != 3 or inputs.shape[-1] != rnn.input_size:
        raise ValueError(
            f"inputs must be 3-D (time, batch, {rnn.input_size}) or batch-first, "
            f"got shape {tuple(inputs.shape)}"
        )
    x = inputs.transpose(0, 1) if rnn.batch_first else inputs  # (T, B, I)
    steps, batch = x.shape[0], x.shape[1]
    directions = 2 if rnn.bidirectional else 1
    out_size = rnn.proj_size if rnn.proj_size > 0 else rnn.hidden_size
    rows_total = rnn.num_layers * directions
    if hx is None:
        h0 = x.new_zeros(rows_total, batch, out_size)
        c0 = x.new_zeros(rows_total, batch, rnn.hidden_size) if family == "lstm" else None
    elif isinstance(hx, tuple | list):
        h0, c0 = hx[0], hx[1]
    else:
        h0, c0 = hx, None
    valid = None
    if lengths is not None:
        lengths_t = torch.as_tensor(lengths, dtype=torch.long).cpu()
        if lengths_t.shape != (batch,) or lengths_t.min() < 1 or lengths_t.max() > steps:
            raise ValueError(
                f"lengths must be {batch} values in [1, {steps}], got {lengths_t.tolist()}"
            )
        valid = torch.arange(steps).unsqueeze(1) < lengths_t.unsqueeze(0)  # (T, B)
        valid = valid.to(x.device)
    zoneout = float(getattr(rnn, "zoneout", 0.0))

    result = Trace(family=family, rows=(), output=x, hidden={}, valid=valid)
    rows: list[str] = []
    layer_input = x
    for index in range(rnn.num_layers):
        outputs = []
        for direction in range(directions):
            row = f"l{index}" + ("_reverse" if direction else "")
            rows.append(row)
            w = _step_weights(rnn, "_" + row, family)
            gx = input_projection(layer_input, w)  # (T, B, G*H)
            h = h0[index * directions + direction]  # (B, H_out)
            c = None if c0 is None else c0[index * directions + direction]  # (B, H)
            hs: list[Tensor] = [h] * steps
            cs: list[Tensor] = [h] * steps
            outs: list[Tensor] = [h] * steps
            gate_steps: list[dict[str, Tensor]] = [{}] * steps
            order = range(steps - 1, -1, -1) if direction else range(steps)
            for t in order:
                if record_gates and family != "rnn":
                    with torch.no_grad():
                        gate_steps[t] = _gate_values(family, gx[t], h, w)
                c_new = None
                if family == "lstm":
                    h_new, c_new = lstm_step(gx[t], h, cast(Tensor, c), w)
                    c_new = regularizers.zoneout(cast(Tensor, c), c_new, zoneout, False)
                elif family == "gru":
                    h_new = gru_step(gx[t], h, h, w)
                else:
                    h_new = rnn_step(gx[t], h, w, "relu" if rnn.mode == "RNN_RELU" else "tanh")
                h_new = regularizers.zoneout(h, h_new, zoneout, False)
                out = h_new
                if valid is not None:
                    keep = valid[t].unsqueeze(-1)  # (B, 1)
                    h_new = torch.where(keep, h_new, h)
                    if c_new is not None:
                        c_new = torch.where(keep, c_new, cast(Tensor, c))
                    out = torch.where(keep, h_new, torch.zeros_like(h_new))
                hs[t], outs[t] = h_new, out
                if c_new is not None:
                    cs[t] = c_new
                h, c = h_new, c_new
            result.hidden[row] = hs
            if family == "lstm":
                result.cell[row] = cs
            if record_gates and family != "rnn":
                names = LSTM_GATES if family == "lstm" else GRU_GATES
                result.gates[row] = {
                    name: torch.stack([g[name] for g in gate_steps]) for name in names
                }  # (T, B, H) each
            outputs.append(torch.stack(outs))  # (T, B, H_out)
        layer_input = outputs[0] if directions == 1 else torch.cat(outputs, dim=-1)
    result.rows = tuple(rows)
    result.output = layer_input.transpose(0, 1) if rnn.batch_first else layer_input
    return result
