"""A recurrent stack built one layer at a time, as AWD-LSTM builds its own.

::

    x (T, B, E) -> layer 1 (E -> H) -> drop -> layer 2 (H -> H) -> drop -> ... -> layer N (H -> H_N)

Two things a fused multi-layer layer cannot do: dropout between layers with one mask per
sequence (``dropouth`` of Merity et al. 2017, locked dropout: the same units dropped at
every step), and a last layer of another width ``H_N`` (the embedding size, so that a tied
decoder needs no projection). Each layer is a one-layer rnnlab layer with the ``[model]``
extras (weight drop on ``W_hh`` among them).

The state is a flat tuple of tensors, layer by layer (``(h1, c1, h2, c2, ...)`` for LSTMs,
``(h1, h2, ...)`` otherwise), each ``(1, B, H_i)``, so that checkpoints keep it and a
resumed epoch continues from it.

Example:
    >>> import torch
    >>> from rnnlab.config import ModelConfig
    >>> stack = LayeredStack(ModelConfig(cell="lstm", hidden_size=8, num_layers=3), 4, 5)
    >>> out, state = stack(torch.zeros(7, 2, 4))
    >>> tuple(out.shape), len(state), tuple(state[-1].shape)
    ((7, 2, 5), 6, (1, 2, 5))
"""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from rnnlab.config import ModelConfig
from rnnlab.language.regularization import locked_dropout
from rnnlab.models.stack import build_recurrent

__all__ = ["LayeredStack"]


class LayeredStack(nn.Module):
    """``num_layers`` one-layer recurrent layers, time-major, dropout between them.

    Args:
        config: the ``[model]`` section (cell, ``hidden_size``, ``num_layers``, extras).
        input_size: features per step (the embedding size).
        last_size: width of the last layer (default ``config.hidden_size``).
        dropout: dropout between layers (default ``config.dropout``).
        locked: the between-layer dropout keeps one mask per sequence over time.
        overrides: layer keywords replacing the config's (``weight_drop=0.5``...).
    """

    def __init__(
        self,
        config: ModelConfig,
        input_size: int,
        last_size: int | None = None,
        *,
        dropout: float | None = None,
        locked: bool = True,
        **overrides: Any,
    ) -> None:
        super().__init__()
        hidden, count = config.hidden_size, config.num_layers
        sizes = [hidden] * (count - 1) + [last_size or hidden]
        inputs = [input_size, *sizes[:-1]]
        keywords = {**overrides, "num_layers": 1, "dropout": 0.0, "batch_first": False}
        self.layers = nn.ModuleList(
            build_recurrent(config, n_in, n_out, **keywords)
            for n_in, n_out in zip(inputs, sizes, strict=True)
        )
        self.dropout = float(config.dropout if dropout is None else dropout)
        self.locked = bool(locked)
        self.hidden_size = sizes[-1]
        self.sizes = sizes
        self.batch_first = False
        self.num_layers = count
        self.bidirectional = False
        self.forget_bias = getattr(self.layers[0], "forget_bias", None)

    def _split(self, state: Any) -> list[Any]:
        """The flat state tuple cut back into one state per layer (``None``: zeros)."""
        if state is None:
            return [None] * len(self.layers)
        flat = [state] if isinstance(state, Tensor) else list(state)
        if len(flat) % len(self.layers):
            raise ValueError(
                f"a state of {len(flat)} tensors does not fit {len(self.layers)} layers"
            )
        width = len(flat) // len(self.layers)
        parts = [flat[i * width : (i + 1) * width] for i in range(len(self.layers))]
        return [part[0] if width == 1 else tuple(part) for part in parts]

    def forward(self, x: Tensor, state: Any = None) -> tuple[Tensor, tuple[Tensor, ...]]:
        """Run the layers in turn; the output of the last one and the flat new state."""
        flat: list[Tensor] = []
        for index, (layer, layer_state) in enumerate(
            zip(self.layers, self._split(state), strict=True)
        ):
            if index > 0 and self.dropout > 0 and self.training:
                x = (
                    locked_dropout(x, self.dropout, training=True)
                    if self.locked
                    else F.dropout(x, self.dropout, training=True)
                )
            x, new = layer(x, layer_state)
            flat.extend([new] if isinstance(new, Tensor) else new)
        return x, tuple(flat)

    def extra_repr(self) -> str:
        return f"sizes={self.sizes}, dropout={self.dropout}, locked={self.locked}"
