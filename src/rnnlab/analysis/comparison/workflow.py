"""What ``rnnlab compare`` does: run (or resume) a study, then write its report."""

from __future__ import annotations

import os
from collections.abc import Callable

from rnnlab.analysis.comparison.records import StudyResult
from rnnlab.analysis.comparison.runner import run_study
from rnnlab.analysis.comparison.study_report import Report, write_report
from rnnlab.analysis.comparison.study_spec import StudyConfig


def compare(
    study: StudyConfig | str | os.PathLike[str] | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    *,
    workers: int | None = None,
    progress: Callable[[str], None] | None = None,
    gradient_flow: bool = True,
) -> tuple[StudyResult, Report]:
    """What ``rnnlab compare`` does: run (or resume) a study, then write its report.

    Args:
        study, out_dir, workers, progress: as in
            :func:`~rnnlab.analysis.comparison.runner.run_study`.
        gradient_flow: also measure the gradient flow of the trained models.

    Returns:
        ``(result, report)``: the :class:`~rnnlab.analysis.comparison.records.StudyResult`
        and the :class:`~rnnlab.analysis.comparison.study_report.Report` (table rows,
        sentences, files).

    Example:
        >>> result, report = compare()            # doctest: +SKIP
        >>> print("\\n".join(report.sentences))   # doctest: +SKIP
    """
    result = run_study(study, out_dir, workers=workers, progress=progress)
    return result, write_report(result, gradient_flow=gradient_flow)
