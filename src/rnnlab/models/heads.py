"""Heads: what turns the recurrent outputs into predictions.

Each head is called as ``head(outputs, final, lengths)``:

- ``outputs``: ``(B, T, D*H)``, the top layer's output at every step (zero past a length);
- ``final``: ``(B, D*H)``, the top layer's final state of each direction, taken at each
  sequence's own last step (forward) and first step (reverse);
- ``lengths``: ``(B,)`` valid lengths, or ``None`` when every sequence is full.

Sequence-level heads pool first (:func:`pool`); language-model and CTC heads (other modules)
keep the time axis.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

Pooling = Literal["last", "mean", "max"]


def pool(outputs: Tensor, final: Tensor, lengths: Tensor | None, how: Pooling) -> Tensor:
    """Summarize a sequence: ``last`` returns ``final``; ``mean``/``max`` reduce over the
    valid steps of ``outputs``. Returns ``(B, D*H)``."""
    if how == "last":
        return final
    if lengths is None:
        return outputs.mean(dim=1) if how == "mean" else outputs.amax(dim=1)
    steps = torch.arange(outputs.shape[1], device=outputs.device)  # (T,)
    valid = (steps.unsqueeze(0) < lengths.to(outputs.device).unsqueeze(1)).unsqueeze(
        -1
    )  # (B, T, 1)
    if how == "mean":
        total = (outputs * valid).sum(dim=1)  # (B, D*H)
        return total / lengths.to(outputs.device, outputs.dtype).unsqueeze(1)
    return outputs.masked_fill(~valid, float("-inf")).amax(dim=1)  # (B, D*H)


class RegressionHead(nn.Module):
    """Pooled sequence -> ``out_features`` real values (one target, or a forecast horizon).

    Args:
        in_features: the recurrent output size ``D*H``.
        out_features: number of predicted values.
        pooling: see :func:`pool`.
    """

    def __init__(self, in_features: int, out_features: int, pooling: Pooling = "last") -> None:
        super().__init__()
        self.pooling: Pooling = pooling
        self.proj = nn.Linear(in_features, out_features)

    def forward(self, outputs: Tensor, final: Tensor, lengths: Tensor | None) -> Tensor:
        return self.proj(pool(outputs, final, lengths, self.pooling))  # (B, out_features)


class ClassificationHead(nn.Module):
    """Pooled sequence -> ``num_classes`` logits (unnormalized).

    Args:
        in_features: the recurrent output size ``D*H``.
        num_classes: number of classes.
        pooling: see :func:`pool`.
    """

    def __init__(self, in_features: int, num_classes: int, pooling: Pooling = "last") -> None:
        super().__init__()
        self.pooling: Pooling = pooling
        self.proj = nn.Linear(in_features, num_classes)

    def forward(self, outputs: Tensor, final: Tensor, lengths: Tensor | None) -> Tensor:
        return self.proj(pool(outputs, final, lengths, self.pooling))  # (B, num_classes)
