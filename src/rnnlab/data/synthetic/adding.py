"""The adding problem (Hochreiter and Schmidhuber 1997; Le et al. 2015).

Each input is ``T`` steps of two features, a value ``u_t ~ U(0, 1)`` and a marker that is 1 at
exactly two steps (one in the first half, one in the second) and 0 elsewhere. The target is the
sum of the two marked values, so it follows a triangular distribution on ``[0, 2]`` with mean 1
and variance 1/6: a model that always predicts the mean scores MSE ``1/6 ~ 0.167``
(:data:`ADDING_MEAN_PREDICTOR_MSE`).
"""

from __future__ import annotations

import torch
from torch import Tensor

ADDING_MEAN_PREDICTOR_MSE = 1.0 / 6.0


def adding_problem(num_samples: int, length: int, seed: int) -> tuple[Tensor, Tensor]:
    """Generate the adding problem.

    Args:
        num_samples: number of sequences ``N``.
        length: sequence length ``T`` (at least 2).
        seed: the generator seed; the same seed gives the same data.

    Returns:
        ``inputs`` of shape ``(N, T, 2)`` and ``targets`` of shape ``(N, 1)``.

    Example:
        >>> x, y = adding_problem(4, 50, seed=0)
        >>> x.shape, y.shape
        (torch.Size([4, 50, 2]), torch.Size([4, 1]))
    """
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    if length < 2:
        raise ValueError(f"length must be >= 2 for two markers, got {length}")
    gen = torch.Generator().manual_seed(seed)
    values = torch.rand(num_samples, length, generator=gen)  # (N, T)
    half = length // 2
    first = torch.randint(0, half, (num_samples,), generator=gen)  # (N,)
    second = torch.randint(half, length, (num_samples,), generator=gen)  # (N,)
    markers = torch.zeros(num_samples, length)
    rows = torch.arange(num_samples)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    inputs = torch.stack([values, markers], dim=-1)  # (N, T, 2)
    targets = (values[rows, first] + values[rows, second]).unsqueeze(1)  # (N, 1)
    return inputs, targets
