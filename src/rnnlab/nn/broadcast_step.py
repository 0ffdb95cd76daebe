"""One step of a single-layer RNN, LSTM or GRU whose inputs and states broadcast.

Where many copies of the same state each take a different input (SegRNN's parallel
decoding: every output segment starts from the encoder's final state ``h`` with its own
position query ``q_j``), the step's two projections need not be computed per pair::

    gates[n, j] = (q_j W_ih^T + b_ih)  +  (h_n W_hh^T + b_hh)
                  \\__ once per query __/    \\__ once per state __/

so for ``N`` states and ``Q`` queries the two matrix multiplies cost ``N + Q`` rows instead of
``N * Q``; only the element-wise gate arithmetic runs on every pair. Layer norm over each
projection factorizes the same way, so it is kept. The result equals running the layer on
the ``N * Q`` materialized pairs (same gate equations, :mod:`rnnlab.nn.steps`).

Example:
    >>> import torch
    >>> from rnnlab.nn import GRU
    >>> layer = GRU(8, 16, batch_first=True)
    >>> queries, h = torch.randn(1, 5, 8), torch.randn(3, 1, 16)  # Q = 5 queries, N = 3 states
    >>> out, _ = broadcast_step(layer, queries, h)
    >>> out.shape
    torch.Size([3, 5, 16])
"""

from __future__ import annotations

from typing import TypeGuard, cast

from torch import Tensor

from rnnlab.nn.recurrent import RecurrentLayer
from rnnlab.nn.steps import gru_step, input_projection, lstm_step, rnn_step

State = Tensor | tuple[Tensor, Tensor]


def supports_broadcast_step(layer: object) -> TypeGuard[RecurrentLayer]:
    """Whether :func:`broadcast_step` computes exactly what running ``layer`` on pairs would.

    True for rnnlab's own single-layer, unidirectional RNN, LSTM and GRU (with or without
    layer norm, a projection or DropConnect) without zoneout (its random masks in training,
    and its mixing in of the previous state in eval, are not part of the fast step), and in
    training mode without recurrent dropout (its masks are drawn per row of the
    materialized batch; in eval it is the identity).
    """
    if not isinstance(layer, RecurrentLayer):
        return False
    if layer.num_layers != 1 or layer.bidirectional:
        return False
    if layer.zoneout > 0.0:
        return False
    return not (layer.training and layer.recurrent_dropout > 0.0)


def broadcast_step(layer: RecurrentLayer, inputs: Tensor, state: State) -> tuple[Tensor, State]:
    """One recurrent step of ``layer`` on inputs and states that broadcast against each other.

    Args:
        layer: a layer for which :func:`supports_broadcast_step` holds.
        inputs: ``(..., I)``, e.g. ``(1, Q, I)``.
        state: ``(..., H_out)`` (LSTM: the pair ``(h, c)``), e.g. ``(N, 1, H)``; the leading
            dimensions broadcast against those of ``inputs``.

    Returns:
        ``(h', state')`` with the broadcast leading shape (``(N, Q, H_out)`` above); for the
        LSTM ``state' = (h', c')``.

    Raises:
        ValueError: for a layer the fast step does not cover.
    """
    if not supports_broadcast_step(layer):
        raise ValueError(
            f"broadcast_step needs a single-layer unidirectional rnnlab RNN/LSTM/GRU without "
            f"zoneout (or recurrent dropout in training), got {layer!r}"
        )
    # DropConnect masks W_hh once per call in every kernel, so one mask here is the same.
    drop_connect = layer.training and layer.weight_drop > 0.0
    weights = layer._step_weights("_l0", drop_connect)
    gx = input_projection(inputs, weights)
    if layer.family == "lstm":
        h, c = cast(tuple[Tensor, Tensor], state)
        h_new, c_new = lstm_step(gx, h, c, weights)
        return h_new, (h_new, c_new)
    h = cast(Tensor, state)
    if layer.family == "gru":
        h_new = gru_step(gx, h, h, weights)
    else:
        h_new = rnn_step(gx, h, weights, str(getattr(layer, "nonlinearity", "tanh")))
    return h_new, h_new


__all__ = ["broadcast_step", "supports_broadcast_step"]
