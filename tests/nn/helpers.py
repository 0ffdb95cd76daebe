"""Shared builders for the layer tests: matching rnnlab / torch.nn layer pairs and inputs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

import rnnlab

State = Tensor | tuple[Tensor, Tensor]


@dataclass(frozen=True)
class Variant:
    """One cell family with its family-specific constructor options."""

    name: str
    ours: type[nn.Module]
    theirs: type[nn.Module]
    options: dict[str, Any]

    @property
    def is_lstm(self) -> bool:
        return self.theirs is nn.LSTM

    @property
    def out_size(self) -> int:
        return int(self.options.get("proj_size", 0)) or HIDDEN


INPUT, HIDDEN = 5, 6

VARIANTS = [
    Variant("rnn-tanh", rnnlab.RNN, nn.RNN, {"nonlinearity": "tanh"}),
    Variant("rnn-relu", rnnlab.RNN, nn.RNN, {"nonlinearity": "relu"}),
    Variant("lstm", rnnlab.LSTM, nn.LSTM, {}),
    Variant("lstm-proj", rnnlab.LSTM, nn.LSTM, {"proj_size": 4}),
    Variant("gru", rnnlab.GRU, nn.GRU, {}),
]


def make_pair(variant: Variant, seed: int = 0, **options: Any) -> tuple[nn.Module, nn.Module]:
    """An rnnlab layer and a torch.nn layer with identical weights (ours -> theirs)."""
    torch.manual_seed(seed)
    ours = variant.ours(INPUT, HIDDEN, **variant.options, **options)
    torch_options = {k: v for k, v in options.items() if k not in EXTRAS}
    theirs = variant.theirs(INPUT, HIDDEN, **variant.options, **torch_options)
    missing, unexpected = theirs.load_state_dict(ours.state_dict(), strict=False)
    assert not missing
    assert all(key.startswith("ln_") for key in unexpected)
    return ours, theirs


EXTRAS = ("layer_norm", "recurrent_dropout", "zoneout", "weight_drop", "forget_bias")


def initial_state(
    variant: Variant, layer: nn.Module, batch: int, dtype: torch.dtype = torch.float32
) -> State:
    rows = layer.num_layers * (2 if layer.bidirectional else 1)
    h0 = torch.randn(rows, batch, variant.out_size, dtype=dtype)
    if variant.is_lstm:
        return h0, torch.randn(rows, batch, HIDDEN, dtype=dtype)
    return h0


def state_tensors(state: State) -> list[Tensor]:
    return list(state) if isinstance(state, tuple) else [state]


def assert_as_accurate_as(
    new: Callable[..., tuple[Tensor, Tensor]],
    reference: Callable[..., tuple[Tensor, Tensor]],
    inputs64: list[Tensor],
    masks: tuple[dict[str, Any], dict[str, Any]],  # float32's, float64's
    **options: Any,
) -> None:
    """``new``'s outputs, final state and every gradient in float32 within 1e-5 of its
    float64 results (relative to their scale), or no further from them than ``reference``'s
    float32 results are (small layer norms amplify rounding alike in both).

    ``new`` and ``reference`` take ``(inputs, masks, **options)`` and return ``(out, h)``.
    """
    ours = [a.detach().float().requires_grad_() for a in inputs64]
    theirs = [a.detach().float().requires_grad_() for a in inputs64]
    results = []
    for function, args, kind in (
        (new, ours, masks[0]),
        (reference, theirs, masks[0]),
        (new, inputs64, masks[1]),
    ):
        out, h = function(args, kind, **options)
        weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(0))
        loss = (out * weights.to(out.dtype)).sum() + h.sum()
        results.append((out, h, *torch.autograd.grad(loss, args)))
    for mine, other, truth in zip(*results, strict=True):
        assert _error(mine, truth) <= max(1e-5, 1.5 * _error(other, truth))


def _error(ours: Tensor, truth: Tensor) -> float:
    """Largest difference from the float64 result, relative to the result's scale."""
    difference = (ours.detach().double() - truth.detach()).abs().max()
    return float(difference / truth.detach().abs().max().clamp_min(1e-12))
