"""Hidden-state statistics over time: mean and standard deviation of ``h_t`` at each step.

At each step ``t`` and for each layer/direction row, the mean and standard deviation of the
entries of ``h_t`` over the batch and the units (valid steps only). A tanh RNN whose state
drifts to ``+-1`` shows a growing standard deviation near 1 (saturation); a state that decays
to a constant shows a shrinking one (the input is forgotten).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from rnnlab.analysis.trace import State, Trace, trace


@dataclass(frozen=True)
class HiddenStats:
    """Mean and standard deviation of ``h_t`` per row and step.

    Attributes:
        rows: layer/direction names.
        mean: ``(R, T)`` float64, mean over batch and units of ``h_t``.
        std: ``(R, T)`` float64, standard deviation over batch and units (0 where a step has
            fewer than two valid entries).
        overall_mean: per row, the mean over all valid steps.
        overall_std: per row, the standard deviation over all valid steps.
    """

    rows: tuple[str, ...]
    mean: Tensor
    std: Tensor
    overall_mean: tuple[float, ...]
    overall_std: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {
            "rows": list(self.rows),
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
            "overall_mean": list(self.overall_mean),
            "overall_std": list(self.overall_std),
        }


def _masked_moments(values: Tensor, mask: Tensor) -> tuple[float, float]:
    selected = values[mask].reshape(-1).double()
    if selected.numel() == 0:
        return float("nan"), float("nan")
    std = selected.std().item() if selected.numel() > 1 else 0.0
    return selected.mean().item(), std


def hidden_statistics_of_trace(traced: Trace) -> HiddenStats:
    """Hidden-state statistics from a :class:`Trace`."""
    steps = traced.steps
    mean = torch.zeros(len(traced.rows), steps, dtype=torch.float64)
    std = torch.zeros_like(mean)
    overall_mean, overall_std = [], []
    for r, row in enumerate(traced.rows):
        states = torch.stack(traced.hidden[row]).detach()  # (T, B, H)
        valid = (
            traced.valid
            if traced.valid is not None
            else torch.ones(states.shape[:2], dtype=torch.bool, device=states.device)
        )  # (T, B)
        for t in range(steps):
            mean[r, t], std[r, t] = _masked_moments(states[t], valid[t])
        m, s = _masked_moments(states, valid)
        overall_mean.append(m)
        overall_std.append(s)
    return HiddenStats(traced.rows, mean, std, tuple(overall_mean), tuple(overall_std))


def hidden_statistics(
    layer: nn.Module,
    inputs: Tensor,
    *,
    hx: State | None = None,
    lengths: Tensor | list[int] | None = None,
) -> HiddenStats:
    """Mean and standard deviation of the hidden state at each step, per layer.

    Args:
        layer: an ``rnnlab.nn`` or ``torch.nn`` RNN, LSTM or GRU (evaluation-mode semantics).
        inputs: a padded batch in the layer's layout.
        hx: initial state; zeros when omitted.
        lengths: per-sequence lengths; steps past them are left out.

    Example:
        >>> import torch, rnnlab
        >>> stats = hidden_statistics(rnnlab.RNN(2, 8), torch.randn(10, 4, 2))
        >>> tuple(stats.mean.shape), stats.rows
        ((1, 10), ('l0',))
    """
    with torch.no_grad():
        traced = trace(layer, inputs, hx, lengths)
    return hidden_statistics_of_trace(traced)
