"""Each task's model with the inputs and outputs a deployment sees, whole-sequence and streaming.

The wrappers call the task model's own parts, so the same wrapper over the eager model is the
PyTorch reference and over :func:`rnnlab.export.graph.replace_recurrent`'s copy is what gets
exported. All are batch first::

    LanguageGraph:    tokens (B, T) int64, lengths (B,)  -> logits (B, T, V)
    LanguageStep:     tokens (B, t), h, [c]              -> logits (B, t, V), h, [c]
    ForecastGraph:    inputs (B, L, C_in), [future (B, H, C_f)] -> mean (B, H, C_out), [variance]
    ForecastStep:     rows (B, t, C_in), h, [c], [future]      -> mean, [variance], h, [c]
    SpeechGraph:      features (B, T, F), lengths (B,)   -> logits (B, K) or log-probs (B, T, K)
    CTCStep:          features (B, t, F), h, [c]         -> log-probs (B, t, K), h, [c]

``h`` is ``(num_layers, B, H_out)`` and ``c`` (LSTM only) ``(num_layers, B, H)``: the state
per layer, fed back at the next chunk. Step models need a unidirectional recurrence (a
reverse direction reads the future) and, for forecasting, no instance normalization (its
statistics cover the whole window) and no channel-independent wrapper.

Example:
    >>> import torch
    >>> from rnnlab.language.model import LanguageModel
    >>> lm = LanguageModel(20, 8, "gru", hidden_size=16, batch_first=True).eval()
    >>> LanguageGraph(lm)(torch.randint(20, (2, 5)), torch.tensor([5, 3])).shape
    torch.Size([2, 5, 20])
"""

from __future__ import annotations

from typing import Any, cast

import torch
from torch import Tensor, nn

from rnnlab.errors import UserError
from rnnlab.forecasting.model import LOG_VARIANCE_RANGE, RNNForecaster
from rnnlab.language.model import LanguageModel
from rnnlab.models.sequence import SequenceModel

__all__ = [
    "CTCStep",
    "ForecastGraph",
    "ForecastStep",
    "LanguageGraph",
    "LanguageStep",
    "SpeechGraph",
    "StepUnsupportedError",
    "is_lstm",
    "pack_state",
]


class StepUnsupportedError(UserError):
    """The model has no streaming form (bidirectional, instance-normalized, ...)."""


def is_lstm(recurrent: nn.Module) -> bool:
    """Whether the recurrence carries a cell state ``c`` (an LSTM)."""
    mode = getattr(recurrent, "mode", None)
    return mode == "LSTM" or getattr(recurrent, "family", None) == "lstm"


def pack_state(h: Tensor, c: Tensor | None) -> Tensor | tuple[Tensor, Tensor]:
    """The layer's ``hx``: ``h`` or ``(h, c)``."""
    return h if c is None else (h, c)


def _split_state(state: Any) -> tuple[Tensor, Tensor | None]:
    if isinstance(state, tuple | list):
        return state[0], state[1]
    return cast(Tensor, state), None


def _check_streamable(recurrent: nn.Module, what: str) -> None:
    if getattr(recurrent, "bidirectional", False):
        raise StepUnsupportedError(
            f"{what}: a bidirectional recurrence has no streaming form (its reverse direction "
            "reads the steps that have not arrived yet)"
        )


def _run(recurrent: nn.Module, x: Tensor, hx: Any, lengths: Tensor | None) -> tuple[Tensor, Any]:
    """Run a recurrence batch first whatever its layout."""
    batch_first = bool(getattr(recurrent, "batch_first", False))
    seq = x if batch_first else x.transpose(0, 1)
    out, state = recurrent(seq, hx, lengths=lengths)
    return (out if batch_first else out.transpose(0, 1)), state


class LanguageGraph(nn.Module):
    """A language model's logits for padded token batches (see the module docstring)."""

    def __init__(self, model: LanguageModel) -> None:
        super().__init__()
        self.model = model

    def _decode(self, out: Tensor) -> Tensor:
        if self.model.projection is not None:
            out = self.model.projection(out)
        return cast(Tensor, self.model.decoder(out))

    def forward(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        out, _ = _run(self.model.recurrent, self.model.embed(tokens), None, lengths)
        return self._decode(out)


class LanguageStep(LanguageGraph):
    """Generation: tokens and the state in, logits and the next state out."""

    def __init__(self, model: LanguageModel) -> None:
        super().__init__(model)
        _check_streamable(model.recurrent, "language model")

    def forward(  # type: ignore[override]
        self, tokens: Tensor, h: Tensor, c: Tensor | None = None
    ) -> tuple[Tensor, ...]:
        out, state = _run(self.model.recurrent, self.model.embed(tokens), pack_state(h, c), None)
        h_n, c_n = _split_state(state)
        logits = self._decode(out)
        return (logits, h_n) if c_n is None else (logits, h_n, c_n)


class ForecastGraph(nn.Module):
    """A forecaster's point forecast (and variance, Gaussian models) for input windows."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, inputs: Tensor, future: Tensor | None = None) -> Any:
        return self.model(inputs, future)


class ForecastStep(nn.Module):
    """One-step-ahead forecasting: new rows and the encoder state in, the forecast from the
    state after them and the state out (``RNNForecaster`` without instance normalization)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        if not isinstance(model, RNNForecaster):
            raise StepUnsupportedError(
                f"{type(model).__name__}: only an RNNForecaster has a streaming form (a "
                "channel-independent model runs each channel as its own sequence)"
            )
        if model.instance_norm is not None:
            raise StepUnsupportedError(
                f"instance_norm={model.instance_norm!r} normalizes by the whole input window, "
                'which a stream does not have; train with data.instance_norm = "off" to stream'
            )
        _check_streamable(model.encoder, "forecaster")
        self.model = model

    def forward(
        self, rows: Tensor, h: Tensor, c: Tensor | None = None, future: Tensor | None = None
    ) -> tuple[Tensor, ...]:
        m = self.model
        batch = rows.shape[0]
        fut = m._future(future, batch, rows)  # (B, H, C_f)
        _, state = m.encoder(rows, pack_state(h, c))
        h_n, c_n = _split_state(state)
        if m.decoder is None:
            last = h_n[-1]  # (B, H_out): unidirectional, top layer
            raw = m.head(torch.cat([last, fut.reshape(batch, -1)], dim=1))
            raw = raw.view(batch, m.horizon, -1)
        else:
            raw = m._decode(rows[:, -1, m.target_index], state, fut, None)
        mean = raw[..., : m.output_size]
        outputs: tuple[Tensor, ...] = (mean,)
        if m.gaussian:
            log_var = raw[..., m.output_size :].clamp(*LOG_VARIANCE_RANGE)
            outputs = (mean, torch.exp(log_var))
        return (*outputs, h_n) if c_n is None else (*outputs, h_n, c_n)


class SpeechGraph(nn.Module):
    """A speech classifier's logits ``(B, K)`` or a CTC model's log-probs ``(B, T, K)``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, features: Tensor, lengths: Tensor) -> Tensor:
        output = self.model(features, lengths)
        return cast(Tensor, output[0] if isinstance(self.model, SequenceModel) else output)


class CTCStep(nn.Module):
    """Chunked recognition: feature frames and the state in, their log-probs and the state out."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        head = getattr(model, "head", None)
        if type(head).__name__ != "CTCHead":
            raise StepUnsupportedError(
                "only a CTC model streams (a classifier pools the whole utterance)"
            )
        _check_streamable(model.recurrent, "CTC model")  # type: ignore[arg-type]
        self.model = model

    def forward(self, features: Tensor, h: Tensor, c: Tensor | None = None) -> tuple[Tensor, ...]:
        encoder = getattr(self.model, "encoder", None)
        x = encoder(features) if encoder is not None else features
        recurrent = cast(nn.Module, self.model.recurrent)
        out, state = _run(recurrent, x, pack_state(h, c), None)
        h_n, c_n = _split_state(state)
        log_probs = cast(nn.Module, self.model.head)(out, None, None)
        return (log_probs, h_n) if c_n is None else (log_probs, h_n, c_n)
