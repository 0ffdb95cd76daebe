"""Shared pieces of the fuzz suite: bounded Hypothesis settings, the CLI driver and the
property every generated case must keep.

The property (the reliability issue's): the command exits 0 (fine) or 2 (a clean refusal),
prints no traceback, an error is one line starting ``error:``, and every file that existed
before the command is byte-identical afterwards.

Example counts are small so that the whole suite stays fast; set ``RNNLAB_FUZZ_EXAMPLES`` to
raise every count to at least that number for a long hand run. Runs are derandomized and use
no example database, so CI sees the same cases every time.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import traceback
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from click.testing import Result
from hypothesis import HealthCheck, Phase, settings
from typer.testing import CliRunner

from rnnlab.cli import app

F = TypeVar("F", bound=Callable[..., Any])

LONG_RUN = int(os.environ.get("RNNLAB_FUZZ_EXAMPLES", "0") or "0")
# RNNLAB_FUZZ_VERBOSE=1 (with pytest -s) prints each case's exit code and first stderr line
VERBOSE = bool(os.environ.get("RNNLAB_FUZZ_VERBOSE"))
# RNNLAB_FUZZ_NO_SHRINK=1 reports a failing case as found, without minimizing it first
PHASES = [p for p in Phase if not (os.environ.get("RNNLAB_FUZZ_NO_SHRINK") and p is Phase.shrink)]

runner = CliRunner()


def fuzz(examples: int) -> Callable[[F], F]:
    """Hypothesis settings for one fuzz test: ``examples`` cases (or ``RNNLAB_FUZZ_EXAMPLES``
    if larger), no deadline, derandomized, no database, no shrinking budget surprises."""
    return settings(
        max_examples=max(examples, LONG_RUN),
        deadline=None,
        derandomize=True,
        database=None,
        phases=PHASES,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
            HealthCheck.function_scoped_fixture,
        ],
    )


def sets(*items: str) -> list[str]:
    """``--set`` options for each ``key=value`` item."""
    out: list[str] = []
    for item in items:
        out += ["--set", item]
    return out


def snapshot(*roots: Path) -> dict[str, str]:
    """SHA-256 of every file under ``roots`` (a root may itself be a file), by path."""
    hashes: dict[str, str] = {}
    for root in roots:
        files: Iterable[Path] = [root] if root.is_file() else sorted(root.rglob("*"))
        for path in files:
            if path.is_file():
                hashes[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return hashes


def scratch(root: Path) -> Path:
    """A fresh folder for one generated case."""
    return Path(tempfile.mkdtemp(dir=root))


def copy_run(run: Path, root: Path) -> Path:
    """A private copy of a trained run directory, so that cases cannot affect each other."""
    target = scratch(root) / run.name
    shutil.copytree(run, target)
    return target


def invoke(args: Sequence[str]) -> Result:
    """Run ``rnnlab ARGS`` in-process (stdout and stderr kept apart)."""
    return runner.invoke(app, [str(arg) for arg in args], catch_exceptions=True)


def describe(result: Result, args: Sequence[str]) -> str:
    """What a failing case prints: the command, exit code, output and any traceback."""
    lines = [f"command: rnnlab {' '.join(repr(str(a)) for a in args)}"]
    lines.append(f"exit code: {result.exit_code}")
    lines.append(f"stdout:\n{result.stdout}")
    lines.append(f"stderr:\n{result.stderr}")
    if result.exc_info is not None and not isinstance(result.exception, SystemExit):
        lines.append("traceback:\n" + "".join(traceback.format_exception(*result.exc_info)))
    return "\n".join(lines)


def check(
    args: Sequence[str],
    before: dict[str, str],
    *,
    errors_allowed: int = 1,
    may_change: Callable[[str], bool] = lambda path: False,
) -> Result:
    """Run ``rnnlab ARGS`` and assert the fuzz property.

    Args:
        args: the command line.
        before: :func:`snapshot` of the files that must be unchanged.
        errors_allowed: the most ``error:`` lines on stderr (``recognize`` gives one per bad
            file; every other command one at most).
        may_change: files (by path) the command is asked to write when it succeeds.

    Returns:
        The result, for checks of its own.
    """
    result = invoke(args)
    shown = describe(result, args)
    if VERBOSE:
        print(f"fuzz: {args[0]} exit {result.exit_code}: {result.stderr.strip()[:150]!r}")
    assert result.exit_code in (0, 2), shown
    exception = result.exception
    assert exception is None or isinstance(exception, SystemExit), shown
    assert "Traceback" not in result.output, shown
    problems = [line for line in result.stderr.splitlines() if not line.startswith("notice: ")]
    if result.exit_code == 2:
        assert problems, shown
        assert 1 <= len(problems) <= errors_allowed, shown
        assert all(line.startswith("error: ") for line in problems), shown
    else:
        assert not [line for line in problems if line.startswith("error")], shown
    after = snapshot(*{Path(path) for path in before})
    for path, digest in before.items():
        if result.exit_code == 0 and may_change(path):
            continue
        assert after.get(path) == digest, f"{path} changed or vanished\n{shown}"
    return result
