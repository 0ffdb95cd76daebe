"""``rnnlab generate``: stream text from a trained language model.

The work is :func:`rnnlab.language.run.generate_from_run`; this module parses the options,
calls it, prints its warnings on stderr and streams the prompt and the pieces to stdout.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from rnnlab.cli.guard import guard
from rnnlab.language.run import generate_from_run

err = Console(stderr=True, highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add the ``generate`` command to ``app``."""

    @app.command("generate")
    def generate_command(
        run_dir: Annotated[Path, typer.Argument(help="A run directory of task 'language'.")],
        prompt: Annotated[str, typer.Option(help="Text to continue (may be empty).")] = "",
        length: Annotated[int, typer.Option(help="Tokens to generate (1 to 100000).")] = 100,
        temperature: Annotated[
            float, typer.Option(help="Softmax temperature in (0, 100]; below 1 is greedier.")
        ] = 1.0,
        top_k: Annotated[
            Optional[int],  # noqa: UP045 (typer reads the annotation)
            typer.Option("--top-k", help="Sample among the k most likely tokens only."),
        ] = None,
        seed: Annotated[
            Optional[int],  # noqa: UP045
            typer.Option(help="Sampling seed: the same seed gives the same text."),
        ] = None,
        checkpoint: Annotated[str, typer.Option(help="best or last.")] = "best",
        device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    ) -> None:
        """Continue a prompt with text sampled from a trained language model, streaming.

        Prompt tokens outside the vocabulary become <unk> (with a warning on stderr).

        Examples:

            rnnlab generate runs/ptb-small --prompt "the company said" --length 50

            rnnlab generate runs/shakespeare --prompt "ROMEO:" --temperature 0.8 --seed 1
        """

        def body() -> None:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                pieces = generate_from_run(
                    run_dir,
                    prompt,
                    length,
                    temperature=temperature,
                    top_k=top_k,
                    seed=seed,
                    checkpoint=checkpoint,
                    device=device,
                )
            for warning in caught:
                err.print(f"warning: {warning.message}", markup=False)
            sys.stdout.write(prompt)
            for piece in pieces:
                sys.stdout.write(piece)
                sys.stdout.flush()
            sys.stdout.write("\n")
            sys.stdout.flush()

        guard(body)
