"""Where a layer without step-changing extras trains through rnnlab's native fused BPTT.

Each rule is one :class:`Route` row: a cell family, a range of batch sizes and hidden sizes,
and (optionally) the extra it needs. The same row decides (:meth:`Route.matches`) and
explains itself (:meth:`Route.condition`), so a rule is never written twice. The rows come
from measurements (``benchmarks/plain_routing.py``; the numbers and their commands are in
``benchmarks/RESULTS.md``); outside them torch's own kernel runs, where nothing was measured
too. ``rnnlab.nn.kernels.select_kernel`` reads them only for a layer in training with
gradients on, whose weights the native loops can take (CPU, float32/float64, built).

Example:
    >>> route = native_route("gru", hidden=256, batch=32, extras=frozenset())
    >>> route.condition() if route else None
    'batch <= 256'
    >>> native_route("gru", hidden=512, batch=512, extras=frozenset()) is None
    True
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Route:
    """One measured region where rnnlab's native fused BPTT runs instead of torch's kernel.

    Attributes:
        family: ``"rnn"``, ``"lstm"`` or ``"gru"``.
        batch_max: the largest batch size of the region (inclusive).
        batch_min: the smallest (inclusive).
        hidden_min, hidden_max: bounds on ``hidden_size`` (inclusive), ``None`` for none.
        needs: an extra the layer must have for the row to apply (``"weight_drop"``), or
            ``None`` for a row that holds for plain layers (and so for any).
        gain: what the native loops give there, in words.
    """

    family: str
    batch_max: int
    batch_min: int = 1
    hidden_min: int | None = None
    hidden_max: int | None = None
    needs: str | None = None
    gain: str = "trains faster than torch's CPU kernel"

    def matches(self, hidden: int, batch: int | None, extras: frozenset[str]) -> bool:
        """Whether a layer of this ``hidden`` size, at this ``batch``, falls in the row.

        ``batch=None`` (unknown, as for ``explain()`` without a batch) matches no row:
        no claim without a measurement.
        """
        if batch is None or not self.batch_min <= batch <= self.batch_max:
            return False
        if self.hidden_min is not None and hidden < self.hidden_min:
            return False
        if self.hidden_max is not None and hidden > self.hidden_max:
            return False
        return self.needs is None or self.needs in extras

    def condition(self) -> str:
        """The row's condition in words, e.g. ``"batch <= 512 and hidden <= 256"``."""
        if self.batch_min > 1:
            words = [f"batch {self.batch_min}-{self.batch_max}"]
        else:
            words = [f"batch <= {self.batch_max}"]
        if self.hidden_min is not None and self.hidden_max is not None:
            words.append(f"hidden {self.hidden_min}-{self.hidden_max}")
        elif self.hidden_min is not None:
            words.append(f"hidden >= {self.hidden_min}")
        elif self.hidden_max is not None:
            words.append(f"hidden <= {self.hidden_max}")
        text = " and ".join(words)
        return text if self.needs is None else f"{self.needs} at {text}"

    def explanation(self) -> str:
        """The whole row in words: family, condition and gain."""
        return f"{self.family.upper()}, {self.condition()}: {self.gain}"


# Measured with benchmarks/plain_routing.py (forward + backward, T=50, 2 threads, ratio
# rnnlab / torch.nn) and, for DropConnect, paired runs against torch's kernel with the masked
# weights; the numbers are in benchmarks/RESULTS.md ("Kernel routing").
NATIVE_ROUTES: tuple[Route, ...] = (
    Route("rnn", batch_max=256),
    Route("rnn", batch_max=512, hidden_max=512),
    Route("gru", batch_max=256),
    Route("gru", batch_max=512, hidden_max=256),
    Route("lstm", batch_max=16, hidden_min=512),
    Route("lstm", batch_min=128, batch_max=256),
    # DropConnect through torch's kernel keeps a masked copy of W_hh (4H x H for the LSTM)
    # for backward, the native loops only its mask's seed: as fast, keeping less.
    Route(
        "lstm",
        batch_max=2,
        needs="weight_drop",
        gain="trains as fast as torch's kernel with the masked weights, keeping no masked "
        "copy of W_hh",
    ),
)


def native_route(
    family: str,
    hidden: int,
    batch: int | None,
    extras: frozenset[str],
    routes: Iterable[Route] = NATIVE_ROUTES,
) -> Route | None:
    """The first row of ``routes`` that a layer falls in, or ``None`` (torch's kernel)."""
    for route in routes:
        if route.family == family and route.matches(hidden, batch, extras):
            return route
    return None


def describe_routes(routes: Iterable[Route] = NATIVE_ROUTES) -> str:
    """Every row in words, one a line (what ``docs/kernels.md`` lists)."""
    return "\n".join(route.explanation() for route in routes)
