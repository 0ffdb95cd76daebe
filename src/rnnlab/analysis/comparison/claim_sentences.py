"""A claim's verdict and sentence, computed from its numbers.

Each arm of a claim is summarized over its seeds (:class:`ArmStats`: mean, sample standard
deviation, the training-split value when measured, parameters, time per step). An arm is
compared with the claim's reference:

- ``expect = "lower"`` (or ``"higher"``): the effect is ``d = mean - reference mean`` and the
  seed spread ``s = std + reference std``. The claim **holds** when ``d`` goes the expected
  way and ``|d| > s``; it **does not hold here** when ``d`` goes the other way and
  ``|d| > s``; otherwise (``|d| <= s``, or one seed only so no spread is known) it is
  **inconclusive**.
- ``expect = "similar"``: **holds** when ``|d| <= tolerance * |reference mean|``; else
  **inconclusive** when ``|d| <= s`` (the difference may be noise), else **does not hold
  here**.

A sweep (:func:`sweep_sentence`) asks whether the setting matters: the best and the worst
grid points are compared the same way ("lower" than the worst).

Example:
    >>> ref = ArmStats("no dropout", 142.0, 2.0, 3)
    >>> arm = ArmStats("dropout 0.5", 121.0, 1.0, 3)
    >>> verdict(ref, arm, "lower")
    'holds'
    >>> claim_sentence("PTB", "valid perplexity", ref, arm, "lower")[:62]
    'on PTB, dropout 0.5 lowers valid perplexity from 142 ± 2 (no d'
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

HOLDS = "holds"
FAILS = "does not hold here"
INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class ArmStats:
    """One arm over its seeds.

    Attributes:
        name: the variant's name.
        mean, std: the compared metric's mean and sample standard deviation over seeds
            (0 for one seed).
        seeds: how many seeds.
        train_mean: the metric on the training batches (mean over seeds), when measured.
        parameters: trainable parameters.
        seconds_per_1000_steps: training time per 1,000 steps (median over seeds).
    """

    name: str
    mean: float
    std: float
    seeds: int
    train_mean: float | None = None
    parameters: int | None = None
    seconds_per_1000_steps: float | None = None

    @classmethod
    def of(
        cls,
        name: str,
        values: Sequence[float],
        train: Sequence[float] = (),
        parameters: int | None = None,
        seconds: Sequence[float] = (),
    ) -> ArmStats:
        """Summarize per-seed ``values`` (and ``train`` values, per-seed ``seconds`` per
        1,000 steps: their median)."""
        if not all(math.isfinite(v) for v in values):
            # a diverged seed (non-finite loss): the arm failed, whatever the others did
            mean, std = math.inf, 0.0
        else:
            mean = statistics.fmean(values)
            std = statistics.stdev(values) if len(values) > 1 else 0.0
        return cls(
            name,
            mean,
            std,
            len(values),
            statistics.fmean(train) if train else None,
            parameters,
            statistics.median(seconds) if seconds else None,
        )

    @property
    def gap(self) -> float | None:
        """``mean - train_mean``: how much worse the held-out split is than training."""
        return None if self.train_mean is None else self.mean - self.train_mean


def verdict(ref: ArmStats, arm: ArmStats, expect: str, tolerance: float = 0.05) -> str:
    """``holds``, ``does not hold here`` or ``inconclusive`` (see the module docstring).

    Raises:
        ValueError: an unknown ``expect``.
    """
    diff = arm.mean - ref.mean
    spread = ref.std + arm.std
    if expect == "similar":
        if abs(diff) <= tolerance * abs(ref.mean):
            return HOLDS
        return INCONCLUSIVE if abs(diff) <= spread else FAILS
    if expect not in ("lower", "higher"):
        raise ValueError(f"expect must be lower, higher or similar, not {expect!r}")
    if min(ref.seeds, arm.seeds) < 2 or abs(diff) <= spread:
        return INCONCLUSIVE
    went_lower = diff < 0
    return HOLDS if went_lower == (expect == "lower") else FAILS


def _decimals(value: float) -> int:
    size = abs(value)
    if size >= 100 or size == 0 or not math.isfinite(size):
        return 0
    return max(0, 2 - math.floor(math.log10(size)))


def number(value: float, like: float | None = None) -> str:
    """``value`` with three significant digits of ``like`` (default itself): 142, 12.3,
    0.394."""
    return f"{value:.{_decimals(value if like is None else like)}f}"


def pm(stats: ArmStats) -> str:
    """``mean ± std`` (``mean`` alone for one seed)."""
    if not math.isfinite(stats.mean):
        return "diverged"
    if stats.seeds < 2:
        return f"{number(stats.mean)} (one seed)"
    return f"{number(stats.mean)} ± {number(stats.std, stats.mean)}"


def _why(ref: ArmStats, arm: ArmStats, expect: str, said: str) -> str:
    if said == INCONCLUSIVE and min(ref.seeds, arm.seeds) < 2 and expect != "similar":
        return f"{said} (one seed: no spread to compare with)"
    if said == INCONCLUSIVE:
        return f"{said} (the difference is within the seed spread)"
    if said == FAILS and expect == "similar":
        return f"{said} (beyond the tolerance and the seed spread)"
    if said == FAILS:
        return f"{said} (expected {expect})"
    return said


def _cost(ref: ArmStats, arm: ArmStats) -> str:
    parts = []
    if ref.parameters and arm.parameters:
        parts.append(f"{arm.parameters / ref.parameters:.2f}x the parameters")
    if ref.seconds_per_1000_steps and arm.seconds_per_1000_steps:
        ratio = arm.seconds_per_1000_steps / ref.seconds_per_1000_steps
        parts.append(f"{ratio:.2f}x the time per step")
    return f", with {' and '.join(parts)} of {ref.name}" if parts else ""


def claim_sentence(
    domain: str,
    measure: str,
    ref: ArmStats,
    arm: ArmStats,
    expect: str,
    tolerance: float = 0.05,
) -> str:
    """The sentence for one arm against the reference, ending in its verdict.

    Args:
        domain: the data set (``PTB``).
        measure: the compared quantity in words (``valid perplexity``).
        ref, arm: the reference and the arm.
        expect: ``lower``, ``higher`` or ``similar``.
        tolerance: the relative difference still counted as similar.
    """
    said = verdict(ref, arm, expect, tolerance)
    where = f"on {domain}, " if domain else ""
    diff = arm.mean - ref.mean
    if expect == "similar":
        apart = abs(diff) / abs(ref.mean) * 100 if ref.mean else math.inf
        text = (
            f"{where}{arm.name} reaches {measure} {pm(arm)} against {pm(ref)} for {ref.name} "
            f"({apart:.1f}% apart, similar means within {tolerance * 100:g}%)"
        )
    else:
        verb = "lowers" if diff < 0 else "raises" if diff > 0 else "leaves"
        text = (
            f"{where}{arm.name} {verb} {measure} from {pm(ref)} ({ref.name}) to {pm(arm)}: "
            f"a change of {number(abs(diff), ref.mean)} against a seed spread of "
            f"{number(ref.std + arm.std, ref.mean)}"
        )
        if ref.gap is not None and arm.gap is not None:
            before, after = number(ref.gap, ref.mean), number(arm.gap, ref.mean)
            if before == after:  # equal as printed: "widens from -67 to -67" would mislead
                text += f", and leaves the train-valid gap at {before}"
            else:
                change = "narrows" if abs(arm.gap) < abs(ref.gap) else "widens"
                text += f", and {change} the train-valid gap from {before} to {after}"
    return f"{text}{_cost(ref, arm)}; {_why(ref, arm, expect, said)}"


def sweep_sentence(
    domain: str, measure: str, arms: Sequence[ArmStats], higher_is_better: bool = False
) -> str:
    """Whether a swept setting matters: the best grid point against the worst.

    The claim ("tuning it matters") holds when the best is better than the worst by more
    than their seed spread.
    """
    if not arms:
        raise ValueError("a sweep needs at least one grid point")
    ranked = sorted(arms, key=lambda a: a.mean, reverse=higher_is_better)
    best, worst = ranked[0], ranked[-1]
    said = verdict(worst, best, "higher" if higher_is_better else "lower")
    where = f"on {domain}, " if domain else ""
    ratio = f"{abs(worst.mean - best.mean) / abs(worst.mean) * 100:.0f}%" if worst.mean else "-"
    return (
        f"{where}{measure} over the {len(arms)} settings ranges from {pm(best)} ({best.name}) "
        f"to {pm(worst)} ({worst.name}): the best is {ratio} better than the worst, against a "
        f"seed spread of {number(best.std + worst.std, best.mean)}; the setting matters: "
        f"{_why(worst, best, 'lower', said)}"
    )
