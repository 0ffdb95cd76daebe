"""IndRNN (Li et al. 2018, "Independently Recurrent Neural Network"): one weight per unit.

One step, for ``p_t = W x_t + b``::

    h_t = act(p_t + u * h_{t-1})       act = relu (the paper's) or tanh,  u in R^H

Each unit recurs only on itself (``u`` is a vector: an element-wise product, not a matrix
multiply), so the projection runs for all steps at once and the time loop is an
element-wise scan with a nonlinearity, fused in the native kernel (``csrc/scan.cpp``;
backward from the outputs alone, ``relu' = [h > 0]``, ``tanh' = 1 - h^2``). Unlike minGRU
the step is not linear in ``h``, so it has no parallel prefix form; on a CPU the loop is
parallel over batch x hidden all the same.

The paper's constraint on the recurrent weight: ``|u| <= recurrent_max`` (to keep the
gradient over ``T`` steps from exploding, ``u^T`` bounded). Here ``u`` is clipped in the
forward pass (``u.clamp(-max, max)``, gradient zero past the bound), so the constraint
holds for every optimizer without a hook after each update; ``recurrent_max=None`` turns
it off. ``u`` starts uniform in ``[0, min(1, recurrent_max)]``, ``W`` uniform in
``+-1/sqrt(I)`` and ``b`` at 0.

Example:
    >>> import torch
    >>> layer = IndRNN(3, 8, num_layers=2, batch_first=True)
    >>> out, h_n = layer(torch.randn(2, 5, 3))
    >>> tuple(out.shape), bool((out >= 0).all())  # relu
    ((2, 5, 8), True)
"""

from __future__ import annotations

from typing import Any, ClassVar, cast

import torch
from torch import Tensor, nn

from rnnlab.nn.modern import scan
from rnnlab.nn.modern.base import ModernLayer

ACTIVATIONS = ("relu", "tanh")


class IndRNN(ModernLayer):
    """IndRNN layer stack; options as :class:`~rnnlab.nn.modern.base.ModernLayer`, plus:

    Args:
        activation: ``"relu"`` (default, as in the paper) or ``"tanh"``.
        recurrent_max: bound on ``|u|`` (default 1.0), ``None`` for none.

    Parameters: ``weight_ih_l{k}`` ``(H, I_k)``, ``bias_ih_l{k}`` ``(H)``, ``weight_hh_l{k}``
    ``(H)`` (``u``), with ``_reverse`` copies when bidirectional.
    """

    blocks: ClassVar[int] = 1

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        activation: str = "relu",
        recurrent_max: float | None = 1.0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        if recurrent_max is not None and (
            isinstance(recurrent_max, bool)
            or not isinstance(recurrent_max, (int, float))
            or not recurrent_max > 0
        ):
            raise ValueError(f"recurrent_max must be a number > 0 or None, got {recurrent_max!r}")
        self.activation = activation
        self.recurrent_max = None if recurrent_max is None else float(recurrent_max)
        super().__init__(
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            device,
            dtype,
        )

    def _register_recurrent(self, suffix: str, factory: dict[str, Any]) -> None:
        self.register_parameter(
            f"weight_hh{suffix}", nn.Parameter(torch.empty(self.hidden_size, **factory))
        )

    def reset_parameters(self) -> None:
        super().reset_parameters()
        top = 1.0 if self.recurrent_max is None else min(1.0, self.recurrent_max)
        for name, param in self.named_parameters(recurse=False):
            if name.startswith("weight_hh"):
                nn.init.uniform_(param, 0.0, top)
            elif name.startswith("bias_ih"):
                nn.init.zeros_(param)

    def recurrent_weight(self, suffix: str) -> Tensor:
        """``u`` of one layer and direction, within the constraint."""
        u = cast(Tensor, getattr(self, f"weight_hh{suffix}"))
        if self.recurrent_max is None:
            return u
        return u.clamp(-self.recurrent_max, self.recurrent_max)

    def cell_step(self, pre: Tensor, h: Tensor, suffix: str) -> Tensor:
        return scan.indrnn_step(pre, self.recurrent_weight(suffix), h, self.activation == "relu")

    def scan_direction(
        self, pre: Tensor, h0: Tensor, lengths: Tensor | None, reverse: bool, suffix: str
    ) -> tuple[Tensor, Tensor]:
        relu = self.activation == "relu"
        u = self.recurrent_weight(suffix)
        return scan.indrnn_scan(pre, u, h0, relu, lengths, reverse, self.batch_first)

    def extra_repr(self) -> str:
        text = super().extra_repr()
        if self.activation != "relu":
            text += f", activation={self.activation!r}"
        if self.recurrent_max != 1.0:
            text += f", recurrent_max={self.recurrent_max}"
        return text
