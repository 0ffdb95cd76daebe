"""Per-window instance normalization of forecasting inputs, undone at the output.

For a window ``x`` of shape ``(B, L, C)`` a shift ``mu`` and a scale ``s``, each
``(B, 1, C)``, are taken per window and channel; the model reads ``(x - mu) / s`` and its
output ``z`` is put back as ``y = z * s + mu``:

- ``"last"``: ``mu = x_L``, ``s = 1`` (NLinear's / SegRNN's last-value subtraction);
- ``"mean"``: ``mu = mean(x)``, ``s = 1``;
- ``"meanstd"``: ``mu = mean(x)``, ``s = sqrt(var(x) + eps)``;
- ``"revin"``: RevIN (Kim et al. 2022), ``meanstd`` followed by a learned per-channel
  affine map, ``x' = gamma * (x - mu) / s + beta``, inverted at the output as
  ``y = (z - beta) / gamma * s + mu`` (``gamma`` kept away from 0 by ``eps^2``); ``gamma``
  and ``beta`` are parameters, so they are part of the model's state dict.

Example:
    >>> norm = InstanceNorm("revin", channels=2)
    >>> x = torch.randn(3, 8, 2)
    >>> torch.allclose(norm.inverse(norm(x)), x, atol=1e-5)
    True
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

NormKind = Literal["last", "mean", "meanstd", "revin"]
NORM_KINDS: tuple[str, ...] = ("last", "mean", "meanstd", "revin")
_EPS = 1e-5


class InstanceNorm(nn.Module):
    """Normalize each window by its own statistics and undo it at the output.

    Args:
        kind: ``None`` (identity), ``"last"``, ``"mean"``, ``"meanstd"`` or ``"revin"``.
        channels: ``C``, the channels of the windows (the size of RevIN's ``gamma``/``beta``).

    :meth:`forward` stores the statistics of the window it normalizes; :meth:`inverse` uses
    them, so call them in pairs on the same batch.
    """

    def __init__(self, kind: NormKind | None, channels: int = 1) -> None:
        super().__init__()
        if kind is not None and kind not in NORM_KINDS:
            raise ValueError(f"instance_norm must be None or one of {NORM_KINDS}, got {kind!r}")
        self.kind: NormKind | None = kind
        if kind == "revin":
            self.weight = nn.Parameter(torch.ones(channels))  # gamma (C,)
            self.bias = nn.Parameter(torch.zeros(channels))  # beta (C,)
        self._shift: Tensor | None = None
        self._scale: Tensor | None = None

    def forward(self, x: Tensor) -> Tensor:
        """``(B, L, C) -> (B, L, C)`` normalized; remembers ``mu`` and ``s``."""
        ones = torch.ones_like(x[:, :1, :])
        if self.kind == "last":
            shift, scale = x[:, -1:, :], ones
        elif self.kind == "mean":
            shift, scale = x.mean(dim=1, keepdim=True), ones
        elif self.kind in ("meanstd", "revin"):
            shift = x.mean(dim=1, keepdim=True)
            scale = torch.sqrt(x.var(dim=1, keepdim=True, unbiased=False) + _EPS)
        else:
            shift, scale = torch.zeros_like(ones), ones
        self._shift, self._scale = shift, scale
        z = (x - shift) / scale
        if self.kind == "revin":
            z = z * self.weight + self.bias
        return z

    def inverse(self, z: Tensor, variance: bool = False) -> Tensor:
        """``(B, T, C)`` model output back in the input's scale (a variance when
        ``variance``: only multiplied by the squared scales)."""
        if self._shift is None or self._scale is None:
            raise RuntimeError("InstanceNorm.inverse needs a forward call first")
        scale = self._scale
        if self.kind == "revin":
            scale = scale / (self.weight + _EPS**2)
        if variance:
            return z * scale**2
        if self.kind == "revin":
            z = z - self.bias
        return z * scale + self._shift
