"""Sentences generated from the numbers of a study (tasks x lengths x cells x seeds).

A study result is a list of :class:`Record`: one metric value of one run (task, sequence
length, cell, seed), with the score of the task's baseline beside it. :func:`summarize`
aggregates the seeds (mean, sample standard deviation, seeds solved) and :func:`conclusions`
writes sentences from those aggregates only, for example::

    At T=200 on the adding problem (MSE; the mean predictor scores 0.167; solved: MSE < 0.01),
    GRU solves it (MSE 0.002 ± 0.001, 3/3 seeds solved) while the tanh RNN stays at the mean
    predictor (MSE 0.167 ± 0.001, 0/3 seeds solved).

"Solved" is defined per task and metric in :data:`SOLVED` (a run solves the task when its
value passes the threshold):

==============  ====================  ====================================================
task            metric                solved when
==============  ====================  ====================================================
adding          mse                   MSE < 0.01 (6% of the mean predictor's 1/6)
copy            recall_accuracy       accuracy on the recalled symbols > 0.99
copy            cross_entropy         cross-entropy < 5% of the baseline 10 log(8)/(T+20)
reber           long_range_accuracy   accuracy on the repeated T/P > 0.99
reber           accuracy              accuracy of next-symbol predictions > 0.99
mackey_glass    nrmse                 normalized RMSE < 0.05 (mean predictor: 1)
==============  ====================  ====================================================

A cell "stays at the baseline" when its mean closes less than 10% of the gap between the
baseline and a perfect score (:data:`AT_BASELINE_PROGRESS`).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

AT_BASELINE_PROGRESS = 0.1


@dataclass(frozen=True)
class Record:
    """One metric value of one run of a study.

    Attributes:
        task: e.g. ``"adding"``, ``"copy"``, ``"reber"``, ``"mackey_glass"``.
        length: the sequence length ``T`` (the delay for copy).
        cell: e.g. ``"rnn"`` (tanh), ``"rnn_relu"``, ``"lstm"``, ``"gru"``.
        seed: the run's seed.
        metric: e.g. ``"mse"``, ``"recall_accuracy"``.
        value: the metric's value (on the test set).
        baseline: the baseline's value for this task, length and metric (e.g. 1/6 for
            adding MSE), or ``None`` if there is none.
    """

    task: str
    length: int
    cell: str
    seed: int
    metric: str
    value: float
    baseline: float | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Record:
        """Build a record from a mapping (a JSON line, a table row); one-line errors."""
        missing = [
            k for k in ("task", "length", "cell", "seed", "metric", "value") if k not in data
        ]
        if missing:
            raise ValueError(f"study record {dict(data)!r} lacks field(s) {missing}")
        try:
            baseline = data.get("baseline")
            return cls(
                task=str(data["task"]),
                length=int(data["length"]),
                cell=str(data["cell"]),
                seed=int(data["seed"]),
                metric=str(data["metric"]),
                value=float(data["value"]),
                baseline=None if baseline is None else float(baseline),
            )
        except (TypeError, ValueError) as exc:
            raise ValueError(f"study record {dict(data)!r} has a bad value: {exc}") from exc

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return asdict(self)


@dataclass(frozen=True)
class Criterion:
    """When a run counts as having solved a task, for one metric.

    Attributes:
        higher_is_better: accuracies: True; errors and losses: False.
        threshold: the value to pass (strictly).
        relative: the threshold is a fraction of the baseline's value.
        perfect: the best possible value (0 for errors, 1 for accuracies).
    """

    higher_is_better: bool
    threshold: float
    relative: bool = False
    perfect: float = 0.0

    def limit(self, baseline: float | None) -> float:
        """The threshold as a value of the metric."""
        if not self.relative:
            return self.threshold
        if baseline is None:
            raise ValueError("a threshold relative to the baseline needs the baseline value")
        return self.threshold * baseline

    def solved(self, value: float, baseline: float | None) -> bool:
        """Whether ``value`` passes the threshold."""
        limit = self.limit(baseline)
        return value > limit if self.higher_is_better else value < limit


SOLVED: dict[tuple[str, str], Criterion] = {
    ("adding", "mse"): Criterion(higher_is_better=False, threshold=0.01),
    ("copy", "recall_accuracy"): Criterion(higher_is_better=True, threshold=0.99, perfect=1.0),
    ("copy", "cross_entropy"): Criterion(higher_is_better=False, threshold=0.05, relative=True),
    ("reber", "long_range_accuracy"): Criterion(higher_is_better=True, threshold=0.99, perfect=1.0),
    ("reber", "accuracy"): Criterion(higher_is_better=True, threshold=0.99, perfect=1.0),
    ("mackey_glass", "nrmse"): Criterion(higher_is_better=False, threshold=0.05),
}
"""The solved criteria by (task, metric); pass ``criteria=`` to override or extend."""

HIGHER_IS_BETTER = frozenset({"accuracy", "recall_accuracy", "long_range_accuracy", "r2"})
"""Metrics without a criterion that are still known to be better when higher."""

_TASK_NAMES = {
    "adding": ("the adding problem", "the mean predictor"),
    "copy": ("the copy task", "the memoryless baseline"),
    "reber": ("embedded Reber", "the memoryless baseline"),
    "mackey_glass": ("Mackey-Glass", "the mean predictor"),
}
_METRIC_NAMES = {
    "mse": "MSE",
    "nrmse": "NRMSE",
    "rmse": "RMSE",
    "mae": "MAE",
    "cross_entropy": "cross-entropy",
    "accuracy": "accuracy",
    "recall_accuracy": "recall accuracy",
    "long_range_accuracy": "long-range accuracy",
}
_CELL_NAMES = {
    "rnn": "the tanh RNN",
    "rnn_tanh": "the tanh RNN",
    "tanh": "the tanh RNN",
    "rnn_relu": "the ReLU RNN",
    "relu": "the ReLU RNN",
    "lstm": "LSTM",
    "gru": "GRU",
}


def cell_name(cell: str) -> str:
    """How a cell is named in a sentence: ``"rnn"`` -> ``"the tanh RNN"``, ``"gru"`` -> GRU."""
    return _CELL_NAMES.get(cell.lower(), cell)


def metric_name(metric: str) -> str:
    """How a metric is named in a sentence: ``"mse"`` -> ``"MSE"``."""
    return _METRIC_NAMES.get(metric.lower(), metric.replace("_", " "))


def _task_names(task: str) -> tuple[str, str]:
    return _TASK_NAMES.get(task.lower(), (task.replace("_", " "), "the baseline"))


@dataclass(frozen=True)
class Summary:
    """One (task, length, cell, metric) over its seeds.

    Attributes:
        mean: mean over seeds.
        std: sample standard deviation over seeds (0 for one seed).
        seeds: number of seeds.
        solved: seeds that solved the task, ``None`` without a criterion.
        baseline: the baseline's value (mean over the records that give one), or ``None``.
        progress: fraction of the gap from the baseline to a perfect score that the mean
            closes (``None`` without baseline): 0 at the baseline, 1 perfect, < 0 worse.
        higher_is_better: the metric's direction.
        verdict: ``"solved"`` (every seed), ``"partly solved"``, ``"at baseline"``,
            ``"beats baseline"``, or ``"unrated"`` (no criterion and no baseline).
    """

    task: str
    length: int
    cell: str
    metric: str
    mean: float
    std: float
    seeds: int
    solved: int | None
    baseline: float | None
    progress: float | None
    higher_is_better: bool
    verdict: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return asdict(self)


def _criterion(
    task: str, metric: str, criteria: Mapping[tuple[str, str], Criterion]
) -> Criterion | None:
    return criteria.get((task, metric)) or criteria.get((task.lower(), metric.lower()))


def summarize(
    records: Iterable[Record], criteria: Mapping[tuple[str, str], Criterion] | None = None
) -> list[Summary]:
    """Aggregate records over seeds, one :class:`Summary` per (task, length, cell, metric).

    Args:
        records: the study's records.
        criteria: solved criteria by (task, metric); default :data:`SOLVED`.

    Returns:
        Summaries sorted by task, metric, length, then best cell first.
    """
    table = SOLVED if criteria is None else criteria
    groups: dict[tuple[str, str, int, str], list[Record]] = {}
    for record in records:
        key = (record.task, record.metric, record.length, record.cell)
        groups.setdefault(key, []).append(record)
    summaries = []
    for (task, metric, length, cell), items in groups.items():
        values = [r.value for r in items]
        baselines = [r.baseline for r in items if r.baseline is not None]
        baseline = statistics.fmean(baselines) if baselines else None
        criterion = _criterion(task, metric, table)
        higher = criterion.higher_is_better if criterion else metric.lower() in HIGHER_IS_BETTER
        perfect = criterion.perfect if criterion else (1.0 if higher else 0.0)
        mean = statistics.fmean(values)
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        solved = None
        if criterion is not None and (baseline is not None or not criterion.relative):
            solved = sum(criterion.solved(v, baseline) for v in values)
        progress = None
        if baseline is not None and perfect != baseline:
            progress = (mean - baseline) / (perfect - baseline)
        if solved is not None and solved == len(values):
            verdict = "solved"
        elif solved:
            verdict = "partly solved"
        elif progress is not None:
            verdict = "at baseline" if progress < AT_BASELINE_PROGRESS else "beats baseline"
        else:
            verdict = "unrated"
        summaries.append(
            Summary(task, length, cell, metric, mean, std, len(values), solved, baseline,
                    progress, higher, verdict)
        )  # fmt: skip
    summaries.sort(
        key=lambda s: (s.task, s.metric, s.length, -s.mean if s.higher_is_better else s.mean)
    )
    return summaries


def _decimals(value: float, significant: int) -> int:
    if value == 0 or not math.isfinite(value):
        return 3
    return min(6, max(0, significant - 1 - math.floor(math.log10(abs(value)))))


def format_value(value: float, std: float | None = None, reference: float | None = None) -> str:
    """A number (± spread) with enough decimals for two significant digits of ``value`` and
    three of ``reference`` (the baseline): ``0.002 ± 0.001``, ``0.167 ± 0.001``."""
    decimals = _decimals(value, 2)
    if reference is not None:
        decimals = max(decimals, _decimals(reference, 3))
    text = f"{value:.{decimals}f}"
    if std is None:
        return text
    spread = max(decimals, _decimals(std, 1)) if std > 0 else decimals
    return f"{text} ± {std:.{spread}f}"


def _capitalize(text: str) -> str:
    return text[:1].upper() + text[1:]


def _clause(s: Summary, baseline_name: str) -> str:
    metric = metric_name(s.metric)
    number = f"{metric} {format_value(s.mean, s.std, s.baseline)}"
    counted = f"{s.solved}/{s.seeds} seeds solved" if s.solved is not None else f"{s.seeds} seeds"
    name = cell_name(s.cell)
    if s.verdict == "solved":
        return f"{name} solves it ({number}, {counted})"
    if s.verdict == "partly solved":
        return f"{name} solves it in {s.solved}/{s.seeds} seeds ({number})"
    if s.verdict == "at baseline":
        return f"{name} stays at {baseline_name} ({number}, {counted})"
    if s.verdict == "beats baseline":
        return f"{name} beats {baseline_name} without solving it ({number}, {counted})"
    return f"{name} reaches {number} ({counted})"


def _group_sentence(items: Sequence[Summary]) -> str:
    first = items[0]
    task_name, baseline_name = _task_names(first.task)
    metric = metric_name(first.metric)
    context = [metric]
    if first.baseline is not None:
        context.append(f"{baseline_name} scores {first.baseline:.3g}")
    criterion = _criterion(first.task, first.metric, SOLVED)
    if criterion is not None and (first.baseline is not None or not criterion.relative):
        sign = ">" if criterion.higher_is_better else "<"
        context.append(f"solved: {metric} {sign} {criterion.limit(first.baseline):.3g}")
    head = f"At T={first.length} on {task_name} ({'; '.join(context)}), "
    good = [s for s in items if s.verdict in ("solved", "partly solved")]
    bad = [s for s in items if s not in good]
    clauses_good = [_clause(s, baseline_name) for s in good]
    clauses_bad = [_clause(s, baseline_name) for s in bad]
    if good and bad:
        body = " and ".join(clauses_good) + " while " + " and ".join(clauses_bad)
    else:
        body = "; ".join(clauses_good or clauses_bad)
    return head + body + "."


def _comparison_sentence(items: Sequence[Summary]) -> str | None:
    if len(items) < 2:
        return None
    best, second, worst = items[0], items[1], items[-1]
    metric = metric_name(best.metric)
    ref = best.baseline
    if abs(best.mean - second.mean) <= max(best.std, second.std):
        first_value = format_value(best.mean, best.std, ref)
        second_value = format_value(second.mean, second.std, ref)
        return (
            f"At T={best.length}, {cell_name(best.cell)} and {cell_name(second.cell)} do not "
            f"differ beyond the spread over seeds ({metric} {first_value} vs {second_value})."
        )
    text = (
        f"At T={best.length}, {cell_name(best.cell)} is best ({metric} "
        f"{format_value(best.mean, best.std, ref)})"
    )
    if not best.higher_is_better and best.mean > 0 and worst.mean > 0:
        factor = worst.mean / best.mean
        text += f", {factor:.3g} times lower than {cell_name(worst.cell)}"
        text += f" ({format_value(worst.mean, worst.std, ref)})"
    else:
        text += f" and {cell_name(worst.cell)} worst ({format_value(worst.mean, worst.std, ref)})"
    return text + "."


def _length_sentence(task: str, metric: str, items: Sequence[Summary]) -> str | None:
    lengths = sorted({s.length for s in items})
    if len(lengths) < 2 or any(s.solved is None for s in items):
        return None
    task_name = _task_names(task)[0]
    listed = ", ".join(str(t) for t in lengths)
    parts = []
    for cell in dict.fromkeys(s.cell for s in items):
        by_length = {s.length: s for s in items if s.cell == cell}
        solved = [t for t in lengths if t in by_length and by_length[t].verdict == "solved"]
        failed = [t for t in lengths if t in by_length and by_length[t].verdict != "solved"]
        name = cell_name(cell)
        if not failed:
            parts.append(f"{name} solves every length")
        elif not solved:
            parts.append(f"{name} solves none")
        elif max(solved) < min(failed):
            parts.append(f"{name} solves up to T={max(solved)} and fails from T={min(failed)}")
        else:
            shown = ", ".join(f"T={t}" for t in solved)
            parts.append(f"{name} solves only {shown}")
    return (
        _capitalize(f"on {task_name} ({metric_name(metric)}) at T = {listed}: ")
        + "; ".join(parts)
        + "."
    )


def conclusions(
    records: Iterable[Record], criteria: Mapping[tuple[str, str], Criterion] | None = None
) -> list[str]:
    """Sentences that state what a study's numbers show.

    For each task, metric and length: what each cell does relative to the baseline and the
    solved threshold, with mean ± standard deviation over seeds and the seeds solved; which
    cell is best and by how much (or that the best two are within the seed spread). For each
    task and metric over several lengths: up to which length each cell solves the task.

    Args:
        records: the study's records.
        criteria: solved criteria by (task, metric); default :data:`SOLVED`.

    Returns:
        The sentences, in task, metric, length order.

    Example:
        >>> rows = [Record("adding", 200, cell, seed, "mse", value, 1 / 6)
        ...         for cell, values in (("rnn", [0.167, 0.166]), ("gru", [0.002, 0.003]))
        ...         for seed, value in enumerate(values)]
        >>> from textwrap import fill
        >>> print(fill(conclusions(rows)[0], 90))
        At T=200 on the adding problem (MSE; the mean predictor scores 0.167; solved: MSE < 0.01),
        GRU solves it (MSE 0.0025 ± 0.0007, 2/2 seeds solved) while the tanh RNN stays at the mean
        predictor (MSE 0.167 ± 0.0007, 0/2 seeds solved).
    """
    summaries = summarize(records, criteria)
    groups: dict[tuple[str, str, int], list[Summary]] = {}
    for s in summaries:
        groups.setdefault((s.task, s.metric, s.length), []).append(s)
    sentences: list[str] = []
    by_task: dict[tuple[str, str], list[Summary]] = {}
    for (task, metric, _), items in groups.items():
        sentences.append(_group_sentence(items))
        comparison = _comparison_sentence(items)
        if comparison:
            sentences.append(comparison)
        by_task.setdefault((task, metric), []).extend(items)
    for (task, metric), items in by_task.items():
        sentence = _length_sentence(task, metric, items)
        if sentence:
            sentences.append(sentence)
    return sentences


def markdown_table(summaries: Sequence[Summary]) -> str:
    """The summaries as a Markdown table (task, T, cell, metric, mean ± std, solved, verdict)."""
    lines = [
        "| task | T | cell | metric | mean ± std | baseline | solved | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in summaries:
        baseline = "" if s.baseline is None else f"{s.baseline:.3g}"
        solved = "" if s.solved is None else f"{s.solved}/{s.seeds}"
        lines.append(
            f"| {s.task} | {s.length} | {s.cell} | {s.metric} "
            f"| {format_value(s.mean, s.std, s.baseline)} | {baseline} | {solved} | {s.verdict} |"
        )
    return "\n".join(lines)
