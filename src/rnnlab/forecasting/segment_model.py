"""Segment-wise recurrence with parallel multi-step decoding (the idea of SegRNN, Lin et al.
2023), over any recurrent stack of rnnlab.

Each channel of a window is forecast on its own (channel independence: the batch and the
channels are folded, ``B * C`` univariate windows). With segment length ``w``, ``n = ceil(L /
w)`` input segments (the window is left-padded with its first value when ``w`` does not
divide ``L``) and ``m = ceil(H / w)`` output segments::

    x (B, L, C) --norm--> (B*C, n, w) --Linear(w, d), ReLU--> e_1..e_n
    e_1..e_n --RNN--> state h_n                                  (n recurrent steps)
    q_j = [p_j ; c_k]   (position embedding, d/2, and channel embedding, d/2; or p_j of
                         size d without channel embedding),  j = 1..m
    o_j = RNN_step(q_j, state = h_n)            (one step, all m segments in parallel)
    y_j = Linear(d, w)(Dropout(o_j))            (B*C, m, w) -> (B, H, C), denormalized

The decoding step reuses the encoder's stack and weights (the m copies of ``h_n`` are a
batch of ``B*C*m``), so an LSTM carries its ``(h, c)`` and every extra (layer norm,
recurrent dropout, zoneout...) acts in both. For a single-layer RNN/LSTM/GRU the step is
computed without materializing the copies (the queries' input projection once per query,
the recurrent projection once per state), the same result for a fraction of the work.
With ``gaussian=True`` the head gives a mean and a log-variance per step (clamped to
``[-15, 15]``) and the model returns ``(mean, variance)``.

Example:
    >>> model = SegmentForecaster(channels=7, horizon=96, segment_length=48, hidden_size=32)
    >>> model(torch.randn(4, 96, 7)).shape
    torch.Size([4, 96, 7])
    >>> model.input_segments(96), model.output_segments
    (2, 2)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import cast

import torch
from torch import Tensor, nn

from rnnlab.forecasting.normalization import InstanceNorm, NormKind
from rnnlab.nn.broadcast_step import broadcast_step, supports_broadcast_step

#: Builds a batch-first, unidirectional recurrent stack for a given number of input features.
LayerFactory = Callable[[int], nn.Module]
LOG_VARIANCE_RANGE = (-15.0, 15.0)


def _default_layer(hidden_size: int) -> LayerFactory:
    from rnnlab.nn import GRU

    def make(input_size: int) -> nn.Module:
        return GRU(input_size, hidden_size, batch_first=True)

    return make


def _repeat_state(
    state: Tensor | tuple[Tensor, Tensor], copies: int
) -> Tensor | tuple[Tensor, Tensor]:
    """``(layers, N, S)`` -> ``(layers, N * copies, S)``, each row repeated ``copies`` times."""
    if isinstance(state, tuple):
        return (state[0].repeat_interleave(copies, 1), state[1].repeat_interleave(copies, 1))
    return state.repeat_interleave(copies, 1)


class SegmentForecaster(nn.Module):
    """Segment-wise recurrent forecaster with parallel (PMF) decoding, channel independent.

    Args:
        channels: ``C``, the channels in and out (each forecast from its own past).
        horizon: ``H``, steps to forecast.
        segment_length: ``w``, rows per segment (in and out).
        hidden_size: ``d``, segment embedding and recurrent size (used by the default GRU;
            with ``build_layer`` the stack's ``hidden_size`` decides).
        build_layer: ``input_size -> recurrent stack`` (batch first, unidirectional); the
            task passes ``functools.partial(build_recurrent, model_config)``.
        instance_norm: ``None``, ``"last"``, ``"mean"``, ``"meanstd"`` or ``"revin"``.
        channel_embedding: add a learned per-channel embedding to the decoder's queries
            (then permuting channels no longer just permutes the forecasts).
        dropout: dropout on the decoded states, before the output map.
        gaussian: predict a variance too and return ``(mean, variance)``.
    """

    def __init__(
        self,
        channels: int,
        horizon: int,
        segment_length: int = 48,
        hidden_size: int = 512,
        build_layer: LayerFactory | None = None,
        instance_norm: NormKind | None = "last",
        channel_embedding: bool = True,
        dropout: float = 0.0,
        gaussian: bool = False,
    ) -> None:
        super().__init__()
        for name, value in (
            ("channels", channels),
            ("horizon", horizon),
            ("segment_length", segment_length),
            ("hidden_size", hidden_size),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        self.channels = channels
        self.input_size = channels
        self.output_size = channels
        self.future_size = 0
        self.horizon = horizon
        self.segment_length = segment_length
        self.output_segments = math.ceil(horizon / segment_length)
        self.gaussian = gaussian
        self.norm = InstanceNorm(instance_norm, channels)
        self.instance_norm = instance_norm
        make = build_layer or _default_layer(hidden_size)
        probe = make(1)
        d = int(getattr(probe, "hidden_size", hidden_size))
        del probe
        self.embed_size = d
        self.embed = nn.Sequential(nn.Linear(segment_length, d), nn.ReLU())
        self.recurrent = make(d)
        if getattr(self.recurrent, "bidirectional", False):
            raise ValueError("SegmentForecaster needs a unidirectional recurrent stack")
        out_size = int(getattr(self.recurrent, "proj_size", 0) or d)
        if channel_embedding:
            if d < 2:
                raise ValueError("channel_embedding needs hidden_size >= 2")
            self.position = nn.Parameter(torch.randn(self.output_segments, d - d // 2))
            self.channel: nn.Parameter | None = nn.Parameter(torch.randn(channels, d // 2))
        else:
            self.position = nn.Parameter(torch.randn(self.output_segments, d))
            self.channel = None
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(out_size, segment_length * (2 if gaussian else 1))

    def input_segments(self, input_length: int) -> int:
        """``n = ceil(L / w)``: the recurrent steps of the encoder for a window of ``L``."""
        return math.ceil(input_length / self.segment_length)

    def _query_table(self) -> Tensor:
        """Decoder queries ``(C, m, d)``: one per channel and output segment."""
        m, c = self.output_segments, self.channels
        position = self.position.unsqueeze(0).expand(c, m, -1)  # (C, m, d_p)
        if self.channel is None:
            return position
        channel = self.channel.unsqueeze(1).expand(c, m, -1)  # (C, m, d_c)
        return torch.cat([position, channel], dim=-1)  # (C, m, d)

    def _decode(self, state: Tensor | tuple[Tensor, Tensor], batch: int) -> Tensor:
        """The decoding step: ``(B*C*m, d_out)``, every output segment from the final state.

        For rnnlab's single-layer RNN/LSTM/GRU the step is computed in factorized form
        (:func:`~rnnlab.nn.broadcast_step.broadcast_step`: the input projection once per
        query and the recurrent one once per state, ``m``-fold fewer rows in both matrix
        multiplies); any other stack runs on the ``B*C*m`` materialized copies.
        """
        m, c = self.output_segments, self.channels
        queries = self._query_table()  # (C, m, d)
        layer = self.recurrent
        if supports_broadcast_step(layer):

            def per_row(s: Tensor) -> Tensor:  # (1, B*C, S) -> (B, C, 1, S)
                return s[0].view(batch, c, 1, -1)

            shared = (
                (per_row(state[0]), per_row(state[1]))
                if isinstance(state, tuple)
                else per_row(state)
            )
            out, _ = broadcast_step(layer, queries.unsqueeze(0), shared)
            return out.reshape(batch * c * m, -1)
        flat = queries.unsqueeze(0).expand(batch, c, m, -1).reshape(batch * c * m, 1, -1)
        out, _ = layer(flat, _repeat_state(state, m))  # (B*C*m, 1, d)
        return cast(Tensor, out)[:, 0]

    def forward(
        self, inputs: Tensor, future_covariates: Tensor | None = None, targets: Tensor | None = None
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Forecast ``H`` steps of every channel.

        Args:
            inputs: ``(B, L, C)``.
            future_covariates: unused (a channel-independent model reads no covariates).
            targets: unused (no teacher forcing).

        Returns:
            ``(B, H, C)`` forecasts, or ``(mean, variance)`` with the Gaussian head.
        """
        if inputs.dim() != 3 or inputs.shape[-1] != self.channels:
            raise ValueError(
                f"SegmentForecaster: inputs must be (B, L, {self.channels}), "
                f"got {tuple(inputs.shape)}"
            )
        batch, length, c = inputs.shape
        w, m = self.segment_length, self.output_segments
        x = self.norm(inputs)  # (B, L, C)
        n = self.input_segments(length)
        if n * w > length:  # left-pad with the first value
            x = torch.cat([x[:, :1].expand(batch, n * w - length, c), x], dim=1)
        segments = x.permute(0, 2, 1).reshape(batch * c, n, w)  # (B*C, n, w)
        _, state = self.recurrent(self.embed(segments))  # state (layers, B*C, d)
        raw = self.head(self.dropout(self._decode(state, batch)))  # (B*C*m, w[*2])
        raw = raw.view(batch, c, m, -1, w).permute(0, 2, 4, 1, 3)  # (B, m, w, C, 1|2)
        raw = raw.reshape(batch, m * w, c, -1)[:, : self.horizon]  # (B, H, C, 1|2)
        mean = self.norm.inverse(raw[..., 0])
        if not self.gaussian:
            return mean
        log_var = raw[..., 1].clamp(*LOG_VARIANCE_RANGE)
        return mean, self.norm.inverse(torch.exp(log_var), variance=True)
