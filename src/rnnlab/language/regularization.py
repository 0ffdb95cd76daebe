"""AWD-LSTM's regularizers of a language model (Merity, Keskar and Socher 2017).

- *Locked (variational) dropout* (Gal and Ghahramani 2016): one Bernoulli mask per sequence,
  the same at every time step, scaled by ``1 / (1 - p)``::

      m ~ Bernoulli(1 - p)^(B, F),    y_t = x_t * m / (1 - p)    for every t

- *Embedding dropout*: whole rows of the embedding matrix (word types) dropped, the kept rows
  scaled by ``1 / (1 - p)``; a dropped word is zero at every position of the batch.
- *Activation regularization* (AR) and *temporal activation regularization* (TAR) on the top
  recurrent layer's outputs, ``h`` before the output dropout and ``m * h`` after it::

      AR  = alpha * mean((m * h_t) ** 2)
      TAR = beta  * mean((h_t - h_{t-1}) ** 2)       over t = 1..T-1

  (means over every element, as in the paper's code). Both are added to the training loss.

In eval mode (``training=False``) the dropouts are the identity.

Example:
    >>> x = torch.ones(5, 2, 3)
    >>> y = locked_dropout(x, 0.5, training=True)
    >>> bool((y == y[0]).all())    # the same mask at every time step
    True
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["activation_penalty", "drop_embedding_rows", "locked_dropout"]


def locked_dropout(x: Tensor, p: float, *, training: bool, time_dim: int = 0) -> Tensor:
    """Dropout with one mask per sequence, shared over ``time_dim`` (module docstring)."""
    if not training or p == 0.0:
        return x
    shape = list(x.shape)
    shape[time_dim] = 1
    mask = x.new_empty(shape).bernoulli_(1.0 - p).div_(1.0 - p)
    return x * mask


def drop_embedding_rows(weight: Tensor, p: float, *, training: bool) -> Tensor:
    """``weight`` (V, E) with whole rows zeroed with probability ``p``, the rest rescaled."""
    if not training or p == 0.0:
        return weight
    keep = weight.new_empty(weight.shape[0], 1).bernoulli_(1.0 - p).div_(1.0 - p)
    return weight * keep


def activation_penalty(
    raw: Tensor, dropped: Tensor, alpha: float, beta: float, *, time_dim: int = 0
) -> Tensor:
    """``AR + TAR`` of the top layer's outputs (module docstring); a 0-d tensor.

    Args:
        raw: the outputs before the output dropout, ``(T, B, H)`` (``time_dim`` = 0).
        dropped: the same after the output dropout.
        alpha, beta: the AR and TAR weights (0 turns a term off).
    """
    wide = torch.promote_types(raw.dtype, torch.float32)  # half precision summed in fp32
    total = raw.new_zeros((), dtype=wide)
    if alpha:
        total = total + alpha * dropped.to(wide).pow(2).mean()
    if beta and raw.shape[time_dim] > 1:
        length = raw.shape[time_dim]
        diff = raw.narrow(time_dim, 1, length - 1) - raw.narrow(time_dim, 0, length - 1)
        total = total + beta * diff.to(wide).pow(2).mean()
    return total
