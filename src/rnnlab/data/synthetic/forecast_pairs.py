"""Forecasting pairs cut from a series: :func:`prediction_windows` (past window, next values)."""

from __future__ import annotations

from torch import Tensor


def prediction_windows(
    series: Tensor, window: int, horizon: int = 1, stride: int = 1
) -> tuple[Tensor, Tensor]:
    """Cut a series into (past window, next ``horizon`` values) forecasting pairs.

    Pair ``k`` reads ``series[k*stride : k*stride + window]`` and predicts the ``horizon``
    values that follow; ``horizon=1`` is one-step prediction. A mean predictor scores
    normalized RMSE 1; repeating the last input value is the persistence baseline.

    Args:
        series: ``(T,)`` or ``(T, F)``.
        window: steps the model reads.
        horizon: steps it predicts.
        stride: shift between consecutive pairs.

    Returns:
        ``inputs`` of shape ``(N, window, F)`` (``F = 1`` for a 1-D series) and ``targets`` of
        shape ``(N, horizon)`` for a 1-D series, ``(N, horizon, F)`` otherwise, with
        ``N = (T - window - horizon) // stride + 1``.

    Example:
        >>> import torch
        >>> x, y = prediction_windows(torch.arange(10.0), window=4, horizon=2, stride=2)
        >>> x.shape, y.shape, y[0].tolist()
        (torch.Size([3, 4, 1]), torch.Size([3, 2]), [4.0, 5.0])
    """
    if series.dim() not in (1, 2):
        raise ValueError(f"series must be (T,) or (T, F), got shape {tuple(series.shape)}")
    for name, value in (("window", window), ("horizon", horizon), ("stride", stride)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    steps = series.shape[0]
    if steps < window + horizon:
        raise ValueError(
            f"series of {steps} steps is shorter than window + horizon = {window + horizon}"
        )
    data = series.unsqueeze(-1) if series.dim() == 1 else series  # (T, F)
    pairs = data.unfold(0, window + horizon, stride)  # (N, F, window + horizon)
    pairs = pairs.permute(0, 2, 1)  # (N, window + horizon, F)
    inputs = pairs[:, :window].contiguous()  # (N, window, F)
    targets = pairs[:, window:].contiguous()  # (N, horizon, F)
    if series.dim() == 1:
        targets = targets.squeeze(-1)  # (N, horizon)
    return inputs, targets
