"""The ``rnnlab compare`` and ``rnnlab diagnose`` commands, added to the main Typer app.

``rnnlab.cli.main`` calls :func:`register` once; the commands only parse, call
:func:`rnnlab.analysis.comparison.workflow.compare` and
:func:`rnnlab.analysis.diagnose.diagnose_to_files`, and print.
"""

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from rnnlab.cli.guard import err, guard

if TYPE_CHECKING:
    from rnnlab.analysis.comparison.table import Row

out = Console(highlight=False)
wide = Console(highlight=False, width=None if out.is_terminal else 120)


def study_table(rows: "list[Row]") -> Table:
    """A Rich table of :func:`rnnlab.analysis.comparison.table.table_rows`."""
    from rnnlab.analysis.conclusions import metric_name

    table = Table(title="study results (test set, mean ± std over seeds)")
    for name, justify in (
        ("task", "left"),
        ("T", "right"),
        ("cell", "left"),
        ("metric", "left"),
        ("mean ± std", "right"),
        ("solved", "right"),
        ("parameters", "right"),
        ("s / 1000 steps", "right"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for r in rows:
        table.add_row(
            r.task,
            str(r.length),
            r.cell,
            metric_name(r.metric),
            r.value,
            r.solved_text,
            f"{r.parameters:,}",
            f"{r.seconds_per_1000_steps:.1f}",
        )
    return table


def compare(
    study: Annotated[
        Optional[str],  # noqa: UP045  (Typer reads the annotation at run time)
        typer.Argument(help="A study TOML file or a shipped study name (default simple-to-gated)."),
    ] = None,
    study_option: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--study", help="A shipped study name, e.g. 'full'."),
    ] = None,
    out_dir: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--out", help="Study directory (default studies/<name>); reruns resume."),
    ] = None,
    workers: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option("--workers", "-j", min=1, help="Local processes (default: the study's)."),
    ] = None,
    no_gradient_flow: Annotated[
        bool, typer.Option("--no-gradient-flow", help="Skip the gradient-flow analysis.")
    ] = False,
) -> None:
    """Run an architecture study (cells x settings x seeds) and write its report.

    With no argument, runs the shipped "simple to gated" study: tanh RNN vs LSTM vs GRU on
    the adding problem at several lengths and on the embedded Reber grammar. "claims" and
    "claims-quick" test dropout, clipping, depth, direction, cell type and the learning-rate
    / batch / BPTT settings on real data (PTB, FSDD, ETTh1), each claim with a verdict
    computed from its numbers. Before training, it says how many runs there are and how
    long they take at most; finished runs in the study directory are skipped, so an
    interrupted study resumes.

    Examples:

        rnnlab compare

        rnnlab compare --study full --workers 4

        RNNLAB_DATA=path/to/data rnnlab compare --study claims-quick

        rnnlab compare my-study.toml --out studies/mine
    """
    from rnnlab.analysis.comparison.study_spec import load_study
    from rnnlab.analysis.comparison.workflow import compare as run_compare

    if study is not None and study_option is not None:
        err.print("error: give a study as an argument or with --study, not both", markup=False)
        raise typer.Exit(2)
    start = time.perf_counter()

    def body() -> Any:
        cfg = load_study(study or study_option)
        out.print(f"study {cfg.name}: {cfg.description}")
        return run_compare(
            cfg, out_dir, workers=workers, progress=out.print, gradient_flow=not no_gradient_flow
        )

    result, report = guard(body, interrupted_hint="; run the same command again to resume")
    if report.rows:
        wide.print(study_table(report.rows))
    for section in report.claims:
        table = Table(title=section.claim.title or section.claim.name)
        for name in section.header:
            table.add_column(name)
        for row in section.rows:
            table.add_row(*row)
        wide.print(table)
    for sentence in report.sentences + report.gradient:
        out.print(f"- {sentence}", markup=False)
    out.print(
        f"wall time {time.perf_counter() - start:.0f} s; report: {result.out_dir / 'report.md'}"
        f" and report.html"
    )


def diagnose(
    config_or_run_dir: Annotated[
        str, typer.Argument(help="A run directory, a TOML config or a recipe name.")
    ],
    out_dir: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--out", help="Where plots and diagnosis.json go (default <run>/diagnosis)."),
    ] = None,
) -> None:
    """Gradient flow, gate and hidden-state statistics of a model, at init and trained.

    For a run directory, the model at initialization and with its trained weights; for a
    config or recipe, at initialization only.

    Examples:

        rnnlab diagnose runs/adding-lstm-20250101-120000

        rnnlab diagnose adding --out diag/
    """
    from rnnlab.analysis.diagnose import diagnose_to_files

    def body() -> Any:
        return diagnose_to_files(config_or_run_dir, out_dir)

    results, files = guard(body)
    table = Table(title="gradient flow and gates")
    for name in ("model", "loss", "||dL/dh_1|| / ||dL/dh_T||", "gates (mean / saturated)"):
        table.add_column(name)
    for stage, item in results.items():
        gates = ", ".join(f"{g.row} {g.gate} {g.mean:.2f}/{g.saturated:.2f}" for g in item.gates)
        ratios = ", ".join(f"{row} {value:.3g}" for row, value in item.flow.ratios().items())
        table.add_row(stage, f"{item.loss:.4g}", ratios, gates or "-")
    wide.print(table)
    out.print("plots: " + ", ".join(str(p) for p in files))


def register(app: typer.Typer) -> None:
    """Add ``compare`` and ``diagnose`` to the ``rnnlab`` app."""
    app.command("compare")(compare)
    app.command("diagnose")(diagnose)
