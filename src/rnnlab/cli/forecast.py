"""``rnnlab forecast RUN_DIR --input recent.csv``: forecast the next steps with a trained run.

The command parses its options, calls :func:`rnnlab.forecasting.predict.forecast` (which
documents what is read and written, and the errors) and prints where the files went::

    rnnlab forecast runs/etth1 --input recent.csv --out forecast.csv --plot forecast.png

What was done to the input (columns the run does not use were ignored, missing values or
timestamps were filled by the run's ``data.fill``) is printed as ``notice: ...`` lines on
stderr. ``--out`` and ``--plot`` are file paths; folders that do not exist yet are created.
Errors are one line on stderr with exit code 2 (:func:`rnnlab.cli.guard.guard`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from rnnlab.cli.guard import guard
from rnnlab.forecasting.predict import forecast

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``rnnlab forecast`` to ``app``."""

    @app.command("forecast")
    def forecast_command(
        run_dir: Annotated[Path, typer.Argument(help="A run directory of task 'forecasting'.")],
        input_file: Annotated[
            Path, typer.Option("--input", "-i", help="Recent rows (CSV/TSV/Parquet).")
        ],
        out_file: Annotated[
            Path,
            typer.Option(
                "--out", "-o", help="The forecast CSV file to write (folders are created)."
            ),
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
            for notice in table.attrs.get("notices", ()):
                err.print(f"notice: {notice}", markup=False, soft_wrap=True)
            first, last = table.iloc[0, 0], table.iloc[-1, 0]
            out.print(
                f"forecast: {len(table)} steps ({first} .. {last}) -> {out_file}"
                + (f"; plot -> {plot}" if plot is not None else ""),
                markup=False,
                soft_wrap=True,
            )

        guard(body)


__all__ = ["register"]
