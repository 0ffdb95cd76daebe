"""The picture of a forecast: each target's recent history and its forecast, with the
prediction interval of a Gaussian model shaded.

Matplotlib is imported when a plot is drawn (with the ``Agg`` backend), not with the module.
"""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from rnnlab.io import atomic_write

#: At most this many targets get a panel (the first ones; the title says so).
MAX_PLOTTED_TARGETS = 8


def plot_forecast(
    history: pd.DataFrame,
    table: pd.DataFrame,
    time_name: str,
    targets: list[str],
    path: Path,
) -> Path:
    """Draw each target's history and forecast (with its interval when present).

    Args:
        history: the input rows the model read (the time column and each target).
        table: the forecast table of :func:`rnnlab.forecasting.predict.forecast`
            (``<target>_lower``/``_upper`` columns draw the interval).
        time_name: the time column of both frames.
        targets: the targets to draw, one panel each (at most :data:`MAX_PLOTTED_TARGETS`).
        path: the image file; its suffix picks the format (PNG, PDF, SVG), written
            atomically.

    Returns:
        ``path``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = targets[:MAX_PLOTTED_TARGETS]
    fig, axes = plt.subplots(
        len(shown), 1, figsize=(9, 2.2 * len(shown) + 0.6), sharex=True, squeeze=False
    )
    past_t = pd.to_datetime(history[time_name])
    for ax, name in zip(axes[:, 0], shown, strict=True):
        ax.plot(past_t, history[name].astype(float), color="0.3", lw=1, label="history")
        ax.plot(table[time_name], table[name], color="tab:blue", lw=1.2, label="forecast")
        if f"{name}_lower" in table:
            ax.fill_between(
                table[time_name],
                table[f"{name}_lower"],
                table[f"{name}_upper"],
                color="tab:blue",
                alpha=0.2,
                label="interval",
            )
        ax.set_ylabel(name)
    axes[0, 0].legend(loc="upper left", fontsize=8)
    if len(targets) > len(shown):
        axes[0, 0].set_title(f"first {len(shown)} of {len(targets)} targets")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format=path.suffix.lstrip(".").lower() or "png", dpi=100)
    plt.close(fig)
    return atomic_write(path, lambda handle: handle.write(buffer.getvalue()))


__all__ = ["MAX_PLOTTED_TARGETS", "plot_forecast"]
