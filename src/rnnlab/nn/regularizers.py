"""Masks for the regularizers that act inside the recurrence.

- **Recurrent (variational) dropout**, Gal and Ghahramani 2016: one Bernoulli mask per
  sequence, drawn once per forward call and reused at every time step, multiplies the hidden
  state that feeds ``W_hh``; kept units are scaled by ``1 / (1 - p)`` so the expectation is
  unchanged and evaluation needs no mask.
- **Zoneout**, Krueger et al. 2017: at each step each unit keeps its previous value with
  probability ``p``: ``h_t = m * h_{t-1} + (1 - m) * h~_t`` with ``m ~ Bernoulli(p)``, drawn
  anew at every step (for LSTM on ``h`` and on ``c``). At evaluation the paper replaces the
  mask with its expectation: ``h_t = p * h_{t-1} + (1 - p) * h~_t``.
- **DropConnect on the recurrent weights** (weight drop, Wan et al. 2013 as used by
  AWD-LSTM, Merity et al. 2017): a Bernoulli mask on the entries of ``W_hh``, drawn once per
  forward call, scaled by ``1 / (1 - p)``. The masked matrix is a new tensor: the stored
  parameter is never modified.

The Bernoulli draws come from ``torch.Tensor.bernoulli_`` on GPUs and, on CPU where
rnnlab's native kernels are built (:mod:`rnnlab.nn.native`), from a counter-based hash
(SplitMix64) keyed by one 63-bit seed drawn from torch's generator: reproducible under
``torch.manual_seed``, the same for any thread count, and about ten times faster than
``bernoulli_`` (which draws them one by one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from rnnlab.nn import native

_SEED_BOUND = 2**63 - 1


def bernoulli(shape: tuple[int, ...], p: float, like: Tensor, dtype: torch.dtype) -> Tensor:
    """``1`` (``True``) with probability ``p``, else ``0``, on ``like``'s device, as ``dtype``.

    Example:
        >>> import torch
        >>> _ = torch.manual_seed(0)
        >>> draws = bernoulli((1000,), 0.25, torch.zeros(1), torch.float32)
        >>> 0.2 < float(draws.mean()) < 0.3
        True
    """
    if native.usable(like):
        return native.ops().bernoulli_mask(list(shape), float(p), draw_seed(), dtype)
    draws = torch.empty(shape, dtype=like.dtype, device=like.device).bernoulli_(p)
    return draws if dtype == like.dtype else draws.to(dtype)


def draw_seed() -> int:
    """One seed for the native counter-based draws, from torch's default generator."""
    return int(torch.randint(0, _SEED_BOUND, (1,)).item())


@dataclass(frozen=True)
class SeededMask:
    """A bool Bernoulli mask known by its native counter-hash seed: rebuilt, never stored.

    ``materialize()`` returns the same tensor as :func:`bernoulli` with that seed, so a
    function can keep the seed for backward instead of the mask.
    """

    shape: tuple[int, ...]
    p: float  # probability of True
    seed: int

    def materialize(self) -> Tensor:
        return native.ops().bernoulli_mask(list(self.shape), self.p, self.seed, torch.bool)

    def apply(self, tensor: Tensor, scale: float) -> Tensor:
        """``tensor`` where the mask is ``True``, else 0, times ``scale``: one pass, the
        mask's entries recomputed from the seed on the fly (never materialized)."""
        return native.ops().drop_connect(tensor.contiguous(), self.p, self.seed, scale)


class _SeededDropConnect(torch.autograd.Function):
    """DropConnect under autograd keeping only the mask's seed (the same map both ways)."""

    @staticmethod
    def forward(ctx: Any, weight: Tensor, mask: SeededMask, scale: float) -> Tensor:
        ctx.mask, ctx.scale = mask, scale
        return mask.apply(weight, scale)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:
        return ctx.mask.apply(grad, ctx.scale), None, None


def drop_connect_keep(weight: Tensor, p: float) -> Tensor | SeededMask:
    """DropConnect's keep mask for ``weight``: a :class:`SeededMask` where the native draws
    run (the same draw :func:`drop_connect_mask` makes), else the bool tensor."""
    if native.usable(weight):
        return SeededMask(tuple(weight.shape), 1.0 - p, draw_seed())
    return drop_connect_mask(weight, p)


def keep_mask(shape: tuple[int, ...], p: float, like: Tensor) -> Tensor:
    """An inverted-dropout mask: entries are ``0`` with probability ``p``, else ``1/(1-p)``."""
    return bernoulli(shape, 1.0 - p, like, like.dtype).div_(1.0 - p)


def drop_connect(weight: Tensor, p: float) -> Tensor:
    """``weight * mask / (1 - p)`` with a fresh Bernoulli mask; ``weight`` is left unchanged.

    Where the native draws run, the mask is a :class:`SeededMask` (the same draw) applied in
    one pass, forward and backward, and autograd keeps only its seed; elsewhere it is drawn
    as bool and applied with ``where``, so autograd keeps one byte per weight.
    """
    keep = drop_connect_keep(weight, p)
    if isinstance(keep, SeededMask):
        return cast(Tensor, _SeededDropConnect.apply(weight, keep, 1.0 / (1.0 - p)))
    return apply_drop_connect(weight, keep, 1.0 / (1.0 - p))


def drop_connect_mask(weight: Tensor, p: float) -> Tensor:
    """DropConnect's bool mask for ``weight``: ``True`` (keep) with probability ``1 - p``."""
    return bernoulli(tuple(weight.shape), 1.0 - p, weight, torch.bool)


def apply_drop_connect(tensor: Tensor, keep: Tensor | SeededMask, scale: float) -> Tensor:
    """``tensor`` where ``keep``, else 0, times ``scale`` (``1 / (1 - p)``): DropConnect on a
    weight, and the same map on its gradient."""
    if isinstance(keep, SeededMask):
        return keep.apply(tensor, scale)
    return torch.where(keep, tensor, 0.0).mul_(scale)


def zoneout_mask(shape: tuple[int, ...], p: float, like: Tensor) -> Tensor:
    """A boolean mask, ``True`` (keep the previous value) with probability ``p``."""
    return bernoulli(shape, p, like, torch.bool)


def zoneout(previous: Tensor, candidate: Tensor, p: float, training: bool) -> Tensor:
    """Mix the previous and candidate state as zoneout defines, in train or eval mode."""
    if p == 0.0:
        return candidate
    if training:
        return torch.where(zoneout_mask(tuple(candidate.shape), p, candidate), previous, candidate)
    return p * previous + (1.0 - p) * candidate
