"""Confusion matrices of a digit classifier: the plot and the files in the run directory.

:func:`plot_confusion_matrix` draws ``(true, predicted)`` counts to a PNG (matplotlib is
imported only when drawing); :func:`write_confusion_files` writes ``plots/confusion.png``
and ``confusion.json`` (labels and counts) into a run directory. The counts come from
:meth:`rnnlab.speech.digits.SpeechDigitsTask.evaluate`; for a finished run use
:func:`rnnlab.speech.digits.write_confusion_matrix`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from rnnlab.io import atomic_write, atomic_write_text

__all__ = ["plot_confusion_matrix", "write_confusion_files"]


def plot_confusion_matrix(
    confusion: Tensor, labels: Sequence[str], path: str | os.PathLike[str], title: str = ""
) -> Path:
    """Draw a confusion matrix (rows: true class, columns: predicted) to a PNG, atomically.

    Args:
        confusion: ``(C, C)`` counts.
        labels: the class names.
        path: the PNG to write (its folder is created).
        title: the figure title (default: the accuracy).

    Returns:
        The path written.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    counts = confusion.to(torch.long)
    if counts.dim() != 2 or counts.shape[0] != counts.shape[1] or counts.shape[0] != len(labels):
        raise ValueError(
            f"confusion must be ({len(labels)}, {len(labels)}) for {len(labels)} labels, "
            f"got {tuple(counts.shape)}"
        )
    total = int(counts.sum())
    accuracy = float(counts.trace()) / total if total else float("nan")
    fig = Figure(figsize=(1.0 + 0.55 * len(labels), 0.8 + 0.55 * len(labels)), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.imshow(counts.numpy(), cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or f"accuracy {accuracy:.2%} ({total} recordings)")
    top = int(counts.max()) if total else 0
    for i in range(len(labels)):
        for j in range(len(labels)):
            value = int(counts[i, j])
            if value:
                color = "white" if value > top / 2 else "black"
                ax.text(j, i, str(value), ha="center", va="center", color=color, fontsize=8)
    return atomic_write(path, lambda handle: fig.savefig(handle, format="png", dpi=110))


def write_confusion_files(
    confusion: Tensor, labels: Sequence[str], run_dir: str | os.PathLike[str]
) -> list[Path]:
    """``plots/confusion.png`` and ``confusion.json`` (labels, counts) in ``run_dir``."""
    folder = Path(run_dir)
    payload = {"labels": list(labels), "counts": confusion.tolist()}
    return [
        plot_confusion_matrix(confusion, labels, folder / "plots" / "confusion.png"),
        atomic_write_text(folder / "confusion.json", json.dumps(payload) + "\n"),
    ]
