"""RNN forecaster: a recurrent encoder and a multi-horizon head, direct or sequence-to-sequence.

``forward(inputs (B, L, C_in), future_covariates (B, H, C_f) = None) -> (B, H, C_out)``, or
``(mean, variance)`` each ``(B, H, C_out)`` with the Gaussian head. The targets are input
channels ``target_channels`` (by default ``0 .. C_out - 1``, the order of
:func:`rnnlab.data.series.prepare_forecast_data`).

Two decoders::

    direct (default):   x_1..x_L --RNN--> h_L --+--> Linear --> y_1..y_H   (one shot)
                                  f_1..f_H -----+   (future covariates, flattened)

    seq2seq:            x_1..x_L --RNN encoder--> state
                        state, [y_0, f_1] --RNN decoder--> y_1, [y_1, f_2] --> y_2 ... y_H
                        (y_0 = last observed target; with teacher forcing, during
                        training, the true y_{h-1} replaces the forecast with probability p)

Instance normalization (``instance_norm``), per window and per input channel, undone at the
output with the statistics of the target channels. Without the learned affine map of RevIN
(Kim et al. 2022):

- ``"last"``: ``x - x_L`` (NLinear's subtraction of the last value);
- ``"mean"``: ``x - mean(x)``;
- ``"meanstd"``: ``(x - mean(x)) / sqrt(var(x) + 1e-5)``; variances are multiplied back by
  the squared scale;
- ``"revin"``: ``meanstd`` then RevIN's learned per-input-channel affine map
  ``gamma * x' + beta`` (parameters ``revin_weight``, ``revin_bias``, present only then),
  inverted at the output with the target channels' ``gamma`` and ``beta``.

The Gaussian head (``gaussian=True``) predicts a mean and a log-variance per step and
channel, trained by the Gaussian negative log-likelihood (:func:`forecast_loss`); the
log-variance is clamped to ``[-15, 15]`` for stability. :func:`prediction_interval` turns
``(mean, variance)`` into a central interval.

:class:`ChannelIndependent` wraps a univariate forecaster so that it reads each channel of a
multivariate window on its own (``data.channel_independent``).

The forecasting task builds the recurrent stacks through the one ``[model]`` translator,
:func:`rnnlab.models.stack.build_recurrent` (passed as ``build_layer``).

Example:
    >>> model = RNNForecaster(input_size=7, output_size=7, horizon=24, hidden_size=32)
    >>> model(torch.randn(4, 96, 7)).shape
    torch.Size([4, 24, 7])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from statistics import NormalDist
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import rnnlab.nn

Decoder = Literal["direct", "seq2seq"]
PointLoss = Literal["mse", "mae", "huber"]
InstanceNorm = Literal["last", "mean", "meanstd", "revin"]
#: Builds a batch-first recurrent stack for a given number of input features.
LayerFactory = Callable[[int], nn.Module]
LOG_VARIANCE_RANGE = (-15.0, 15.0)
_NORM_EPS = 1e-5


def _layer_class(layer: type[nn.Module] | str) -> type[nn.Module]:
    if isinstance(layer, str):
        table: dict[str, type[nn.Module]] = {
            "rnn": rnnlab.nn.RNN,
            "lstm": rnnlab.nn.LSTM,
            "gru": rnnlab.nn.GRU,
        }
        if layer.lower() not in table:
            raise ValueError(
                f"layer must be one of {sorted(table)} or a layer class, got {layer!r}"
            )
        return table[layer.lower()]
    if not (isinstance(layer, type) and issubclass(layer, nn.Module)):
        raise ValueError(f"layer must be a recurrent layer class or name, got {layer!r}")
    return layer


def _layer_factory(
    layer: type[nn.Module] | str, hidden_size: int, layer_kwargs: dict[str, Any] | None
) -> LayerFactory:
    """``input_size -> layer(input_size, hidden_size, batch_first=True, **layer_kwargs)``."""
    kwargs = dict(layer_kwargs or {})
    if "batch_first" in kwargs:
        raise ValueError("layer_kwargs must not set batch_first: the forecaster is batch first")
    cls = _layer_class(layer)

    def make(input_size: int) -> nn.Module:
        return cls(input_size, hidden_size, batch_first=True, **kwargs)

    return make


def _hidden(state: Tensor | tuple[Tensor, Tensor]) -> Tensor:
    """``h_n`` of a state (``(h_n, c_n)`` for LSTM)."""
    return state[0] if isinstance(state, tuple) else state


class RNNForecaster(nn.Module):
    """Recurrent encoder with a direct multi-horizon head or an autoregressive decoder.

    Args:
        input_size: input channels ``C_in``.
        output_size: forecast channels ``C_out``.
        horizon: steps ``H`` to forecast.
        hidden_size: recurrent hidden size (with ``build_layer``, the stack it builds
            decides).
        layer: any layer class with the ``torch.nn.RNN/LSTM/GRU`` constructor and call
            (``rnnlab.nn.GRU``...), or its name ``"rnn"``, ``"lstm"``, ``"gru"``.
        layer_kwargs: further constructor options (``num_layers``, ``dropout``,
            ``layer_norm``, ``recurrent_dropout``...); ``batch_first`` is always ``True``.
            The seq2seq decoder is built with the same options.
        decoder: ``"direct"`` or ``"seq2seq"``.
        future_size: known-future covariate channels ``C_f`` fed for the horizon (0: none;
            then any ``future_covariates`` passed are ignored).
        instance_norm: ``None``, ``"last"``, ``"mean"`` or ``"meanstd"``.
        gaussian: predict a variance too and return ``(mean, variance)``.
        teacher_forcing: seq2seq only: probability, per decoder step and batch, of feeding
            the true previous value during training (needs ``targets`` in ``forward``).
        target_channels: input channels holding the targets (default ``0 .. C_out - 1``).
        build_layer: instead of ``layer`` and ``layer_kwargs``, a function from an input
            size to a batch-first recurrent stack (the task passes
            ``functools.partial(build_recurrent, model_config)``); it builds the encoder
            and the seq2seq decoder, whose hidden size it decides.
    """

    def __init__(
        self,
        input_size: int,
        output_size: int,
        horizon: int,
        hidden_size: int = 64,
        layer: type[nn.Module] | str = "gru",
        layer_kwargs: dict[str, Any] | None = None,
        decoder: Decoder = "direct",
        future_size: int = 0,
        instance_norm: InstanceNorm | None = None,
        gaussian: bool = False,
        teacher_forcing: float = 0.0,
        target_channels: Sequence[int] | None = None,
        build_layer: LayerFactory | None = None,
    ) -> None:
        super().__init__()
        for name, value, low in (
            ("input_size", input_size, 1),
            ("output_size", output_size, 1),
            ("horizon", horizon, 1),
            ("hidden_size", hidden_size, 1),
            ("future_size", future_size, 0),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        if decoder not in ("direct", "seq2seq"):
            raise ValueError(f"decoder must be 'direct' or 'seq2seq', got {decoder!r}")
        if instance_norm not in (None, "last", "mean", "meanstd", "revin"):
            raise ValueError(
                "instance_norm must be None, 'last', 'mean', 'meanstd' or 'revin', "
                f"got {instance_norm!r}"
            )
        if not 0.0 <= teacher_forcing <= 1.0:
            raise ValueError(f"teacher_forcing must be in [0, 1], got {teacher_forcing!r}")
        channels = list(range(output_size)) if target_channels is None else list(target_channels)
        if len(channels) != output_size or not all(0 <= c < input_size for c in channels):
            raise ValueError(
                f"target_channels must be {output_size} input channel indices in "
                f"[0, {input_size}), got {channels}"
            )
        make = build_layer or _layer_factory(layer, hidden_size, layer_kwargs)
        self.input_size = input_size
        self.output_size = output_size
        self.horizon = horizon
        self.future_size = future_size
        self.decoder_kind: Decoder = decoder
        self.instance_norm: InstanceNorm | None = instance_norm
        self.gaussian = gaussian
        self.teacher_forcing = float(teacher_forcing)
        self.register_buffer("target_index", torch.tensor(channels, dtype=torch.long))
        self.target_index: Tensor
        if instance_norm == "revin":  # only then: older runs' state dicts stay as they were
            self.revin_weight = nn.Parameter(torch.ones(input_size))
            self.revin_bias = nn.Parameter(torch.zeros(input_size))
        outputs_per_step = output_size * (2 if gaussian else 1)
        self.encoder = make(input_size)
        directions = 2 if getattr(self.encoder, "bidirectional", False) else 1
        hidden = int(getattr(self.encoder, "hidden_size", hidden_size))
        state_size = getattr(self.encoder, "proj_size", 0) or hidden
        self.encoder_directions = directions
        if decoder == "direct":
            self.decoder: nn.Module | None = None
            head_in = directions * state_size + horizon * future_size
            self.head = nn.Linear(head_in, horizon * outputs_per_step)
        else:
            if directions != 1:
                raise ValueError("decoder='seq2seq' needs a unidirectional encoder")
            self.decoder = make(output_size + future_size)
            self.head = nn.Linear(state_size, outputs_per_step)

    # ------------------------------------------------------------------ normalization
    def _stats(self, inputs: Tensor) -> tuple[Tensor, Tensor]:
        """Per-window shift and scale ``(B, 1, C_in)``."""
        ones = torch.ones_like(inputs[:, :1, :])
        if self.instance_norm == "last":
            return inputs[:, -1:, :], ones
        if self.instance_norm == "mean":
            return inputs.mean(dim=1, keepdim=True), ones
        if self.instance_norm in ("meanstd", "revin"):
            mean = inputs.mean(dim=1, keepdim=True)
            scale = torch.sqrt(inputs.var(dim=1, keepdim=True, unbiased=False) + _NORM_EPS)
            return mean, scale
        return torch.zeros_like(ones), ones

    def forward(
        self,
        inputs: Tensor,
        future_covariates: Tensor | None = None,
        targets: Tensor | None = None,
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Forecast ``H`` steps.

        Args:
            inputs: ``(B, L, C_in)``.
            future_covariates: ``(B, H, C_f)``, needed when ``future_size > 0``.
            targets: ``(B, H, C_out)`` truths, used only for teacher forcing in training.

        Returns:
            ``(B, H, C_out)`` forecasts, or ``(mean, variance)`` with the Gaussian head.
        """
        if inputs.dim() != 3 or inputs.shape[-1] != self.input_size:
            raise ValueError(
                f"RNNForecaster: inputs must be (B, L, {self.input_size}), "
                f"got {tuple(inputs.shape)}"
            )
        batch = inputs.shape[0]
        future = self._future(future_covariates, batch, inputs)  # (B, H, C_f)
        shift, scale = self._stats(inputs)  # (B, 1, C_in) each
        x = (inputs - shift) / scale  # (B, L, C_in)
        t_shift = shift[..., self.target_index]  # (B, 1, C_out)
        t_scale = scale[..., self.target_index]  # (B, 1, C_out)
        if self.instance_norm == "revin":
            x = x * self.revin_weight + self.revin_bias
            t_bias = self.revin_bias[self.target_index]
            t_scale = t_scale / (self.revin_weight[self.target_index] + _NORM_EPS**2)
            t_shift = t_shift - t_bias * t_scale  # y = (z - beta) / gamma * s + mu
        _, state = self.encoder(x)
        if self.decoder is None:
            h_n = _hidden(state)  # (layers * D, B, H_out)
            last = h_n[-self.encoder_directions :].transpose(0, 1).reshape(batch, -1)  # (B, D*H)
            features = torch.cat([last, future.reshape(batch, -1)], dim=1)
            raw = self.head(features).view(batch, self.horizon, -1)  # (B, H, C_out[*2])
        else:
            teacher = None
            if targets is not None and self.training and self.teacher_forcing > 0:
                teacher = (targets - t_shift) / t_scale  # (B, H, C_out)
            raw = self._decode(x[:, -1, self.target_index], state, future, teacher)
        mean = raw[..., : self.output_size] * t_scale + t_shift  # (B, H, C_out)
        if not self.gaussian:
            return mean
        log_var = raw[..., self.output_size :].clamp(*LOG_VARIANCE_RANGE)
        return mean, torch.exp(log_var) * t_scale**2

    def _future(self, future: Tensor | None, batch: int, like: Tensor) -> Tensor:
        if self.future_size == 0:
            return like.new_zeros(batch, self.horizon, 0)
        expected = (batch, self.horizon, self.future_size)
        if future is None or tuple(future.shape) != expected:
            got = None if future is None else tuple(future.shape)
            raise ValueError(
                f"RNNForecaster: future_covariates must have shape {expected}, got {got}"
            )
        return future

    def _decode(
        self,
        previous: Tensor,
        state: Tensor | tuple[Tensor, Tensor],
        future: Tensor,
        teacher: Tensor | None,
    ) -> Tensor:
        """Autoregressive decoding in normalized units; returns ``(B, H, C_out[*2])``."""
        if self.decoder is None:  # pragma: no cover - guarded by forward
            raise RuntimeError("no decoder")
        steps: list[Tensor] = []
        for h in range(self.horizon):
            step_in = torch.cat([previous, future[:, h]], dim=-1).unsqueeze(1)  # (B, 1, C_out+C_f)
            out, state = self.decoder(step_in, state)  # (B, 1, H_out)
            raw = self.head(out[:, 0])  # (B, C_out[*2])
            steps.append(raw)
            previous = raw[:, : self.output_size]
            if teacher is not None and bool(torch.rand(()) < self.teacher_forcing):
                previous = teacher[:, h]
        return torch.stack(steps, dim=1)


class ChannelIndependent(nn.Module):
    """One univariate forecaster applied to every channel: ``(B, L, C) -> (B, H, C)``.

    The channels of a window become ``C`` univariate windows, a batch of ``B * C``::

        inputs (B, L, C) -> (B*C, L, 1) -> forecaster -> (B*C, H, 1) -> (B, H, C)

    Args:
        forecaster: a model with one input and one output channel (and no covariates).
    """

    def __init__(self, forecaster: nn.Module) -> None:
        super().__init__()
        self.forecaster = forecaster

    @staticmethod
    def _split(x: Tensor) -> Tensor:
        batch, steps, channels = x.shape
        return x.permute(0, 2, 1).reshape(batch * channels, steps, 1)  # (B*C, T, 1)

    @staticmethod
    def _join(y: Tensor, batch: int) -> Tensor:
        steps = y.shape[1]
        return y.reshape(batch, -1, steps).permute(0, 2, 1)  # (B, T, C)

    def forward(
        self, inputs: Tensor, future_covariates: Tensor | None = None, targets: Tensor | None = None
    ) -> Tensor | tuple[Tensor, Tensor]:
        batch = inputs.shape[0]
        truth = None if targets is None else self._split(targets)
        output = self.forecaster(self._split(inputs), None, truth)
        if isinstance(output, tuple):
            return self._join(output[0], batch), self._join(output[1], batch)
        return self._join(output, batch)


def forecast_loss(
    output: Tensor | tuple[Tensor, Tensor], targets: Tensor, kind: PointLoss = "mse"
) -> Tensor:
    """A point loss for a point forecast; Gaussian negative log-likelihood for ``(mean,
    variance)``.

    Point losses (``kind``), averaged over all elements with ``e = y_hat - y``: ``"mse"``
    ``e^2``; ``"mae"`` ``|e|``; ``"huber"`` ``e^2 / 2`` for ``|e| <= 1``, else ``|e| - 1/2``.

    Example:
        >>> e = torch.tensor([0.5, 3.0])
        >>> [round(float(forecast_loss(e, torch.zeros(2), k)), 3) for k in ("mse", "mae", "huber")]
        [4.625, 1.75, 1.312]

    The NLL is ``0.5 * (log(2 pi) + log var + (y - mean)^2 / var)`` averaged over all
    elements (``torch.nn.functional.gaussian_nll_loss`` with ``full=True``).
    """
    if isinstance(output, tuple):
        mean, variance = output
        return F.gaussian_nll_loss(mean, targets, variance, full=True, eps=1e-6)
    if kind == "mae":
        return F.l1_loss(output, targets)
    if kind == "huber":
        return F.huber_loss(output, targets, delta=1.0)
    if kind != "mse":
        raise ValueError(f"loss must be 'mse', 'mae' or 'huber', got {kind!r}")
    return F.mse_loss(output, targets)


def prediction_interval(
    mean: Tensor, variance: Tensor, level: float = 0.9
) -> tuple[Tensor, Tensor]:
    """Central Gaussian interval ``mean -+ z sqrt(variance)`` with ``P(inside) = level``.

    Example:
        >>> lo, hi = prediction_interval(torch.zeros(1), torch.ones(1), 0.95)
        >>> round(float(hi), 2)
        1.96
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    z = NormalDist().inv_cdf(0.5 + level / 2.0)
    spread = z * variance.clamp_min(0.0).sqrt()
    return mean - spread, mean + spread
