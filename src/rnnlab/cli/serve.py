"""``rnnlab serve``: answer HTTP JSON requests with a trained run.

The work is :func:`rnnlab.serving.server.serve` (the predictor is :func:`rnnlab.load`, the
routes are :mod:`rnnlab.serving.app`); this module parses the options, calls it and prints
where it listens. A run that cannot be loaded or an address that cannot be listened on is
one line on stderr and exit code 2; Ctrl-C or SIGTERM stops the server gracefully (the
requests in progress are answered first) with exit code 0.

Examples::

    rnnlab serve runs/ptb-small
    rnnlab serve runs/etth1-gru --host 0.0.0.0 --port 8080 --max-body-mb 2
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from rnnlab.cli.guard import guard
from rnnlab.errors import UserError

out = Console(highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add the ``serve`` command to ``app``."""

    @app.command("serve")
    def serve_command(
        run_dir: Annotated[
            Path, typer.Argument(help="A language, forecasting or speech run directory.")
        ],
        host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0: all).")] = (
            "127.0.0.1"
        ),
        port: Annotated[int, typer.Option(help="TCP port (0: a free one).")] = 8000,
        checkpoint: Annotated[str, typer.Option(help="best or last.")] = "best",
        max_body_mb: Annotated[
            float, typer.Option("--max-body-mb", help="Largest request body, in MiB.")
        ] = 10.0,
        device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
        access_log: Annotated[
            bool, typer.Option("--access-log", help="Log one line per request.")
        ] = False,
        threads: Annotated[
            Optional[int],  # noqa: UP045 (typer reads the annotation)
            typer.Option(help="torch threads (default: torch's; 1 suits small models)."),
        ] = None,
    ) -> None:
        """Serve a trained run over HTTP: /generate, /forecast or /recognize, and /health.

        Examples:

            rnnlab serve runs/ptb-small

            curl -s localhost:8000/generate --json '{"prompt": "the", "length": 20}'

            rnnlab serve runs/fsdd-gru --port 8080

            curl -s localhost:8080/recognize -F file=@7_theo_3.wav
        """
        from rnnlab.serving.server import serve

        def body() -> None:
            if not (math.isfinite(max_body_mb) and max_body_mb > 0):
                raise UserError(f"--max-body-mb must be a positive number, got {max_body_mb}")

            def ready(url: str) -> None:
                out.print(f"serving {run_dir} on {url} (Ctrl-C stops)", markup=False)

            stopped = serve(
                run_dir,
                host,
                port,
                checkpoint=checkpoint,
                device=device,
                max_body_bytes=max(1, int(max_body_mb * 1024 * 1024)),
                access_log=access_log,
                threads=threads,
                on_ready=ready,
            )
            out.print(f"stopped{f' ({stopped})' if stopped else ''}", markup=False)

        guard(body)
