"""rnnlab's fused BPTT: one direction of one layer as a single autograd node.

torch's fused kernels cannot run layer normalization, recurrent dropout or zoneout. The
reference time loop (``rnnlab.nn.directions.reference_direction``) runs them through
autograd step by step, which records a dozen small nodes per step and walks them one by one
backward. Here the same recurrence is one ``torch.autograd.Function`` per cell family
(``rnnlab.nn.bptt_rnn``, ``rnnlab.nn.bptt_lstm``, ``rnnlab.nn.bptt_gru``; their shared
pieces in ``rnnlab.nn.bptt_parts``), and :func:`run_direction` here is the entry point:

- forward runs the steps into preallocated ``(T, B, .)`` buffers and keeps what backward
  needs (gate activations, the state fed to ``W_hh``, layer-norm statistics);
- backward is hand-derived backpropagation through time: per step only the elementwise
  chain rule and one ``(B, G*H) @ (G*H, H)`` matrix multiply; the parameter gradients come
  after the loop, batched over time::

      dW_hh = dA^T @ H_rec     dA: (T*B, G*H), H_rec: (T*B, H_out)   one matmul, all steps
      db_hh = sum of dA        dgain, dbias of layer norm: sums over (T, B) likewise

The input projections ``gx = LN_ih(x W_ih^T) + b_ih`` of all steps come in precomputed (one
matrix multiply outside, under ordinary autograd, or with layer norm on CPU one node of
``rnnlab.nn.input_norm``); their gradient ``dgx`` goes out. (The layer-normalized simple RNN
and GRU under autograd run through ``rnnlab.nn.normalized_rnn`` and
``rnnlab.nn.normalized_gru`` instead, which wrap their family's passes with their input
projection in one node and keep the layer norms' inputs instead of activations.) The large
``(T, B, .)`` buffers are advised to use transparent huge pages (``rnnlab.nn.huge_pages``).

Masks come in drawn by the caller, so the function is deterministic (and gradcheck-able):

- ``rec_mask`` ``(B, H_out)``: recurrent dropout, ``h_rec = h_{t-1} * rec_mask``;
- ``zone_h`` ``(T, B, H_out)`` and, for LSTM, ``zone_c`` ``(T, B, H)``: the weight of the
  previous value, ``h_t = zone * h_{t-1} + (1 - zone) * h~_t``; in training a Bernoulli
  draw per step (a bool mask, or 0/1), the constant ``p`` in eval mode;
- ``valid`` ``(T, B, 1)`` bool: inside the sequence. Outside, the state is held and the
  output is zero, exactly as in the reference loop.

Memory kept for backward: the activations each family's chain rule needs (RNN: ``h~``;
LSTM: the four gates, ``tanh(c)``, ``c_{t-1}``; GRU: ``r``, ``z``, ``n`` and the reset
product's operand), layer-norm inputs and statistics, and masks as bool. ``h_{t-1}`` is
rebuilt from the outputs unless lengths are given (then the state is held past a sequence's
end and differs from the output), and without lengths the RNN's ``h~`` is the output itself
(with a zoneout mask, wherever the mask takes the new value; elsewhere its gradient is 0).

The time loops themselves run in one of two implementations with one interface: the native
C++ ops (``rnnlab.nn.native``: CPU, float32/float64) or ``rnnlab.nn.loops`` (Python, any
device; on CUDA replayed as graphs, ``rnnlab.nn.cuda_graphs``), chosen by
``rnnlab.nn.loop_backends``. Each family's function allocates the buffers, calls one of
them, and keeps what backward needs.

``reverse=True`` runs ``t = T-1 .. 0``. The equations are those of ``rnnlab.nn.steps``.
"""

from __future__ import annotations

from torch import Tensor

from rnnlab.nn.bptt_gru import GRUFunction
from rnnlab.nn.bptt_lstm import LSTMFunction
from rnnlab.nn.bptt_parts import split_norm
from rnnlab.nn.bptt_rnn import RNNFunction
from rnnlab.nn.regularizers import SeededMask
from rnnlab.nn.steps import Norm


def run_direction(
    family: str,
    gx: Tensor,
    h0: Tensor,
    c0: Tensor | None,
    w_hh: Tensor,
    b_hh: Tensor | None,
    *,
    ln_hh: Norm = None,
    ln_c: Norm = None,
    w_hr: Tensor | None = None,
    rec_mask: Tensor | None = None,
    zone_h: Tensor | None = None,
    zone_c: Tensor | None = None,
    valid: Tensor | None = None,
    reverse: bool = False,
    nonlinearity: str = "tanh",
    w_keep: Tensor | SeededMask | None = None,
    weight_drop: float = 0.0,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """One direction of one layer through the fused BPTT function of its family.

    Args:
        family: ``"rnn"``, ``"lstm"`` or ``"gru"``.
        gx: input projections of all steps, ``(T, B, G*H)``, ``LN_ih`` and ``b_ih`` applied.
        h0: initial hidden state ``(B, H_out)``; c0: initial cell state ``(B, H)`` (LSTM).
        w_hh, b_hh: recurrent weight ``(G*H, H_out)`` (possibly DropConnect-masked) and bias.
        ln_hh, ln_c: layer-norm ``(gain, bias)`` of the recurrent projection and of the cell.
        w_hr: LSTM projection ``(H_out, H)``.
        rec_mask: recurrent-dropout mask ``(B, H_out)``, reused at every step.
        zone_h, zone_c: weight of the previous state per step, broadcastable to
            ``(T, B, H_out)`` / ``(T, B, H)``: in training a bool mask (``True`` keeps the
            previous value; saved for backward as bool, a quarter of the memory of 0/1
            weights) or 0/1 weights, in eval the constant ``p``.
        valid: ``(T, B, 1)`` bool, ``False`` past a sequence's length.
        reverse: run from ``t = T-1`` down to ``0``.
        nonlinearity: ``"tanh"`` or ``"relu"`` (simple RNN only).
        w_keep: DropConnect's bool mask of ``w_hh`` (``True`` keeps an entry), applied inside
            with the scale ``1 / (1 - weight_drop)``: backward keeps the mask (one byte per
            weight; nothing for a ``SeededMask``, rebuilt from its seed) and recomputes the
            masked matrix, instead of keeping a masked copy.
        weight_drop: DropConnect's probability ``p`` (only read with ``w_keep``).

    Returns:
        ``(outputs (T, B, H_out), h_T, c_T)``; ``c_T`` is ``None`` except for LSTM.

    Example:
        >>> import torch
        >>> gx, h0, w = torch.randn(5, 2, 12), torch.zeros(2, 4), torch.randn(12, 4)
        >>> out, h, _ = run_direction("gru", gx, h0, None, w, None, reverse=True)
        >>> out.shape, h.shape
        (torch.Size([5, 2, 4]), torch.Size([2, 4]))
    """
    ln_w, ln_b = split_norm(ln_hh)
    layer_norm = ln_hh is not None
    scale = 1.0 / (1.0 - weight_drop) if w_keep is not None else 1.0
    if family == "lstm":
        if c0 is None:
            raise ValueError("run_direction: family 'lstm' needs c0, got None")
        lnc_w, lnc_b = split_norm(ln_c)
        if layer_norm != (ln_c is not None):
            raise ValueError("run_direction: LSTM layer norm needs both ln_hh and ln_c")
        out, h, c = LSTMFunction.apply(
            gx, h0, c0, w_hh, b_hh, ln_w, ln_b, lnc_w, lnc_b, w_hr,
            rec_mask, zone_h, zone_c, valid, reverse, layer_norm, w_keep, scale,
        )  # fmt: skip
        return out, h, c
    if family == "gru":
        out, h = GRUFunction.apply(
            gx,
            h0,
            w_hh,
            b_hh,
            ln_w,
            ln_b,
            rec_mask,
            zone_h,
            valid,
            reverse,
            layer_norm,
            w_keep,
            scale,
        )
        return out, h, None
    if family == "rnn":
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(
                f"run_direction: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}"
            )
        out, h = RNNFunction.apply(
            gx, h0, w_hh, b_hh, ln_w, ln_b, rec_mask, zone_h, valid,
            nonlinearity == "relu", reverse, layer_norm, w_keep, scale,
        )  # fmt: skip
        return out, h, None
    raise ValueError(f"run_direction: family must be 'rnn', 'lstm' or 'gru', got {family!r}")
