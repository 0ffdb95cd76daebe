r"""Gradient flow through time: the norm of ``dL/dh_t`` at every step of every layer.

For a loss ``L`` and the hidden states ``h_1 .. h_T`` of a recurrent layer, backpropagation
through time gives

.. math::
    \frac{\partial L}{\partial h_t}
      = \frac{\partial L}{\partial h_t}\Big|_{\text{direct}}
      + \Big(\frac{\partial h_{t+1}}{\partial h_t}\Big)^{\top} \frac{\partial L}{\partial h_{t+1}}

so with a loss on the last step only, ``dL/dh_t`` is a product of ``T - t`` Jacobians. For a
linear recurrence ``h_t = W h_{t-1} + U x_t`` it is ``(W^T)^{T-t} dL/dh_T`` exactly; for a tanh
RNN the Jacobians shrink it geometrically (vanishing gradients), while the LSTM cell state and
the GRU update gate add near-identity paths. The summary number is the ratio
``||dL/dh_1|| / ||dL/dh_T||``: close to 0, the first steps receive no learning signal.

Norms are taken per sequence and averaged over the batch: ``mean_b ||dL/dh_t^{(b)}||``.

Precision: over a few hundred steps the early gradients of a freshly initialized cell fall
below float32's range (about 1e-38, subnormal down to 1e-45) and read as 0. For long sequences
run the analysis in float64: ``gradient_flow(layer.double(), inputs.double(), ...)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from rnnlab.analysis.trace import State, trace


@dataclass(frozen=True)
class GradientFlow:
    """Per-step gradient norms of one model on one batch.

    Attributes:
        rows: layer/direction names (``"l0"``, ``"l0_reverse"``, ``"l1"``, ...).
        hidden: ``(R, T)`` float64: ``mean_b ||dL/dh_t||`` per row and step ``t = 1..T``.
        cell: ``(R, T)`` for LSTM cell states ``||dL/dc_t||``, else ``None``.
        loss: the loss value.
        reverse: per row, whether it runs backwards in time.
    """

    rows: tuple[str, ...]
    hidden: Tensor
    cell: Tensor | None
    loss: float
    reverse: tuple[bool, ...]

    @property
    def steps(self) -> int:
        """Number of time steps ``T``."""
        return int(self.hidden.shape[1])

    def ratio(self, row: str | None = None) -> float:
        """``||dL/dh_1|| / ||dL/dh_T||`` for ``row`` (default: the top forward layer).

        ``h_1`` is the row's first state in its own processing order, so for a reverse row
        the ratio is ``||dL/dh_T|| / ||dL/dh_1||`` in time order. ``inf`` if the last norm is
        zero and the first is not; ``nan`` if both are zero.
        """
        name = row if row is not None else self.top_row
        if name not in self.rows:
            raise ValueError(f"unknown row {name!r}; expected one of {list(self.rows)}")
        index = self.rows.index(name)
        norms = self.hidden[index]
        first, last = (norms[-1], norms[0]) if self.reverse[index] else (norms[0], norms[-1])
        if last == 0:
            return float("nan") if first == 0 else float("inf")
        return float(first / last)

    @property
    def top_row(self) -> str:
        """The forward direction of the last layer."""
        forward = [r for r, rev in zip(self.rows, self.reverse, strict=True) if not rev]
        return forward[-1] if forward else self.rows[-1]

    def ratios(self) -> dict[str, float]:
        """:meth:`ratio` for every row."""
        return {row: self.ratio(row) for row in self.rows}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (lists of floats)."""
        return {
            "rows": list(self.rows),
            "reverse": list(self.reverse),
            "loss": self.loss,
            "hidden": self.hidden.tolist(),
            "cell": None if self.cell is None else self.cell.tolist(),
            "ratios": self.ratios(),
        }


def gradient_norms(loss: Tensor, states: Sequence[Sequence[Tensor]]) -> Tensor:
    """``mean_b ||dL/ds||`` for every state tensor ``s`` of every row.

    Args:
        loss: a scalar that depends on the states through the autograd graph.
        states: one sequence of per-step tensors per row, each ``(B, ...)``, all rows with the
            same number of steps. Each tensor must be the one later steps were computed from
            (not a copy stacked afterwards), so that its gradient is the total derivative.

    Returns:
        ``(R, T)`` float64 tensor of batch-averaged norms; a state the loss does not depend on
        has norm 0. The parameters' ``.grad`` are not touched.
    """
    if loss.dim() != 0:
        raise ValueError(f"loss must be a scalar, got shape {tuple(loss.shape)}")
    if not states or any(len(row) != len(states[0]) for row in states):
        raise ValueError(f"states must be rows of equal length, got {[len(r) for r in states]}")
    flat = [s for row in states for s in row]
    unique: dict[int, Tensor] = {id(s): s for s in flat}  # autograd.grad wants distinct inputs
    tensors = list(unique.values())
    grads = torch.autograd.grad(loss, tensors, allow_unused=True, retain_graph=True)
    by_id = {id(t): g for t, g in zip(tensors, grads, strict=True)}
    norms = torch.zeros(len(states), len(states[0]), dtype=torch.float64)
    for r, row in enumerate(states):
        for t, s in enumerate(row):
            grad = by_id[id(s)]
            if grad is not None:
                per_sequence = grad.detach().reshape(grad.shape[0], -1).double().norm(dim=1)
                norms[r, t] = per_sequence.mean()
    return norms


def gradient_flow_of_states(
    loss: Tensor,
    hidden: Mapping[str, Sequence[Tensor]],
    cell: Mapping[str, Sequence[Tensor]] | None = None,
) -> GradientFlow:
    """Gradient flow for any model that exposes its per-step states.

    Use this for a model that is not a single recurrent layer: run it so that it keeps the
    tensors ``h_t`` it computes (for an ``rnnlab`` layer inside a larger model, run
    :func:`rnnlab.analysis.trace.trace` on it in the model's place), compute the loss, and
    pass both. Row names ending in ``_reverse`` count as running backwards in time.

    Args:
        loss: the scalar loss.
        hidden: per row, the states ``h_1 .. h_T`` in time order.
        cell: per row, the LSTM cell states, if any.
    """
    rows = tuple(hidden)
    hidden_norms = gradient_norms(loss, [hidden[r] for r in rows])
    cell_norms = None
    if cell:
        cell_norms = gradient_norms(loss, [cell[r] for r in rows])
    return GradientFlow(
        rows=rows,
        hidden=hidden_norms,
        cell=cell_norms,
        loss=float(loss.detach()),
        reverse=tuple(r.endswith("_reverse") for r in rows),
    )


def gradient_flow(
    layer: nn.Module,
    inputs: Tensor,
    loss_fn: Callable[[Tensor], Tensor],
    *,
    hx: State | None = None,
    lengths: Tensor | list[int] | None = None,
) -> GradientFlow:
    """Norm of ``dL/dh_t`` for every step and layer of a recurrent layer, on one batch.

    The layer is run step by step on its own weights (:func:`rnnlab.analysis.trace.trace`,
    evaluation-mode semantics), ``loss_fn`` maps its output to the loss, and the gradient of
    the loss with respect to every per-step state is taken. Works at initialization and on a
    trained layer alike; parameters' ``.grad`` are left untouched.

    Args:
        layer: an ``rnnlab.nn`` or ``torch.nn`` RNN, LSTM or GRU.
        inputs: a padded batch in the layer's layout (``(B, T, I)`` if ``batch_first``).
        loss_fn: output (same layout as the layer's output) -> scalar loss; put the model's
            head in it, e.g. ``lambda out: F.mse_loss(head(out[:, -1]), targets)``.
        hx: initial state; zeros when omitted.
        lengths: per-sequence lengths.

    Returns:
        A :class:`GradientFlow`; ``.ratio()`` is ``||dL/dh_1|| / ||dL/dh_T||`` of the top layer.

    Example:
        >>> import torch, rnnlab
        >>> from rnnlab.data.synthetic import adding_problem
        >>> x, y = adding_problem(8, 30, seed=0)
        >>> gru, head = rnnlab.GRU(2, 16, batch_first=True), torch.nn.Linear(16, 1)
        >>> flow = gradient_flow(gru, x, lambda out: ((head(out[:, -1]) - y) ** 2).mean())
        >>> tuple(flow.hidden.shape), 0 < flow.ratio() < 1
        ((1, 30), True)
    """
    with torch.enable_grad():
        tr = trace(layer, inputs, hx, lengths)
        loss = loss_fn(tr.output)
        if not isinstance(loss, Tensor) or loss.dim() != 0:
            raise ValueError("loss_fn must return a scalar tensor")
        if not loss.requires_grad:
            raise ValueError("loss_fn's result does not depend on the layer's output")
        return gradient_flow_of_states(loss, tr.hidden, tr.cell or None)
