"""mLSTM's two forms: the recurrent step (inference) and the parallel chunk (training).

Both take, per head, ``q, k, v`` (``k`` already scaled by ``1/sqrt(d)``), the input gate's
pre-activation ``i~`` and the forget gate's log ``log f``, and a state ``(C, n, m)``:
``C`` ``(B, NH, d, d)``, ``n`` ``(B, NH, d)``, ``m`` ``(B, NH)``. The equations are in
:mod:`rnnlab.nn.modern.mlstm`.

The parallel form unrolls the recurrence. With ``F_t = sum_{j <= t} log f_j``::

    D_ts  = sum_{s < j <= t} log f_j + i~_s    (s <= t; -inf for s > t)
    D_t0  = F_t + m_0                          (the initial state's log weight)
    m_t   = max(max_s D_ts, D_t0)              (exactly the recurrent stabilizer, unrolled)
    W_ts  = exp(D_ts - m_t),  w_t = exp(D_t0 - m_t)
    C_t q_t = sum_s W_ts (k_s . q_t) v_s + w_t C_0 q_t
    n_t . q_t = sum_s W_ts (k_s . q_t) + w_t n_0 . q_t

which is a decay-masked attention, ``(W * Q K^T) V``, plus the initial state's share; the
final state is the same sums at the last step. Running it chunk by chunk, each chunk
starting from the previous one's final state, is the chunked form: ``O(T L)`` work and
memory for chunks of ``L`` steps instead of ``O(T^2)``. ``D`` is a segment sum (a cumulative
sum down a masked ``L x L`` matrix), not a difference of two cumulative sums, so it does
not lose precision as ``F`` grows.

A padded step gets ``log f = 0`` and ``i~ = -inf``: its ``f' = 1`` and ``i' = 0`` leave the
state as it was, in both forms.
"""

from __future__ import annotations

import torch
from torch import Tensor

MState = tuple[Tensor, Tensor, Tensor]


def recurrent_step(
    q: Tensor, k: Tensor, v: Tensor, i_pre: Tensor, log_f: Tensor, state: MState
) -> tuple[Tensor, MState]:
    """One step: ``q, k, v`` ``(B, NH, d)``, ``i_pre, log_f`` ``(B, NH)`` -> ``h~`` and state."""
    c, n, m = state
    m_new = torch.maximum(log_f + m, i_pre)  # (B, NH)
    i_gate = torch.exp(i_pre - m_new).unsqueeze(-1)  # (B, NH, 1)
    f_gate = torch.exp(log_f + m - m_new).unsqueeze(-1)
    c_new = f_gate.unsqueeze(-1) * c + (i_gate * v).unsqueeze(-1) * k.unsqueeze(-2)
    n_new = f_gate * n + i_gate * k  # (B, NH, d)
    numerator = (c_new @ q.unsqueeze(-1)).squeeze(-1)  # (B, NH, d)
    denominator = torch.maximum((n_new * q).sum(-1).abs(), torch.exp(-m_new))  # (B, NH)
    return numerator / denominator.unsqueeze(-1), (c_new, n_new, m_new)


def recurrent_sequence(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    i_pre: Tensor,
    log_f: Tensor,
    state: MState,
    valid: Tensor | None,
) -> tuple[Tensor, MState]:
    """The recurrent form over ``T`` steps: inputs ``(B, NH, T, ...)``, ``valid`` ``(B, T)``."""
    outputs = []
    for t in range(q.shape[2]):
        h, new = recurrent_step(
            q[:, :, t], k[:, :, t], v[:, :, t], i_pre[:, :, t], log_f[:, :, t], state
        )
        if valid is not None:
            keep = valid[:, t].view(-1, 1)  # (B, 1)
            h = torch.where(keep.unsqueeze(-1), h, 0.0)
            new = (
                torch.where(keep.view(-1, 1, 1, 1), new[0], state[0]),
                torch.where(keep.unsqueeze(-1), new[1], state[1]),
                torch.where(keep, new[2], state[2]),
            )
        outputs.append(h)
        state = new
    return torch.stack(outputs, dim=2), state


def parallel_chunk(
    q: Tensor, k: Tensor, v: Tensor, i_pre: Tensor, log_f: Tensor, state: MState
) -> tuple[Tensor, MState]:
    """The parallel form over one chunk of ``L`` steps: inputs ``(B, NH, L, ...)``."""
    c0, n0, m0 = state
    steps = q.shape[2]
    lower = torch.ones(steps, steps, dtype=torch.bool, device=q.device).tril()  # s <= t
    strict = lower.clone().fill_diagonal_(False)  # s < t
    # segment sums: seg[t, s] = sum_{s < j <= t} log f_j
    seg = log_f.unsqueeze(-1).expand(*log_f.shape, steps).masked_fill(~strict, 0.0)
    seg = seg.cumsum(dim=-2)  # (B, NH, L, L)
    log_w = (seg + i_pre.unsqueeze(-2)).masked_fill(~lower, float("-inf"))
    log_w0 = log_f.cumsum(dim=-1) + m0.unsqueeze(-1)  # (B, NH, L)
    m = torch.maximum(log_w.amax(dim=-1), log_w0)  # (B, NH, L)
    weights = torch.exp(log_w - m.unsqueeze(-1))  # (B, NH, L, L)
    w0 = torch.exp(log_w0 - m)  # (B, NH, L)
    scores = weights * (q @ k.transpose(-1, -2))  # (B, NH, L, L)
    numerator = scores @ v + w0.unsqueeze(-1) * (q @ c0.transpose(-1, -2))  # (B, NH, L, d)
    dot = scores.sum(-1) + w0 * (q @ n0.unsqueeze(-1)).squeeze(-1)  # (B, NH, L)
    denominator = torch.maximum(dot.abs(), torch.exp(-m))
    h = numerator / denominator.unsqueeze(-1)
    last = weights[:, :, -1]  # (B, NH, L): each step's weight in the final state
    w_last = w0[:, :, -1]  # (B, NH)
    c_last = w_last[..., None, None] * c0 + (v * last.unsqueeze(-1)).transpose(-1, -2) @ k
    n_last = w_last.unsqueeze(-1) * n0 + (last.unsqueeze(-1) * k).sum(-2)
    return h, (c_last, n_last, m[:, :, -1])


def parallel_sequence(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    i_pre: Tensor,
    log_f: Tensor,
    state: MState,
    chunk_size: int | None,
) -> tuple[Tensor, MState]:
    """The chunked parallel form: chunks of ``chunk_size`` steps (``None``: one chunk)."""
    steps = q.shape[2]
    size = steps if chunk_size is None else chunk_size
    outputs = []
    for start in range(0, steps, size):
        part = slice(start, start + size)
        h, state = parallel_chunk(
            q[:, :, part],
            k[:, :, part],
            v[:, :, part],
            i_pre[:, :, part],
            log_f[:, :, part],
            state,
        )
        outputs.append(h)
    return (outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=2)), state
