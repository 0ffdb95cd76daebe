"""``rnnlab export``: write a trained run as ONNX, TorchScript or an exported program.

The work is :func:`rnnlab.export.export_run` (Python first); this module parses and prints
the paths, sizes and the largest difference from PyTorch on a test batch.

Examples::

    rnnlab export runs/ptb-small --format onnx --out ptb.onnx
    rnnlab export runs/fsdd-ctc --format torchscript --out ctc.pt --no-streaming
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from rnnlab.cli.guard import guard

out = Console(highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add the ``export`` command to ``app``."""

    @app.command("export")
    def export_command(
        run_dir: Annotated[Path, typer.Argument(help="A trained run directory.")],
        format: Annotated[
            str,
            typer.Option("--format", help="onnx, torchscript, exported-program (or onnx-legacy)."),
        ] = "onnx",
        out_path: Annotated[Path, typer.Option("--out", help="The file to write.")] = Path(
            "model.onnx"
        ),
        checkpoint: Annotated[str, typer.Option(help="best or last.")] = "best",
        streaming: Annotated[
            bool, typer.Option(help="Also export the step model (state in and out).")
        ] = True,
    ) -> None:
        """Export a run's model, run it on a test batch and print the largest difference.

        Examples:

            rnnlab export runs/ptb-small --format onnx --out ptb.onnx
        """

        def body() -> None:
            from rnnlab.export import export_run

            report = export_run(run_dir, format, out_path, checkpoint, streaming)
            out.print(
                f"{report.path} ({report.format}, {report.task}, {report.bytes:,} bytes): "
                f"largest difference from PyTorch {report.max_abs_diff:.3g}"
            )
            if report.step_path is not None:
                out.print(
                    f"{report.step_path} (step model, {report.step_bytes:,} bytes): "
                    f"largest difference from PyTorch {report.step_max_abs_diff:.3g}"
                )
            for note in report.notes:
                out.print(f"note: {note}")

        guard(body)
