"""Baselines against their definitions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnnlab.data.series import WindowDataset
from rnnlab.forecasting import (
    LinearForecaster,
    NaiveForecaster,
    SeasonalNaiveForecaster,
    seasonal_period,
)
from rnnlab.forecasting.baselines import moving_average_matrix


def windows_of(values: np.ndarray, length: int, horizon: int) -> WindowDataset:
    return WindowDataset(values, values, length, horizon)


def test_naive_repeats_last_value_of_target_channels() -> None:
    x = torch.arange(12.0).view(1, 4, 3)  # channels 0..2, last row [9, 10, 11]
    out = NaiveForecaster(horizon=2, output_size=2)(x)
    assert out.tolist() == [[[9.0, 10.0], [9.0, 10.0]]]


def test_seasonal_naive_definition() -> None:
    x = torch.arange(6.0).view(1, 6, 1)  # 0..5, period 3: last season is 3, 4, 5
    out = SeasonalNaiveForecaster(horizon=7, period=3)(x)
    assert out.flatten().tolist() == [3, 4, 5, 3, 4, 5, 3]
    with pytest.raises(ValueError, match="shorter than period=8"):
        SeasonalNaiveForecaster(horizon=2, period=8)(x)


def test_seasonal_period_from_frequency() -> None:
    assert [seasonal_period(f) for f in ("h", "15min", "D", "MS", "QS-JAN", None)] == [
        24,
        96,
        7,
        12,
        4,
        1,
    ]


def test_moving_average_pads_by_repetition() -> None:
    a = moving_average_matrix(4, 3)
    x = torch.tensor([1.0, 2.0, 3.0, 10.0], dtype=torch.float64)
    # t=0: (1 + 1 + 2) / 3; t=3: (3 + 10 + 10) / 3
    assert (a @ x).tolist() == pytest.approx([4 / 3, 2.0, 5.0, 23 / 3])
    with pytest.raises(ValueError, match="odd"):
        moving_average_matrix(4, 2)


@pytest.mark.parametrize("decomposition", [False, True])
@pytest.mark.parametrize("individual", [False, True])
def test_linear_recovers_an_exact_linear_rule(decomposition: bool, individual: bool) -> None:
    # y[t] = 0.5 y[t-1] + 0.3 y[t-2] + 1 + noise-free; the 1-step map is exactly linear.
    rng = np.random.default_rng(0)
    series = np.zeros((300, 2))
    series[:2] = rng.normal(size=(2, 2))
    for t in range(2, 300):
        series[t] = 0.5 * series[t - 1] + 0.3 * series[t - 2] + 1.0 + rng.normal(size=2)
    model = LinearForecaster(
        5, 1, decomposition=decomposition, kernel_size=3, individual=individual
    )
    model.fit(windows_of(series, 5, 1))
    x = torch.tensor(series[-5:], dtype=torch.float32).unsqueeze(0)  # (1, 5, 2)
    expected = 0.5 * series[-1] + 0.3 * series[-2] + 1.0
    assert model(x)[0, 0].numpy() == pytest.approx(expected, abs=0.35)  # noise sd 1, n=300


def test_linear_matches_numpy_least_squares() -> None:
    rng = np.random.default_rng(1)
    series = np.cumsum(rng.normal(size=(80, 1)), axis=0)
    ds = windows_of(series, 4, 2)
    model = LinearForecaster(4, 2, decomposition=False).fit(ds)
    x, y, _ = ds.tensors()
    design = np.concatenate([x[:, :, 0].double().numpy(), np.ones((len(x), 1))], axis=1)
    coef, *_ = np.linalg.lstsq(design, y[:, :, 0].double().numpy(), rcond=None)
    assert model.weight.numpy() == pytest.approx(coef[:-1], abs=1e-4)
    assert model.bias.numpy() == pytest.approx(coef[-1], abs=1e-4)


def test_decomposition_without_ridge_gives_plain_least_squares() -> None:
    rng = np.random.default_rng(2)
    series = np.cumsum(rng.normal(size=(200, 3)), axis=0)
    ds = windows_of(series, 12, 4)
    x, _, _ = ds.tensors()
    plain = LinearForecaster(12, 4, decomposition=False).fit(ds)(x)
    dlinear = LinearForecaster(12, 4, decomposition=True, kernel_size=5).fit(ds)(x)
    assert torch.allclose(plain, dlinear, atol=1e-3)


def test_linear_unfitted_and_shape_errors() -> None:
    with pytest.raises(RuntimeError, match="not fitted"):
        LinearForecaster(4, 2)(torch.zeros(1, 4, 1))
    ds = windows_of(np.zeros((20, 1)), 3, 2)
    with pytest.raises(ValueError, match="cannot fit windows"):
        LinearForecaster(4, 2).fit(ds)
