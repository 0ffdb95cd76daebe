"""``rnnlab recognize``: transcribe recordings with a trained speech run.

The work is :func:`rnnlab.speech.recognize.recognize` (Python first); this module only parses
arguments and prints. Each file gets one line on stdout (or one entry of a JSON list with
``--json``); notices (conversions to mono or to the run's sample rate) go to stderr. A file
that cannot be used (missing, empty, not audio, corrupt, longer than the maximum) gets a
one-line error on stderr and the batch goes on; the exit code is then 2. So does a recording
shorter than one feature window. A silent recording (peak below -60 dBFS, see
:mod:`rnnlab.speech.screening`) is a valid answer, not an error: ``silent.wav: no speech
found`` on stdout (``"speech": false`` and ``"digit": null`` or an empty transcript in JSON),
the notice with its level on stderr, and the exit code stays 0.

Examples::

    rnnlab recognize runs/fsdd-gru 7_theo_3.wav
    rnnlab recognize runs/fsdd-ctc utterance.wav --beam 8 --json
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console

from rnnlab.cli.guard import guard

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


def format_result(result: dict[str, Any]) -> str:
    """One line for one file's result (see :func:`rnnlab.speech.recognize.recognize`).

    Example:
        >>> format_result({"file": "a.wav", "digit": 7, "word": "seven", "confidence": 0.98})
        'a.wav: 7 (seven, confidence 0.980)'
        >>> format_result({"file": "b.wav", "transcript": "three one"})
        'b.wav: three one'
        >>> format_result({"file": "c.wav", "speech": False, "digit": None})
        'c.wav: no speech found'
    """
    name = result["file"]
    if "error" in result:
        return f"{name}: error: {result['error']}"
    if result.get("speech") is False:
        return f"{name}: no speech found"
    if "digit" in result:
        return (
            f"{name}: {result['digit']} ({result['word']}, confidence {result['confidence']:.3f})"
        )
    return f"{name}: {result['transcript'] or '(nothing recognized)'}"


def detail_lines(result: dict[str, Any]) -> list[str]:
    """Indented word times and confidences, and the latency, of a sentence result.

    Example:
        >>> detail_lines({"transcript": "hi", "decoding": "greedy",
        ...               "words": [{"word": "hi", "start": 0.1, "end": 0.4, "confidence": 0.9}]})
        ['  hi 0.10-0.40s (confidence 0.900)']
    """
    if "decoding" not in result:  # digits and connected digits keep their one line
        return []
    lines = [
        f"  {w['word']} {w['start']:.2f}-{w['end']:.2f}s (confidence {w['confidence']:.3f})"
        for w in result.get("words", ())
    ]
    latency = result.get("latency")
    if latency:
        lines.append(
            f"  latency per {latency['chunk_ms']:g} ms chunk: median {latency['median_ms']:.2f} ms,"
            f" p95 {latency['p95_ms']:.2f} ms ({latency['chunks']} chunks)"
        )
    return lines


def register(app: typer.Typer) -> None:
    """Add the ``recognize`` command to ``app``."""

    @app.command("recognize")
    def recognize_command(
        run_dir: Annotated[Path, typer.Argument(help="A speech-digits or speech-ctc run.")],
        files: Annotated[list[Path], typer.Argument(help="WAV or FLAC files.")],
        beam: Annotated[
            int, typer.Option("--beam", help="CTC beam width (1: greedy decoding).")
        ] = 1,
        as_json: Annotated[
            bool, typer.Option("--json", help="Print JSON, with per-word times (CTC).")
        ] = False,
        checkpoint: Annotated[str, typer.Option(help="best or last.")] = "best",
        max_seconds: Annotated[
            Optional[float],  # noqa: UP045 (typer reads the annotation)
            typer.Option(help="Longest recording accepted (default: the run's data.max_seconds)."),
        ] = None,
        lm: Annotated[
            bool,
            typer.Option("--lm", help="Sentence runs: beam search with the run's word LM."),
        ] = False,
        stream: Annotated[
            Optional[float],  # noqa: UP045
            typer.Option(
                "--stream",
                help="Sentence runs: recognize chunk by chunk, chunks of this many ms "
                "(a unidirectional model); prints the per-chunk latency.",
            ),
        ] = None,
        alpha: Annotated[
            Optional[float],  # noqa: UP045
            typer.Option(help="LM weight (default: the value tuned on valid)."),
        ] = None,
        beta: Annotated[
            Optional[float],  # noqa: UP045
            typer.Option(help="Word insertion bonus (default: the value tuned on valid)."),
        ] = None,
        warps: Annotated[
            Optional[str],  # noqa: UP045
            typer.Option(
                "--warps",
                help="Digit runs: average over these VTLP warps, e.g. 0.85,1.0,1.15 "
                "(helps voices unlike the training speakers').",
            ),
        ] = None,
    ) -> None:
        """Print each file's transcript (CTC runs) or digit and confidence (digit runs).

        Examples:

            rnnlab recognize runs/fsdd-gru 7_theo_3.wav

            rnnlab recognize runs/fsdd-gru-robust 7.wav --warps 0.75,0.85,0.95,1.05,1.15,1.25

            rnnlab recognize runs/fsdd-ctc a.wav b.wav --beam 8 --json

            rnnlab recognize runs/sentences a.flac --lm --json

            rnnlab recognize runs/sentences-uni a.flac --stream 160
        """
        from rnnlab.errors import UserError
        from rnnlab.speech.recognize import recognize

        failed: list[str] = []

        def body() -> None:
            nonlocal failed
            if checkpoint not in ("best", "last"):
                raise UserError(f"--checkpoint {checkpoint!r} is not allowed (allowed: best, last)")
            results = recognize(
                run_dir,
                files,
                beam_width=beam,
                checkpoint=checkpoint,  # type: ignore[arg-type]
                max_seconds=max_seconds,
                lm=lm,
                stream_ms=stream,
                alpha=alpha,
                beta=beta,
                warps=warps,
            )
            for result in results:
                for notice in result.get("notices", ()):
                    err.print(f"notice: {notice}", markup=False, soft_wrap=True)
                if "error" in result:
                    failed.append(str(result["file"]))
                    err.print(f"error: {result['error']}", markup=False, soft_wrap=True)
                elif not as_json:
                    out.print(format_result(result), markup=False, soft_wrap=True)
                    for line in detail_lines(result):
                        out.print(line, markup=False, soft_wrap=True)
            if as_json:
                out.print(json.dumps(results, indent=2), markup=False, soft_wrap=True)

        guard(body)
        if failed:
            err.print(
                f"notice: {len(failed)} of {len(files)} files failed: {', '.join(failed)}",
                markup=False,
                soft_wrap=True,
            )
            raise typer.Exit(2)
