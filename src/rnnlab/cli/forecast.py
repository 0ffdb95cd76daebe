"""``rnnlab forecast RUN_DIR --input recent.csv``: forecast the next steps with a trained run.

Python first: :func:`forecast` does the work and returns a ``pandas.DataFrame``; the
command only parses, calls it and prints where the files went::

    rnnlab forecast runs/etth1 --input recent.csv --out forecast.csv --plot forecast.png

What it reads:

- the run's ``config.toml``, ``checkpoints/best.pt`` (``last.pt`` when there is no best),
  ``scaler.json`` and ``forecast.json`` (written by
  :meth:`rnnlab.tasks.forecasting.ForecastingTask.write_run_files`; when a run lacks them
  they are rebuilt once from the training data named in its config and written there);
- the input file: the same columns as in training (time column, targets and covariates, in
  any order). Its most recent ``input_length`` rows are the history. When the model uses
  known-future covariates from the file, the input must continue with ``horizon`` more rows
  whose target cells are empty and whose future-covariate cells are filled.

What it writes: one row per forecast step with the timestamps (continuing the input on
the training frequency) and each target's forecast in original units, plus
``<target>_lower`` and ``<target>_upper`` (central interval at the run's
``interval_level``) for a Gaussian model; and, with ``--plot``, the history and the
forecast of each target.

Errors (one line, exit code 2 on the command line): a missing run file, an input whose
columns differ from training (the message lists the missing and unexpected ones), too few
rows, non-numeric or missing cells, a horizon longer than the model's.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Annotated, Any, Optional

import numpy as np
import pandas as pd
import torch
import typer
from rich.console import Console

from rnnlab import config as config_mod
from rnnlab.cli.guard import guard
from rnnlab.data.series import Scaler, SeriesError, calendar_features, series_from_frame
from rnnlab.errors import DataError, RunDirError, UserError
from rnnlab.io import atomic_write, atomic_write_text
from rnnlab.models.forecaster import prediction_interval
from rnnlab.tasks.base import DataSpec
from rnnlab.tasks.forecasting import META_FILE, SCALER_FILE, ForecastingTask
from rnnlab.training.checkpoint import load_checkpoint, load_model_state

out = Console(highlight=False)
MAX_PLOTTED_TARGETS = 8


def load_run(run_dir: str | Path) -> tuple[ForecastingTask, dict[str, Any], Scaler | None]:
    """The task, the run metadata and the scaler of a forecasting run directory.

    Raises:
        RunDirError: not a run directory, or not a forecasting run.
    """
    folder = Path(run_dir)
    source = folder / "config.toml"
    if not source.is_file():
        raise RunDirError(f"{folder} is not a run directory: {source} does not exist")
    cfg = config_mod.load(source)
    if cfg.task.name != "forecasting":
        raise RunDirError(
            f"{folder} is a run of task {cfg.task.name!r}; rnnlab forecast needs a "
            "'forecasting' run"
        )
    task = ForecastingTask(cfg)
    meta_path = folder / META_FILE
    if not meta_path.is_file():
        task.write_run_files(folder)  # rebuilt from the training data named in the config
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise RunDirError(f"{meta_path} is not valid JSON: {err}") from None
    scaler = None
    if meta.get("scaled"):
        try:
            scaler = Scaler.load(folder / SCALER_FILE)
        except SeriesError as err:
            raise RunDirError(str(err)) from None
    return task, meta, scaler


def _read_input(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(f"forecast input file not found: {path}")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(path)
        return pd.read_csv(path, sep="\t" if path.suffix.lower() == ".tsv" else ",")
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError, ImportError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(f"cannot read {path}: {first}") from None


def forecast(
    run_dir: str | Path,
    input_path: str | Path,
    *,
    horizon: int | None = None,
    out_path: str | Path | None = None,
    plot_path: str | Path | None = None,
    checkpoint: str = "best",
    device: str | None = None,
) -> pd.DataFrame:
    """Forecast from the most recent rows of ``input_path`` with the model of ``run_dir``.

    Args:
        run_dir: a run directory of the ``forecasting`` task.
        input_path: a CSV/TSV/Parquet file with the training columns.
        horizon: steps to forecast (default, and at most, the trained horizon).
        out_path: write the forecast table there as CSV (atomically).
        plot_path: draw history and forecast there (PNG, PDF, SVG by suffix).
        checkpoint: ``best`` (falls back to ``last``) or ``last``.
        device: where to run the model (default CPU).

    Returns:
        The forecast table: the time column, then per target its forecast (original units)
        and, for a Gaussian model, ``_lower``/``_upper`` interval bounds.

    Raises:
        UserError: see the module docstring (``DataError``, ``RunDirError``,
            ``CheckpointError``).
    """
    folder = Path(run_dir)
    task, meta, scaler = load_run(folder)
    trained = int(meta["horizon"])
    steps = trained if horizon is None else horizon
    if not 1 <= steps <= trained:
        raise UserError(f"--horizon {steps} is not allowed: this model forecasts 1 to {trained}")
    length = int(meta["input_length"])
    targets = list(meta["target_names"])
    past = list(meta["past_names"])
    future = list(meta["future_names"])
    columns = targets + past + future

    source = Path(input_path)
    frame = _read_input(source)
    time_name = meta.get("time_column") or (str(frame.columns[0]) if len(frame.columns) else "")
    found = [str(c) for c in frame.columns]
    expected = [time_name, *columns]
    if set(found) != set(expected):
        missing = [c for c in expected if c not in found]
        unexpected = [c for c in found if c not in expected]
        raise DataError(
            f"the columns of {source} differ from training: missing {missing}, unexpected "
            f"{unexpected} (training columns: {expected})"
        )
    frame = frame[expected]

    # history rows: every target present; trailing rows with empty targets carry the
    # known-future covariates of the horizon
    target_present = frame[targets].notna().all(axis=1).to_numpy()
    last_full = int(np.flatnonzero(target_present)[-1]) if target_present.any() else -1
    history_frame = frame.iloc[: last_full + 1]
    ahead = frame.iloc[last_full + 1 :]
    if len(history_frame) < length:
        raise DataError(
            f"{source} has {len(history_frame)} rows with every target filled; the model "
            f"reads the last input_length={length}"
        )
    history_frame = history_frame.iloc[-length:]
    try:
        history = series_from_frame(
            history_frame,
            time_column=time_name,
            targets=targets,
            past_covariates=past,
            future_covariates=future,
            calendar=meta["calendar"],
            calendar_encoding=meta["calendar_encoding"],
            source=str(source),
        )
    except SeriesError as err:
        raise DataError(str(err)) from None
    stamps = _future_timestamps(history.timestamps, meta.get("freq"), trained, source)

    values = history.values  # (L, C) original units, columns = targets + past + future
    scaled = scaler.transform(values, columns) if scaler is not None else values
    inputs = np.concatenate([scaled, history.calendar], axis=1)  # (L, C_in)
    known = _known_future(ahead, future, trained, source, scaler)  # (H, C_file_future)
    calendar = calendar_features(stamps, meta["calendar"], meta["calendar_encoding"])[0]
    future_inputs = np.concatenate([known, calendar], axis=1)  # (H, C_f)

    payload, path = _checkpoint(folder, checkpoint)
    spec = DataSpec(
        num_features=inputs.shape[1],
        output_size=len(targets),
        extra={"future_size": future_inputs.shape[1], "horizon": trained},
    )
    model = task.build_model(spec)
    load_model_state(model, payload["model"], path)
    target_device = torch.device(device or "cpu")
    model.to(target_device).eval()
    x = torch.as_tensor(inputs, dtype=torch.float32, device=target_device)[None]  # (1, L, C_in)
    f = torch.as_tensor(future_inputs, dtype=torch.float32, device=target_device)[None]
    with torch.no_grad():
        output = model(x, f)
    mean, variance = output if isinstance(output, tuple) else (output, None)

    def original(z: torch.Tensor) -> np.ndarray:
        array = z[0, :steps].detach().cpu().double().numpy()  # (steps, C_out)
        return scaler.inverse_transform(array, targets) if scaler is not None else array

    table = pd.DataFrame({time_name: stamps[:steps]})
    point = original(mean)
    bounds = None
    if variance is not None:
        lower, upper = prediction_interval(mean, variance, float(meta["interval_level"]))
        bounds = (original(lower), original(upper))
    for j, name in enumerate(targets):
        table[name] = point[:, j]
        if bounds is not None:
            table[f"{name}_lower"] = bounds[0][:, j]
            table[f"{name}_upper"] = bounds[1][:, j]
    if out_path is not None:
        atomic_write_text(Path(out_path), table.to_csv(index=False))
    if plot_path is not None:
        plot_forecast(history_frame, table, time_name, targets, Path(plot_path))
    return table


def _checkpoint(folder: Path, which: str) -> tuple[dict[str, Any], Path]:
    if which not in ("best", "last"):
        raise UserError(f"checkpoint={which!r} is not allowed (allowed: best, last)")
    path = folder / "checkpoints" / f"{which}.pt"
    if which == "best" and not path.is_file():
        path = folder / "checkpoints" / "last.pt"
    return load_checkpoint(path), path


def _future_timestamps(
    history: pd.DatetimeIndex, freq: str | None, steps: int, source: Path
) -> pd.DatetimeIndex:
    if freq is None:
        raise DataError(
            f"the training series had no regular frequency, so the forecast timestamps after "
            f"{source} cannot be generated"
        )
    return pd.date_range(history[-1], periods=steps + 1, freq=freq)[1:]


def _known_future(
    ahead: pd.DataFrame, names: list[str], steps: int, source: Path, scaler: Scaler | None
) -> np.ndarray:
    """``(H, C)`` scaled known-future covariates from the rows after the history."""
    if not names:
        return np.zeros((steps, 0))
    if len(ahead) < steps:
        raise DataError(
            f"the model uses known-future covariates {names}: {source} must continue with "
            f"{steps} rows after the history (targets empty), found {len(ahead)}"
        )
    rows = ahead.iloc[:steps][names]
    try:
        values = rows.apply(pd.to_numeric, errors="raise").to_numpy(dtype=np.float64)
    except (ValueError, TypeError) as err:
        raise DataError(f"non-numeric future covariate in {source}: {err}") from None
    if not np.isfinite(values).all():
        bad = int(np.flatnonzero(~np.isfinite(values).all(axis=1))[0])
        raise DataError(f"missing future covariate value in {source} at row {int(rows.index[bad])}")
    return scaler.transform(values, names) if scaler is not None else values


def plot_forecast(
    history: pd.DataFrame,
    table: pd.DataFrame,
    time_name: str,
    targets: list[str],
    path: Path,
) -> Path:
    """Draw each target's history and forecast (with its interval when present)."""
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


def register(app: typer.Typer) -> None:
    """Add ``rnnlab forecast`` to ``app``."""

    @app.command("forecast")
    def forecast_command(
        run_dir: Annotated[Path, typer.Argument(help="A run directory of task 'forecasting'.")],
        input_file: Annotated[
            Path, typer.Option("--input", "-i", help="Recent rows (CSV/TSV/Parquet).")
        ],
        out_file: Annotated[
            Path, typer.Option("--out", "-o", help="Where to write the forecast CSV.")
        ],
        horizon: Annotated[
            Optional[int],  # noqa: UP045 (typer reads the annotation)
            typer.Option(help="Steps to forecast (default: the trained horizon)."),
        ] = None,
        plot: Annotated[
            Optional[Path],  # noqa: UP045
            typer.Option(help="Also draw history and forecast to this image."),
        ] = None,
        checkpoint: Annotated[str, typer.Option(help="best or last.")] = "best",
        device: Annotated[
            Optional[str],  # noqa: UP045
            typer.Option(help="cpu, cuda, ... (default cpu)."),
        ] = None,
    ) -> None:
        """Forecast the steps after the most recent rows of --input with a trained run.

        Example:

            rnnlab forecast runs/etth1 --input recent.csv --out forecast.csv --plot f.png
        """

        def body() -> None:
            table = forecast(
                run_dir,
                input_file,
                horizon=horizon,
                out_path=out_file,
                plot_path=plot,
                checkpoint=checkpoint,
                device=device,
            )
            first, last = table.iloc[0, 0], table.iloc[-1, 0]
            out.print(
                f"forecast: {len(table)} steps ({first} .. {last}) -> {out_file}"
                + (f"; plot -> {plot}" if plot is not None else ""),
                markup=False,
                soft_wrap=True,
            )

        guard(body)


__all__ = ["forecast", "load_run", "plot_forecast", "register"]
