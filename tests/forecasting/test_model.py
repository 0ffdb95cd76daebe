"""RNNForecaster: shapes, normalization, Gaussian head, and learning a noiseless sine."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
import torch

from rnnlab.config import ModelConfig
from rnnlab.data.series import WindowDataset
from rnnlab.forecasting.model import (
    ChannelIndependent,
    RNNForecaster,
    forecast_loss,
    prediction_interval,
)
from rnnlab.models.stack import build_recurrent
from rnnlab.nn import LSTM


@pytest.mark.parametrize("decoder", ["direct", "seq2seq"])
@pytest.mark.parametrize("layer", ["rnn", "gru", LSTM])
def test_shapes(decoder: str, layer: object) -> None:
    model = RNNForecaster(
        4,
        2,
        horizon=5,
        hidden_size=8,
        layer=layer,
        decoder=decoder,
        future_size=3,  # type: ignore[arg-type]
        layer_kwargs={"num_layers": 2},
    )
    out = model(torch.randn(3, 7, 4), torch.randn(3, 5, 3))
    assert isinstance(out, torch.Tensor) and out.shape == (3, 5, 2)


def test_gaussian_returns_positive_variance_and_bidirectional_direct() -> None:
    model = RNNForecaster(
        2, 1, 4, hidden_size=8, gaussian=True, layer_kwargs={"bidirectional": True}
    )
    mean, variance = model(torch.randn(2, 6, 2))
    assert mean.shape == variance.shape == (2, 4, 1) and bool((variance > 0).all())
    lower, upper = prediction_interval(mean, variance, 0.9)
    assert bool((lower < mean).all() and (mean < upper).all())


def test_instance_norm_makes_the_forecast_shift_equivariant() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 10, 3)
    for norm in ("last", "mean", "meanstd"):
        model = RNNForecaster(3, 3, 4, hidden_size=8, instance_norm=norm)  # type: ignore[arg-type]
        shifted = model(x + 5.0)
        assert torch.allclose(shifted, model(x) + 5.0, atol=1e-4), norm


def test_target_channels_pick_denormalization_stats() -> None:
    model = RNNForecaster(3, 1, 2, hidden_size=4, instance_norm="last", target_channels=[2])
    x = torch.zeros(1, 5, 3)
    x[:, :, 2] = 100.0
    assert model(x).mean().item() == pytest.approx(100.0, abs=5.0)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="layer must be one of"):
        RNNForecaster(1, 1, 2, layer="transformer")
    with pytest.raises(ValueError, match="unidirectional"):
        RNNForecaster(1, 1, 2, decoder="seq2seq", layer_kwargs={"bidirectional": True})
    with pytest.raises(ValueError, match="batch_first"):
        RNNForecaster(1, 1, 2, layer_kwargs={"batch_first": False})
    model = RNNForecaster(2, 1, 3, future_size=1)
    with pytest.raises(ValueError, match=r"future_covariates must have shape \(1, 3, 1\)"):
        model(torch.zeros(1, 4, 2))
    with pytest.raises(ValueError, match="inputs must be"):
        model(torch.zeros(1, 4, 5), torch.zeros(1, 3, 1))


@pytest.fixture
def one_thread():  # type: ignore[no-untyped-def]
    """Small recurrent models train faster on one thread, and the machine is shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def sine_windows() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    t = np.arange(600.0)
    y = np.sin(2 * np.pi * t / 20)[:, None]
    train_x, train_y, _ = WindowDataset(y[:500], y[:500], 24, 8).tensors()
    test_x, test_y, _ = WindowDataset(y[480:], y[480:], 24, 8).tensors()
    return train_x, train_y, test_x, test_y


@pytest.mark.parametrize(
    "options",
    [{}, {"decoder": "seq2seq", "teacher_forcing": 0.5}, {"gaussian": True, "layer": "lstm"}],
    ids=["direct", "seq2seq", "gaussian"],
)
@pytest.mark.usefixtures("one_thread")
def test_learns_a_noiseless_sine(options: dict[str, object]) -> None:
    torch.manual_seed(0)
    train_x, train_y, test_x, test_y = sine_windows()
    model = RNNForecaster(1, 1, 8, hidden_size=32, **options)  # type: ignore[arg-type]
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    first_loss = None
    for _ in range(150):
        index = torch.randint(0, len(train_x), (64,))
        loss = forecast_loss(model(train_x[index], targets=train_y[index]), train_y[index])
        first_loss = loss.item() if first_loss is None else first_loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        out = model(test_x)
    mean = out[0] if isinstance(out, tuple) else out
    naive = float(((test_x[:, -1:, :] - test_y) ** 2).mean())  # about 0.75
    error = float(((mean - test_y) ** 2).mean())
    assert error < 0.05 * naive, (error, naive)
    assert loss.item() < first_loss


def test_build_layer_builds_encoder_and_decoder_from_the_model_config() -> None:
    config = ModelConfig(cell="lstm", hidden_size=6, num_layers=2, proj_size=3, zoneout=0.1)
    model = RNNForecaster(
        2, 1, 4, hidden_size=6, decoder="seq2seq", build_layer=partial(build_recurrent, config)
    )
    assert isinstance(model.encoder, LSTM) and model.encoder.num_layers == 2
    assert model.encoder.input_size == 2 and model.decoder.input_size == 1  # type: ignore[union-attr]
    assert model.encoder.zoneout == 0.1 and model.head.in_features == 3  # the projection
    assert model(torch.randn(5, 7, 2)).shape == (5, 4, 1)


def test_channel_independent_wrapper_shapes() -> None:
    model = ChannelIndependent(RNNForecaster(1, 1, 3, hidden_size=4, gaussian=True))
    mean, variance = model(torch.randn(2, 8, 5))
    assert mean.shape == variance.shape == (2, 3, 5)
