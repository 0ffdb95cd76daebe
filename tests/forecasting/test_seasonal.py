"""Seasonal differencing: the integration, its gradients, teacher forcing, and the task."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tests.forecasting.test_task import make, sine_csv
from torch import Tensor, nn

from rnnlab.forecasting.model import ChannelIndependent, RNNForecaster
from rnnlab.forecasting.seasonal import SeasonalDifference


class Constant(nn.Module):
    """Forecasts the same change ``value`` at every step; records what it was given."""

    def __init__(self, horizon: int, channels: int, value: float) -> None:
        super().__init__()
        self.horizon, self.channels, self.value = horizon, channels, value
        self.seen: list[Tensor | None] = []

    def forward(self, x: Tensor, future: Tensor | None = None, targets: Tensor | None = None):
        self.seen.extend([x, targets])
        return x.new_full((x.shape[0], self.horizon, self.channels), self.value)


def test_no_change_is_the_seasonal_naive_forecast_and_changes_accumulate() -> None:
    x = torch.randn(3, 10, 2)
    period, horizon = 4, 9
    naive = SeasonalDifference(Constant(horizon, 2, 0.0), period, horizon, output_size=2)
    expected = torch.cat([x[:, -4:]] * 3, dim=1)[:, :horizon]  # last season, repeated
    assert torch.equal(naive(x), expected)
    drift = SeasonalDifference(Constant(horizon, 2, 0.5), period, horizon, output_size=2)
    seasons_ahead = torch.tensor([1, 1, 1, 1, 2, 2, 2, 2, 3], dtype=torch.float32)
    torch.testing.assert_close(drift(x), expected + 0.5 * seasons_ahead[None, :, None])


def test_the_forecaster_reads_differences_and_differenced_targets() -> None:
    x, y = torch.randn(2, 8, 1), torch.randn(2, 5, 1)
    inner = Constant(5, 1, 0.0)
    SeasonalDifference(inner, 3, 5, output_size=1)(x, None, y)
    diffs, target_diffs = inner.seen
    assert diffs is not None and target_diffs is not None
    torch.testing.assert_close(diffs, x[:, 3:] - x[:, :-3])
    history = torch.cat([x, y], dim=1)  # the truth, one season back at every step
    torch.testing.assert_close(target_diffs, history[:, 8:] - history[:, 5:10])
    # integrating the true differences gives back the true future
    exact = SeasonalDifference(_Echo(), 3, 5, output_size=1)
    torch.testing.assert_close(exact(x, None, y), y)


class _Echo(nn.Module):
    def forward(self, x: Tensor, future: Tensor | None = None, targets: Tensor | None = None):
        assert targets is not None
        return targets


def test_float64_gradcheck_around_a_gru_forecaster() -> None:
    torch.manual_seed(0)
    inner = RNNForecaster(1, 1, horizon=5, hidden_size=4, instance_norm="mean").double()
    model = SeasonalDifference(inner, period=2, horizon=5, output_size=1)
    x = torch.randn(2, 6, 1, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: model(t), (x,), eps=1e-6, atol=1e-5)


def test_bad_arguments() -> None:
    inner = Constant(3, 1, 0.0)
    with pytest.raises(ValueError, match="period must be an integer >= 1"):
        SeasonalDifference(inner, 0, 3, 1)
    with pytest.raises(ValueError, match="L > period 4"):
        SeasonalDifference(inner, 4, 3, 1)(torch.randn(2, 4, 1))


def test_through_the_task_it_trains_and_starts_from_seasonal_naive(tmp_path: Path) -> None:
    task = make(
        sine_csv(tmp_path),
        "data.seasonal_difference=true",
        "data.period=10",
        "data.instance_norm='off'",
        "data.past_covariates=[]",
    )
    data = task.build_data()
    model = task.build_model(data.spec)
    assert isinstance(model, SeasonalDifference) and model.period == 10
    assert isinstance(model.forecaster, RNNForecaster)
    with torch.no_grad():  # a model that forecasts no change is seasonal naive
        for p in model.forecaster.head.parameters():
            p.zero_()
    assert data.valid is not None
    metrics = task.evaluate(model.eval(), data.valid)
    # the sine has period 10 exactly: seasonal naive (and so this model) is exact
    assert metrics["mse"] == pytest.approx(metrics["baseline_seasonal_naive_mse"], abs=1e-10)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for batch in data.train.batches():
        loss, _, _ = task.step(model.train(), batch, None)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    independent = make(
        sine_csv(tmp_path),
        "data.seasonal_difference=true",
        "data.period=10",
        "data.targets=['y', 'x']",
        "data.past_covariates=[]",
        "data.channel_independent=true",
    )
    built = independent.build_model(independent.build_data().spec)
    assert isinstance(built, SeasonalDifference) and isinstance(
        built.forecaster, ChannelIndependent
    )
    assert built(torch.randn(4, 24, 2)).shape == (4, 6, 2)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["data.gaussian=true"], "not a Gaussian"),
        (["data.period=24"], "must exceed the period 24"),
    ],
)
def test_settings_refused(tmp_path: Path, overrides: list[str], message: str) -> None:
    with pytest.raises(Exception, match=message):
        make(sine_csv(tmp_path), "data.seasonal_difference=true", *overrides).build_data()
