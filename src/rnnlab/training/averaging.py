"""Non-monotonically triggered averaged SGD (NT-ASGD; Merity, Keskar and Socher 2017).

Plain SGD until the validation metric stops improving, then SGD whose result is the running
mean of the weights. The switch: at the ``k``-th validation (metric ``v_k``, lower is better),
with ``n = train.nonmono``::

    switch when  k - 1 > n  and  v_k > min(v_1, ..., v_{k-1-n})

i.e. the new value is worse than the best of the earlier checks, leaving out the last ``n``
of them (AWD-LSTM's rule). From the switch on, after every step ``s`` the average is updated::

    a <- w                       at the switch (count 1)
    a <- a + (w_s - a) / (c + 1),   c <- c + 1     after every later step

so ``a`` is the mean of the weights at the switch and after each step since. Training goes
on with the raw weights ``w``; evaluation and ``best.pt`` use ``a`` (:func:`averaged`).

Everything the rule needs lives in the optimizer's ``state_dict`` (the history and switch in
``param_groups[0]``, the averages in the per-parameter state), so ``last.pt`` keeps it and a
resumed run continues exactly.

Example:
    >>> import torch
    >>> w = torch.nn.Parameter(torch.ones(2))
    >>> opt = NTASGD([w], lr=0.1, nonmono=1)
    >>> opt.observe(1.0), opt.observe(0.5), opt.observe(2.0)   # 2.0 > min(1.0)
    (False, False, True)
    >>> with averaged(opt):
    ...     pass                             # evaluation here sees the averaged weights
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor

__all__ = ["NTASGD", "averaged", "observe_validation"]


class NTASGD(torch.optim.SGD):
    """SGD that switches to averaging on the non-monotone trigger (module docstring).

    Args:
        params: the parameters.
        lr: the learning rate (AWD-LSTM: 30 with the mean loss per token).
        nonmono: ``n`` of the trigger: checks to look back past.
        weight_decay: L2 penalty, as for SGD.
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float,
        nonmono: int = 5,
        weight_decay: float = 0.0,
    ) -> None:
        if isinstance(nonmono, bool) or not isinstance(nonmono, int) or nonmono < 1:
            raise ValueError(f"nonmono must be an integer >= 1, got {nonmono!r}")
        super().__init__(params, lr=lr, weight_decay=weight_decay)
        head = self.param_groups[0]
        head.setdefault("nonmono", nonmono)
        head.setdefault("nt_history", [])
        head.setdefault("nt_averaging", False)
        head.setdefault("nt_count", 0)

    @property
    def averaging(self) -> bool:
        """Whether the switch to averaging has happened."""
        return bool(self.param_groups[0]["nt_averaging"])

    def _params(self) -> Iterator[Tensor]:
        for group in self.param_groups:
            yield from group["params"]

    def observe(self, value: float) -> bool:
        """Record a validation value (lower is better); whether averaging starts now.

        A non-finite value is not recorded (it would poison the minimum).
        """
        if not math.isfinite(value):
            return False
        head = self.param_groups[0]
        history: list[float] = head["nt_history"]
        n = int(head["nonmono"])
        switch = not self.averaging and len(history) >= n + 1 and value > min(history[:-n])
        history.append(float(value))
        if switch:
            with torch.no_grad():
                for p in self._params():
                    self.state[p]["average"] = p.detach().clone()
            head["nt_averaging"], head["nt_count"] = True, 1
        return switch

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """An SGD step, then (once averaging) the running mean of the weights updated."""
        loss = super().step(closure)
        if self.averaging:
            head = self.param_groups[0]
            count = int(head["nt_count"])
            for p in self._params():
                average = self.state[p]["average"]
                average.add_(p - average, alpha=1.0 / (count + 1))
            head["nt_count"] = count + 1
        return loss


def observe_validation(optimizer: torch.optim.Optimizer, value: float) -> bool:
    """Feed a validation value to an :class:`NTASGD` (other optimizers: no-op, ``False``)."""
    return optimizer.observe(value) if isinstance(optimizer, NTASGD) else False


@contextmanager
def averaged(optimizer: torch.optim.Optimizer) -> Iterator[None]:
    """Swap the averaged weights into the parameters for the ``with`` block, then back.

    A no-op unless ``optimizer`` is an :class:`NTASGD` that has switched to averaging.
    """
    if not (isinstance(optimizer, NTASGD) and optimizer.averaging):
        yield
        return
    params = list(optimizer._params())
    saved = [p.detach().clone() for p in params]
    with torch.no_grad():
        for p in params:
            p.copy_(optimizer.state[p]["average"])
    try:
        yield
    finally:
        with torch.no_grad():
            for p, raw in zip(params, saved, strict=True):
                p.copy_(raw)
