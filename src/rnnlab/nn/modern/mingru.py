"""minGRU (Feng et al. 2024, "Were RNNs All We Needed?"): a GRU whose gates see only the input.

One step, for ``p_z, p_h = W x_t + b`` (``weight_ih`` rows in that order, ``H`` each)::

    z_t  = sigmoid(p_z)                          update gate
    h~_t = g(p_h),  g(x) = x + 1/2 (x >= 0), sigmoid(x) (x < 0)
    h_t  = (1 - z_t) * h_{t-1} + z_t * h~_t

Neither gate reads ``h_{t-1}``, so the whole projection runs as one matrix multiply over
all steps and the time loop is the element-wise linear scan ``h_t = a_t h_{t-1} + b_t``
with ``a = 1 - z``, ``b = z h~``. ``g`` (the paper's activation for its log-space form) keeps
``h~`` and so ``h`` positive.

The scan runs in linear space, not in the paper's log space: ``0 < a_t < 1`` makes the
sequential recurrence a convex combination at every step, which cannot overflow or lose
precision in either direction (backward multiplies by the same ``a_t``), and it costs one
multiply-add per element and step. The log-space form (``logcumsumexp``) exists to turn the
scan into a parallel prefix over time; on a CPU the parallelism is over batch x hidden
instead, and ``logcumsumexp`` forward+backward alone was measured 2.5x slower than all of
``torch.nn.GRU`` (issue 21). The native kernel fuses gates and scan (``csrc/scan.cpp``).

Example:
    >>> import torch
    >>> layer = MinGRU(3, 8, batch_first=True)
    >>> out, h_n = layer(torch.randn(2, 5, 3))
    >>> tuple(out.shape), tuple(h_n.shape)
    ((2, 5, 8), (1, 2, 8))
    >>> y, h = layer.step(torch.randn(2, 3))  # one step, for streaming
"""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor

from rnnlab.nn.modern import scan
from rnnlab.nn.modern.base import ModernLayer


class MinGRU(ModernLayer):
    """minGRU layer stack; constructor and call as :class:`~rnnlab.nn.modern.base.ModernLayer`.

    Parameters ``weight_ih_l{k}`` ``(2 H, I_k)`` (``z`` rows, then ``h~`` rows) and
    ``bias_ih_l{k}`` ``(2 H)``, with ``_reverse`` copies when bidirectional.
    """

    blocks: ClassVar[int] = 2
    kind: ClassVar[str] = "mingru"

    def cell_step(self, pre: Tensor, h: Tensor, suffix: str) -> Tensor:
        a, b = scan.coefficients(self.kind, pre)
        return a * h + b

    def scan_direction(
        self, pre: Tensor, h0: Tensor, lengths: Tensor | None, reverse: bool, suffix: str
    ) -> tuple[Tensor, Tensor]:
        return scan.gated_scan(self.kind, pre, h0, lengths, reverse, self.batch_first)
