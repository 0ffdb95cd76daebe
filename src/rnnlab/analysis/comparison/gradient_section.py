"""The gradient-flow part of a study report: measured on the trained runs, then in words.

For the study's diagnose task at its longest length, the first seed's run of every
configuration is diagnosed (:func:`rnnlab.analysis.diagnose.diagnose`) at initialization and
trained; the plots ``gradient_flow_init.png`` and ``gradient_flow_trained.png`` show
``||dL/dh_t||`` against ``t``, and :func:`gradient_sentences` compares the ratios
``||dL/dh_1|| / ||dL/dh_T||`` across cells, from the numbers.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from rnnlab.analysis.comparison.records import StudyResult
from rnnlab.analysis.comparison.table import label_of, varied_settings
from rnnlab.analysis.conclusions import cell_name
from rnnlab.analysis.diagnose import diagnose
from rnnlab.analysis.plots import plot_gradient_flow


def _order(value: float) -> str:
    if value == 0 or not math.isfinite(value):
        return str(value)
    return f"{value:.1e}"


def gradient_sentences(ratios: dict[str, dict[str, float]], task: str, length: int) -> list[str]:
    """Sentences comparing ``||dL/dh_1|| / ||dL/dh_T||`` across cells, from the numbers.

    Args:
        ratios: ``{"init": {cell: ratio}, "trained": {cell: ratio}}``.
        task, length: where they were measured.
    """
    sentences = []
    for stage, words in (("init", "at initialization"), ("trained", "after training")):
        values = ratios.get(stage, {})
        if not values:
            continue
        listed = ", ".join(f"{cell_name(c)} {_order(v)}" for c, v in values.items())
        text = (
            f"On {task} at T={length}, {words}, the gradient reaching the first step relative "
            f"to the last, ||dL/dh_1|| / ||dL/dh_T||, is: {listed}."
        )
        finite = {c: v for c, v in values.items() if v > 0 and math.isfinite(v)}
        simple = [c for c in finite if c.split()[0] == "rnn"]
        if simple and len(finite) > len(simple):
            reference = simple[0]
            parts = []
            for cell, value in finite.items():
                if cell == reference:
                    continue
                orders = math.log10(value / finite[reference])
                if abs(orders) < 1:
                    parts.append(f"{cell_name(cell)}'s is within one order of magnitude of it")
                else:
                    side = "above" if orders > 0 else "below"
                    parts.append(f"{cell_name(cell)}'s is {_orders(orders)} {side}")
            text += f" Against {cell_name(reference)}'s: " + "; ".join(parts) + "."
        elif len(finite) >= 2:
            low = min(finite, key=lambda c: finite[c])
            high = max(finite, key=lambda c: finite[c])
            orders = math.log10(finite[high] / finite[low])
            if orders >= 1:
                text += (
                    f" {_capitalize(cell_name(high))}'s is {_orders(orders)} "
                    f"above {cell_name(low)}'s."
                )
            else:
                text += " They are within one order of magnitude of each other."
        sentences.append(text)
    return sentences


def _orders(log_ratio: float) -> str:
    count = round(abs(log_ratio))
    return f"{count} order{'' if count == 1 else 's'} of magnitude"


def _capitalize(text: str) -> str:
    return text[:1].upper() + text[1:]


def gradient_flow_section(
    result: StudyResult, plots: Path
) -> tuple[dict[str, dict[str, float]], list[Path], str, int] | None:
    """Diagnose the first seed's run of every cell on the study's diagnose task at its
    longest length (init and trained); plot and return the ratios."""
    if not result.study.tasks:
        return None  # a claims-only study: no grid task to diagnose
    task = result.study.diagnose_task or result.study.tasks[0].name
    mine = [r for r in result.records if r.task == task]
    if not mine:
        return None
    length = max(r.length for r in mine)
    seed = min(r.seed for r in mine)
    varied = varied_settings(result.records)
    chosen = [r for r in mine if r.length == length and r.seed == seed]
    flows: dict[str, dict[str, Any]] = {"init": {}, "trained": {}}
    ratios: dict[str, dict[str, float]] = {"init": {}, "trained": {}}
    for r in chosen:
        label = label_of(r, varied)
        found = diagnose(result.run_dir(r.run_id), out_dir=None, batch_size=64)
        for stage, item in found.items():
            flows[stage][cell_name(label)] = item.flow
            ratios[stage][label] = item.flow.ratio()
    written = []
    for stage, words in (("init", "at initialization"), ("trained", "trained")):
        written.append(
            plot_gradient_flow(
                flows[stage],
                plots / f"gradient_flow_{stage}.png",
                title=f"{task}, T={length}, seed {seed}: mean ||dL/dh_t||, {words}",
            )
        )
    return ratios, written, task, length
