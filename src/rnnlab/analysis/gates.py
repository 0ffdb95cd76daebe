"""Gate statistics of LSTM and GRU layers: mean activation and fraction saturated.

A gate that sits near 0 or 1 passes (or blocks) its signal whatever the input: a forget gate
saturated at 1 keeps the cell state, which is what lets an LSTM carry information over long
delays, while an input gate saturated at 0 stops learning new input. The statistics, per
layer/direction row and gate, over every valid step of every sequence in a batch:

- ``mean``: the mean activation;
- ``saturated``: the fraction of activations within ``threshold`` (0.05) of a bound of the
  gate's range: below 0.05 or above 0.95 for sigmoid gates (LSTM ``i, f, o``; GRU ``r, z``),
  ``|a| > 0.95`` for tanh ones (LSTM ``g``, GRU ``n``);
- ``low`` and ``high``: the two sides of ``saturated`` separately.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

from rnnlab.analysis.trace import State, Trace, trace

SATURATION_THRESHOLD = 0.05
TANH_GATES = frozenset({"g", "n"})


@dataclass(frozen=True)
class GateStat:
    """One gate of one layer/direction row, over a batch.

    Attributes:
        row: ``"l0"``, ``"l0_reverse"``, ``"l1"``, ...
        gate: LSTM ``"i" | "f" | "g" | "o"``; GRU ``"r" | "z" | "n"``.
        mean: mean activation.
        std: standard deviation of the activations.
        saturated: fraction within ``threshold`` of either bound.
        low: fraction within ``threshold`` of the lower bound (0, or -1 for tanh gates).
        high: fraction within ``threshold`` of the upper bound (1).
    """

    row: str
    gate: str
    mean: float
    std: float
    saturated: float
    low: float
    high: float

    def to_dict(self) -> dict[str, float | str]:
        """A JSON-ready dictionary."""
        return asdict(self)


def gate_statistics_of_trace(
    traced: Trace, threshold: float = SATURATION_THRESHOLD
) -> list[GateStat]:
    """Gate statistics from a :class:`Trace` recorded with ``record_gates=True``."""
    if not 0.0 < threshold < 0.5:
        raise ValueError(f"threshold must be in (0, 0.5), got {threshold}")
    if traced.family == "rnn":
        raise ValueError("gate statistics need an LSTM or GRU layer, got a simple RNN (no gates)")
    if not traced.gates:
        raise ValueError("the trace has no gates: run trace(..., record_gates=True)")
    stats = []
    for row in traced.rows:
        for gate, values in traced.gates[row].items():  # values: (T, B, H)
            if traced.valid is not None:
                values = values[traced.valid]  # (N_valid, H)
            flat = values.reshape(-1).double()
            lower = -1.0 if gate in TANH_GATES else 0.0
            low = (flat < lower + threshold).double().mean().item()
            high = (flat > 1.0 - threshold).double().mean().item()
            std = flat.std().item() if flat.numel() > 1 else 0.0
            stats.append(GateStat(row, gate, flat.mean().item(), std, low + high, low, high))
    return stats


def gate_statistics(
    layer: nn.Module,
    inputs: Tensor,
    *,
    hx: State | None = None,
    lengths: Tensor | list[int] | None = None,
    threshold: float = SATURATION_THRESHOLD,
) -> list[GateStat]:
    """Mean activation and fraction saturated of every gate of an LSTM or GRU layer.

    Args:
        layer: an ``rnnlab.nn`` or ``torch.nn`` LSTM or GRU (evaluation-mode semantics).
        inputs: a padded batch in the layer's layout.
        hx: initial state; zeros when omitted.
        lengths: per-sequence lengths; steps past them are left out.
        threshold: distance to a bound that counts as saturated.

    Returns:
        One :class:`GateStat` per row and gate, rows in ``h_n`` order, gates in torch's order.

    Example:
        >>> import torch, rnnlab
        >>> lstm = rnnlab.LSTM(3, 8, forget_bias=10.0)
        >>> stats = gate_statistics(lstm, torch.randn(20, 4, 3))
        >>> [(s.gate, round(s.saturated, 2)) for s in stats if s.gate == "f"]
        [('f', 1.0)]
    """
    with torch.no_grad():
        traced = trace(layer, inputs, hx, lengths, record_gates=True)
    return gate_statistics_of_trace(traced, threshold)


def gate_table(stats: Sequence[GateStat]) -> str:
    """A Markdown table of gate statistics, one line per row and gate."""
    lines = [
        "| layer | gate | mean | std | saturated | low | high |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in stats:
        lines.append(
            f"| {s.row} | {s.gate} | {s.mean:.3f} | {s.std:.3f} | {s.saturated:.3f} "
            f"| {s.low:.3f} | {s.high:.3f} |"
        )
    return "\n".join(lines)
