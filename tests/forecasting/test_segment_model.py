"""The segment-wise recurrent forecaster (SegRNN's idea), RevIN, the point losses, and the
segments decoder through the forecasting task."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest
import torch
from tests.forecasting.test_task import make, sine_csv

from rnnlab.config import ModelConfig
from rnnlab.forecasting.model import RNNForecaster, forecast_loss
from rnnlab.forecasting.normalization import InstanceNorm
from rnnlab.forecasting.segment_model import SegmentForecaster
from rnnlab.models.stack import build_recurrent


def segments(channels: int = 3, horizon: int = 10, **kwargs: object) -> SegmentForecaster:
    torch.manual_seed(0)
    options = {"segment_length": 4, "hidden_size": 8, **kwargs}
    return SegmentForecaster(channels, horizon, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize(("length", "horizon"), [(12, 8), (13, 10), (4, 1)])
def test_shapes_and_segment_counts(length: int, horizon: int) -> None:
    model = segments(horizon=horizon).eval()
    assert model(torch.randn(2, length, 3)).shape == (2, horizon, 3)
    assert model.input_segments(length) == -(-length // 4)
    assert model.output_segments == -(-horizon // 4)
    mean, var = segments(horizon=horizon, gaussian=True)(torch.randn(2, length, 3))
    assert mean.shape == var.shape == (2, horizon, 3) and bool((var > 0).all())


def test_recurrence_runs_one_step_per_segment() -> None:
    config = ModelConfig(cell="gru", hidden_size=8, num_layers=2)
    model = segments(build_layer=partial(build_recurrent, config)).eval()
    seen: list[int] = []
    model.recurrent.register_forward_hook(lambda m, args, out: seen.append(args[0].shape[1]))
    model(torch.randn(2, 12, 3))
    assert seen == [3, 1]  # 12 / 4 encoder steps, then one parallel decoding step
    single = segments().eval()  # one layer: the decoding step is factorized, not a layer call
    seen.clear()
    single.recurrent.register_forward_hook(lambda m, args, out: seen.append(args[0].shape[1]))
    single(torch.randn(2, 12, 3))
    assert seen == [3]


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("channel_embedding", [False, True])
def test_factorized_decoding_equals_the_materialized_copies(
    cell: str, channel_embedding: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rnnlab.forecasting.segment_model as segment_model

    config = ModelConfig(cell=cell, hidden_size=8, layer_norm=cell == "lstm")
    model = segments(
        build_layer=partial(build_recurrent, config), channel_embedding=channel_embedding
    )
    x = torch.randn(5, 12, 3)
    fast = model(x)
    assert isinstance(fast, torch.Tensor)
    fast.square().mean().backward()
    fast_grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]
    model.zero_grad()
    monkeypatch.setattr(segment_model, "supports_broadcast_step", lambda layer: False)
    slow = model(x)
    assert isinstance(slow, torch.Tensor)
    torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-6)
    slow.square().mean().backward()
    slow_grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert len(fast_grads) == len(slow_grads) == len(list(model.parameters()))
    for a, b in zip(fast_grads, slow_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_channel_independence_without_channel_embedding() -> None:
    model = segments(channel_embedding=False).eval()
    x = torch.randn(4, 12, 3)
    perm = torch.tensor([2, 0, 1])
    assert torch.allclose(model(x[..., perm]), model(x)[..., perm], atol=1e-6)
    changed = x.clone()
    changed[..., 1] += 1.0 + torch.randn_like(changed[..., 1])
    out, out2 = model(x), model(changed)
    assert torch.equal(out[..., 0], out2[..., 0]) and not torch.equal(out[..., 1], out2[..., 1])
    embedded = segments(channel_embedding=True).eval()
    assert not torch.allclose(embedded(x[..., perm]), embedded(x)[..., perm], atol=1e-4)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("layer_norm", [False, True])
def test_every_cell_through_build_recurrent(cell: str, layer_norm: bool) -> None:
    config = ModelConfig(cell=cell, hidden_size=6, num_layers=2, layer_norm=layer_norm)
    model = SegmentForecaster(
        2, 5, segment_length=3, build_layer=partial(build_recurrent, config), dropout=0.2
    )
    assert model.embed_size == 6
    out = model(torch.randn(3, 9, 2))
    assert isinstance(out, torch.Tensor) and out.shape == (3, 5, 2)
    out.square().mean().backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("kind", ["last", "mean", "meanstd", "revin"])
def test_normalization_round_trip_and_output_scale(kind: str) -> None:
    norm = InstanceNorm(kind, channels=2)  # type: ignore[arg-type]
    if kind == "revin":
        with torch.no_grad():
            norm.weight.copy_(torch.tensor([0.5, 2.0]))
            norm.bias.copy_(torch.tensor([0.3, -1.0]))
    x = 100.0 + 5.0 * torch.randn(3, 8, 2)
    assert torch.allclose(norm.inverse(norm(x)), x, atol=1e-4)
    # the model's output is in the input's scale: shifting the window shifts the forecast
    model = segments(channels=2, horizon=6, instance_norm=kind).eval()
    shifted = model(x + 1000.0) - model(x)
    assert torch.allclose(shifted, torch.full_like(shifted, 1000.0), atol=1e-2)
    if kind in ("meanstd", "revin"):  # and scaling it scales the forecast around the shift
        y = model(x)
        assert torch.allclose(model(3.0 * x - 7.0), 3.0 * y - 7.0, atol=1e-2)
    if kind == "revin":
        names = set(model.state_dict())
        assert {"norm.weight", "norm.bias"} <= names


def test_revin_in_rnn_forecaster_keeps_old_state_dicts() -> None:
    plain = RNNForecaster(2, 2, 4, hidden_size=5, instance_norm="mean")
    assert not any("revin" in k for k in plain.state_dict())
    revin = RNNForecaster(2, 2, 4, hidden_size=5, instance_norm="revin")
    assert {"revin_weight", "revin_bias"} <= set(revin.state_dict())
    x = 50.0 + torch.randn(3, 10, 2)
    shifted = revin(x + 10.0) - revin(x)
    assert torch.allclose(shifted, torch.full_like(shifted, 10.0), atol=1e-3)


def test_losses() -> None:
    error = torch.tensor([[0.5, -3.0]])
    zeros = torch.zeros(1, 2)
    assert float(forecast_loss(error, zeros, "mse")) == pytest.approx((0.25 + 9.0) / 2)
    assert float(forecast_loss(error, zeros, "mae")) == pytest.approx(1.75)
    assert float(forecast_loss(error, zeros, "huber")) == pytest.approx((0.125 + 2.5) / 2)
    with pytest.raises(ValueError, match="loss must be"):
        forecast_loss(error, zeros, "l7")  # type: ignore[arg-type]


def test_float64_gradcheck() -> None:
    config = ModelConfig(cell="gru", hidden_size=4)
    model = SegmentForecaster(
        2, 3, segment_length=2, build_layer=partial(build_recurrent, config), instance_norm="revin"
    ).double()
    x = torch.randn(2, 5, 2, dtype=torch.float64, requires_grad=True)

    def f(inputs: torch.Tensor) -> torch.Tensor:
        out = model(inputs)
        assert isinstance(out, torch.Tensor)
        return out

    assert torch.autograd.gradcheck(f, (x,), eps=1e-6, atol=1e-5)


def test_segments_decoder_trains_through_the_task(tmp_path: Path) -> None:
    task = make(
        sine_csv(tmp_path),
        "data.targets=['y', 'x']",
        "data.past_covariates=[]",
        "data.decoder='segments'",
        "data.segment_length=6",
        "data.instance_norm='revin'",
        "data.loss='huber'",
        "data.head_dropout=0.1",
    )
    data = task.build_data()
    model = task.build_model(data.spec)
    assert isinstance(model, SegmentForecaster) and model.output_segments == 1
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    losses = []
    for _ in range(3):
        for batch in data.train.batches():
            loss, _, _ = task.step(model.train(), batch, None)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
    assert losses[-1] < losses[0]
    assert data.valid is not None
    metrics = task.evaluate(model.eval(), data.valid)
    assert metrics["mse"] > 0 and "baseline_linear_mse" in metrics


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["data.decoder='segments'"], "past_covariates"),
        (["data.loss='mae'", "data.gaussian=true"], "NLL"),
    ],
)
def test_segment_settings_refused(tmp_path: Path, overrides: list[str], message: str) -> None:
    with pytest.raises(Exception, match=message):
        make(sine_csv(tmp_path), *overrides)
