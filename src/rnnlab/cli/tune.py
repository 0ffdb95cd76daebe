"""The ``rnnlab tune`` command: parses, calls :func:`rnnlab.tuning.search.tune`, prints.

``rnnlab.cli.main`` adds it with ``register(app)``.
"""

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console

from rnnlab.cli.guard import guard

out = Console(highlight=False)


def tune_command(
    config: Annotated[str, typer.Argument(help="A TOML config file or a shipped recipe name.")],
    space: Annotated[
        Optional[str],  # noqa: UP045  (Typer reads the annotation at run time)
        typer.Option(
            "--space", help="A search-space TOML file or shipped space (default: the recipe's)."
        ),
    ] = None,
    trials: Annotated[
        int, typer.Option("--trials", "-n", help="Total finished trials the study should have.")
    ] = 20,
    storage: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--storage", help="RDB URL (default: sqlite file in the study directory)."),
    ] = None,
    study: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--study", help="Study name (default: the config or recipe name)."),
    ] = None,
    study_dir: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--study-dir", help="Study directory (default: output.dir/studies/NAME)."),
    ] = None,
    workers: Annotated[
        int, typer.Option("--workers", "-w", help="Local processes sharing the storage.")
    ] = 1,
    timeout: Annotated[
        Optional[float],  # noqa: UP045
        typer.Option("--timeout", help="Seconds after which no new trial starts."),
    ] = None,
    sampler: Annotated[str, typer.Option("--sampler", help="tpe, random or cmaes.")] = "tpe",
    pruner: Annotated[
        str,
        typer.Option(
            "--pruner",
            help="median, hyperband, halving or none; NAME:STEPS never prunes before step STEPS.",
        ),
    ] = "median",
    seed: Annotated[int, typer.Option("--seed", help="Sampler seed.")] = 0,
    overrides: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option("--set", "-s", help="Override a base config value: section.key=value."),
    ] = None,
) -> None:
    """Search hyperparameters with Optuna; re-running the same command resumes the study.

    Writes trials.csv, best.toml (ready for 'rnnlab train') and plots to the study directory.

    Examples:

        rnnlab tune adding --trials 30

        rnnlab tune my.toml --space my-space.toml --trials 50 --workers 2 --pruner hyperband
    """
    from rnnlab.tuning.outputs import result_table
    from rnnlab.tuning.search import tune

    def body() -> Any:
        return tune(
            config,
            space,
            trials=trials,
            overrides=overrides or [],
            study_name=study,
            study_dir=study_dir,
            storage=storage,
            sampler=sampler,
            pruner=pruner,
            seed=seed,
            workers=workers,
            timeout=timeout,
            verbose=True,
        )

    result = guard(body, interrupted_hint="; run the same command again to resume the study")
    out.print(result_table(result))
    counts = "  ".join(f"{k} {v}" for k, v in sorted(result.counts.items()))
    out.print(f"study: {result.study_dir}  trials: {counts}", markup=False)
    if result.best_value is not None:
        out.print(f"best valid: {result.best_value:.6g}  config: {result.best_toml}", markup=False)
        out.print(f"train it: rnnlab train {result.best_toml}", markup=False)
    out.print(f"table: {result.trials_csv}", markup=False)
    for plot in result.plots:
        out.print(f"plot: {plot}", markup=False)


def register(app: typer.Typer) -> None:
    """Add the ``tune`` command to the ``rnnlab`` Typer app."""
    app.command("tune")(tune_command)
