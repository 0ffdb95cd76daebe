"""The ``rnnlab`` command (Typer): parses arguments, calls ``rnnlab.api``, prints.

Exit codes: 0 success; 1 training failed (non-finite loss); 2 bad input (config, run
directory, checkpoint: one line on stderr, no traceback); 130/143 stopped by SIGINT/SIGTERM
after saving ``last.pt``.
"""

import json
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from rnnlab import __version__, api
from rnnlab.cli.guard import guard
from rnnlab.config import recipe_names
from rnnlab.errors import UserError
from rnnlab.training.run_dir import RunDir

app = typer.Typer(
    name="rnnlab",
    help="Recurrent neural networks: train, resume and evaluate runs.\n\n"
    "Example: rnnlab train adding --set model.cell=gru",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(highlight=False)


def _version(value: bool) -> None:
    if value:
        out.print(f"rnnlab {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Recurrent neural networks: train, resume and evaluate runs.

    Examples:

        rnnlab train adding

        rnnlab train my.toml --set train.lr=0.5 --set model.cell=gru

        rnnlab train --resume runs/adding-lstm-20250101-120000

        rnnlab evaluate runs/adding-lstm-20250101-120000 --split test

        rnnlab runs
    """


@app.command()
def train(
    config: Annotated[
        Optional[str],  # noqa: UP045  (Typer reads the annotation at run time)
        typer.Argument(help="A TOML config file or a shipped recipe name (see 'rnnlab recipes')."),
    ] = None,
    overrides: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option(
            "--set", "-s", help="Override a config value: section.key=value (repeatable)."
        ),
    ] = None,
    run_dir: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--run-dir", help="Run directory (default: output.dir/output.name)."),
    ] = None,
    resume: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            "--resume", help="Continue the run in this directory from checkpoints/last.pt."
        ),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Plain log lines, no progress bar.")
    ] = False,
    budget: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--budget",
            help="Train within this wall time, e.g. 90s, 30m, 1h30m (sets train.time_budget).",
        ),
    ] = None,
) -> None:
    """Train a config or recipe, or resume a run.

    Examples:

        rnnlab train adding

        rnnlab train adding --set model.cell=gru --set train.epochs=3 --run-dir runs/gru

        rnnlab train --resume runs/gru

        rnnlab train ptb-small --budget 30m
    """

    def body() -> None:
        if config is None and resume is None:
            raise UserError("give a config file or recipe name, or --resume RUN_DIR")
        if config is not None and resume is not None:
            raise UserError(
                "give either a config or --resume RUN_DIR, not both (use --set to change settings)"
            )
        if run_dir is not None and resume is not None:
            raise UserError("--run-dir and --resume both name the run directory; give one")
        settings = [*(overrides or []), *([f"train.time_budget={budget}"] if budget else [])]
        result = api.train(config, overrides=settings, run_dir=run_dir, resume=resume, quiet=quiet)
        best = "-" if result.best is None else f"{result.best:.6g}"
        out.print(
            f"run: {result.run_dir}  status: {result.status}  steps: {result.step}  "
            f"best valid: {best}",
            markup=False,
            soft_wrap=True,
        )
        if result.test:
            test = result.test_shown or result.test
            shown = "  ".join(f"{k} {v:.4g}" for k, v in test.items())
            out.print(f"test ({result.test_checkpoint}): {shown}", markup=False, soft_wrap=True)

    guard(body)


@app.command()
def evaluate(
    run_dir: Annotated[Path, typer.Argument(help="A run directory.")],
    split: Annotated[str, typer.Option("--split", help="valid or test.")] = "test",
    checkpoint: Annotated[str, typer.Option("--checkpoint", help="best or last.")] = "best",
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON.")] = False,
) -> None:
    """Evaluate a run's checkpoint on a split.

    Examples:

        rnnlab evaluate runs/adding-lstm-20250101-120000

        rnnlab evaluate runs/adding-lstm-20250101-120000 --split valid --checkpoint last
    """

    def body() -> None:
        if checkpoint not in ("best", "last"):
            raise UserError(f"--checkpoint {checkpoint!r} is not allowed (allowed: best, last)")
        metrics = api.evaluate(run_dir, split=split, checkpoint=checkpoint)  # type: ignore[arg-type]
        used = RunDir(run_dir).find_checkpoint(checkpoint)  # type: ignore[arg-type]
        if as_json:
            out.print(json.dumps(metrics), markup=False, soft_wrap=True)
            return
        table = Table(title=f"{run_dir} ({split}, {used.name})")
        table.add_column("metric")
        table.add_column("value", justify="right")
        for key, value in metrics.items():
            table.add_row(key, f"{value:.6g}")
        out.print(table)

    guard(body)


@app.command()
def runs(
    directory: Annotated[Path, typer.Argument(help="The folder holding run directories.")] = Path(
        "runs"
    ),
) -> None:
    """List the runs in a folder with their key metrics.

    Example:

        rnnlab runs runs/
    """

    def body() -> None:
        summaries = api.list_runs(directory)
        monitor = summaries[0].monitor if summaries else "loss"
        table = Table(title=f"runs in {directory}", caption=f"metric: {monitor}")
        table.add_column("run", overflow="fold")
        for column in ("task", "cell", "status"):
            table.add_column(column, no_wrap=True)
        for column in ("epoch", "step", "best valid", "test"):
            table.add_column(column, justify="right", no_wrap=True)
        for run in summaries:
            best = "-" if run.best is None else f"{run.best:.4g}"
            test = run.test.get(run.monitor)
            table.add_row(
                run.path.name,
                run.task,
                run.cell,
                run.status,
                str(run.epoch),
                str(run.step),
                best,
                "-" if test is None else f"{test:.4g}",
            )
        out.print(table)

    guard(body)


@app.command()
def recipes() -> None:
    """List the recipes shipped with rnnlab.

    Example:

        rnnlab recipes
    """
    for name in recipe_names():
        out.print(name, markup=False, soft_wrap=True)


def _register_command_groups() -> None:
    from rnnlab.cli import compare, data, export, forecast, generate, recognize, serve, tune

    for module in (compare, tune, generate, forecast, recognize, serve, export, data):
        module.register(app)


_register_command_groups()


def run(argv: Optional[list[str]] = None) -> Any:  # noqa: UP045
    """Run the app (for ``python -m rnnlab``)."""
    return app(args=argv if argv is not None else sys.argv[1:], prog_name="rnnlab")
