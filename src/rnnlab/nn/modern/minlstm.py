"""minLSTM (Feng et al. 2024, "Were RNNs All We Needed?"): an LSTM reduced to one state.

One step, for ``p_f, p_i, p_h = W x_t + b`` (``weight_ih`` rows in that order, ``H`` each)::

    f_t  = sigmoid(p_f),  i_t = sigmoid(p_i)      forget and input gates
    f'_t = f_t / (f_t + i_t),  i'_t = i_t / (f_t + i_t)   normalized: f' + i' = 1
    h~_t = g(p_h),  g(x) = x + 1/2 (x >= 0), sigmoid(x) (x < 0)
    h_t  = f'_t * h_{t-1} + i'_t * h~_t

The normalization makes the state's scale independent of time (the paper's
time-independent variant); no gate reads ``h_{t-1}``, so training is one projection over
all steps plus the linear scan ``h_t = a_t h_{t-1} + b_t``, ``a = f'``, ``b = i' h~``.
``f'`` is computed as ``sigmoid(log f - log i)`` (Python: ``logsigmoid``; native: with the
exponents shifted to be <= 0), so no pre-activation overflows it or makes it 0 / 0.

Linear-space scan rather than the paper's log-space one, for the reasons given in
:mod:`rnnlab.nn.modern.mingru` (stable because ``0 < f' < 1``; one multiply-add per element
and step, where ``logcumsumexp`` was measured slower than ``torch.nn.GRU``).

Example:
    >>> import torch
    >>> layer = MinLSTM(3, 8, num_layers=2)
    >>> out, h_n = layer(torch.randn(5, 2, 3))
    >>> tuple(out.shape), tuple(h_n.shape)
    ((5, 2, 8), (2, 2, 8))
"""

from __future__ import annotations

from typing import ClassVar

from rnnlab.nn.modern.mingru import MinGRU


class MinLSTM(MinGRU):
    """minLSTM layer stack; constructor and call as :class:`~rnnlab.nn.modern.base.ModernLayer`.

    Parameters ``weight_ih_l{k}`` ``(3 H, I_k)`` (``f``, ``i``, ``h~`` rows) and
    ``bias_ih_l{k}`` ``(3 H)``, with ``_reverse`` copies when bidirectional.
    """

    blocks: ClassVar[int] = 3
    kind: ClassVar[str] = "minlstm"
