"""The study table: one row per task, length and configuration, over its seeds.

A configuration is a run's cell plus the other grid settings that vary in the study
(:func:`label_of`); its rows give the compared metric's mean ± std over seeds, how many
seeds solved the task, the parameter count and the seconds per 1,000 steps.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from rnnlab.analysis.comparison.records import RunRecord
from rnnlab.analysis.conclusions import Record, format_value, summarize


def label_of(record: RunRecord, varied: Sequence[str]) -> str:
    """The name of a run's configuration: its cell, plus the other grid settings that vary
    (``lstm``, or ``lstm hidden_size=64`` when hidden sizes vary too)."""
    extra = [f"{k}={record.settings[k]}" for k in varied if k != "cell" and k in record.settings]
    return " ".join([record.cell, *extra])


def varied_settings(records: Sequence[RunRecord]) -> list[str]:
    """Grid settings that take more than one value across the records."""
    keys: dict[str, set[str]] = {}
    for r in records:
        for k, v in r.settings.items():
            keys.setdefault(k, set()).add(repr(v))
    return [k for k, values in keys.items() if len(values) > 1]


def to_records(records: Sequence[RunRecord]) -> list[Record]:
    """The study's runs as :class:`~rnnlab.analysis.conclusions.Record` (cell = label)."""
    varied = varied_settings(records)
    return [
        Record(r.task, r.length, label_of(r, varied), r.seed, r.metric, r.value, r.baseline)
        for r in records
    ]


@dataclass(frozen=True)
class Row:
    """One line of the study table: a task, length and configuration over its seeds."""

    task: str
    length: int
    cell: str
    metric: str
    mean: float
    std: float
    seeds: int
    solved: int | None
    baseline: float | None
    parameters: int
    seconds_per_1000_steps: float

    @property
    def value(self) -> str:
        """``mean ± std`` with sensible decimals."""
        return format_value(self.mean, self.std, self.baseline)

    @property
    def solved_text(self) -> str:
        """``2/3`` or ``-`` when the metric has no solved criterion."""
        return "-" if self.solved is None else f"{self.solved}/{self.seeds}"


def table_rows(records: Sequence[RunRecord]) -> list[Row]:
    """Per task, length and configuration: metric mean ± std over seeds, solved fraction,
    parameters and seconds per 1,000 training steps (the median over seeds: one slow
    seed, e.g. on a busy machine, does not move it), in study order."""
    varied = varied_settings(records)
    summaries = {(s.task, s.length, s.cell, s.metric): s for s in summarize(to_records(records))}
    groups: dict[tuple[str, int, str, str], list[RunRecord]] = {}
    for r in records:
        groups.setdefault((r.task, r.length, label_of(r, varied), r.metric), []).append(r)
    rows = []
    for key, items in groups.items():
        s = summaries[key]
        rows.append(
            Row(
                task=key[0],
                length=key[1],
                cell=key[2],
                metric=key[3],
                mean=s.mean,
                std=s.std,
                seeds=s.seeds,
                solved=s.solved,
                baseline=s.baseline,
                parameters=items[0].parameters,
                seconds_per_1000_steps=statistics.median(r.seconds_per_1000_steps for r in items),
            )
        )
    return rows
