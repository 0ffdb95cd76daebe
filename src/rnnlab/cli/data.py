"""``rnnlab data list | fetch``: the named data sets (``rnnlab.data.datasets``) from the shell."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from rnnlab.cli.guard import guard
from rnnlab.data import datasets

out = Console(highlight=False)


def register(app: typer.Typer) -> None:
    """Add the ``data`` command group to ``app``."""
    data_app = typer.Typer(help="Named data sets: list them, fetch them with checksums.")

    @data_app.command("list")
    def list_command(
        root: Annotated[
            Optional[Path],  # noqa: UP045 (typer reads the annotation)
            typer.Option(help="Data root to look in (default: $RNNLAB_DATA, then the cache)."),
        ] = None,
    ) -> None:
        """List the named data sets and where each was found.

        Example:

            RNNLAB_DATA=../shared/data rnnlab data list
        """

        def body() -> None:
            table = Table(title="rnnlab data sets")
            for column in ("name", "task", "files", "MB", "license", "found at"):
                table.add_column(column)
            for row in datasets.list_datasets(root):
                table.add_row(
                    row["name"],
                    row["task"],
                    str(row["files"]),
                    f"{row['size_bytes'] / 1e6:.1f}",
                    row["license"],
                    row["location"] or "-",
                )
            out.print(table)

        guard(body)

    @data_app.command("fetch")
    def fetch_command(
        name: Annotated[str, typer.Argument(help="A data set name from `rnnlab data list`.")],
        to: Annotated[
            Optional[Path],  # noqa: UP045
            typer.Option(help="Data root to write into (default: the cache)."),
        ] = None,
        force: Annotated[bool, typer.Option(help="Download even files already correct.")] = False,
    ) -> None:
        """Download a named data set, verify its sha256 sums and print where it is.

        Example:

            rnnlab data fetch ptb --to data
        """

        def body() -> None:
            path = datasets.fetch(name, to, force=force)
            out.print(str(path), markup=False, soft_wrap=True)

        guard(body)

    app.add_typer(data_app, name="data")
