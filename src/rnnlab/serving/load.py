"""``rnnlab.load(RUN_DIR)``: the ready predictor for a trained run, whatever its task.

The run's ``config.toml`` says the task; the matching wing loads the model once:

================  =====================================  ===================================
task              predictor                              its method
================  =====================================  ===================================
language          :class:`~.predictors.LanguagePredictor`  ``generate(prompt, length, ...)``
forecasting       :class:`~.predictors.ForecastPredictor`  ``forecast(rows | csv_text=...)``
speech-digits     :class:`~.predictors.SpeechPredictor`    ``recognize(audio_bytes, name)``
speech-ctc        :class:`~.predictors.SpeechPredictor`    ``recognize(audio_bytes, name)``
================  =====================================  ===================================

Other tasks (adding, copy, Reber, ...) have nothing to predict for new inputs: a one-line
:class:`~rnnlab.errors.RunDirError`.

Example (a trained run)::

    >>> import rnnlab
    >>> predictor = rnnlab.load("runs/fsdd-gru")  # doctest: +SKIP
    >>> predictor.recognize(open("7.wav", "rb").read(), "7.wav")["digit"]  # doctest: +SKIP
    7
"""

from __future__ import annotations

import os

from rnnlab.errors import RunDirError
from rnnlab.serving.predictors import ForecastPredictor, LanguagePredictor, SpeechPredictor
from rnnlab.training.run_dir import RunDir, check_which

#: The tasks a run can be served for.
SERVED_TASKS = ("language", "forecasting", "speech-digits", "speech-ctc")

AnyPredictor = LanguagePredictor | ForecastPredictor | SpeechPredictor

__all__ = ["SERVED_TASKS", "AnyPredictor", "load"]


def load(
    run_dir: str | os.PathLike[str], checkpoint: str = "best", device: str = "cpu"
) -> AnyPredictor:
    """Load a trained run once and give the predictor for its task.

    Args:
        run_dir: a run directory (``config.toml`` and ``checkpoints/``).
        checkpoint: ``best`` (falls back to ``last`` when absent) or ``last``.
        device: where the model runs (``cpu``, ``cuda``, ...).

    Returns:
        A :class:`~rnnlab.serving.predictors.LanguagePredictor`,
        :class:`~rnnlab.serving.predictors.ForecastPredictor` or
        :class:`~rnnlab.serving.predictors.SpeechPredictor`; all three serialize their
        model calls, so one may be shared between threads.

    Raises:
        UserError: a bad ``checkpoint``; ``RunDirError``: not a run directory, or a task
            without a predictor; ``CheckpointError``: missing or unfitting weights.

    Example:
        >>> load("no/such/run")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        rnnlab.errors.RunDirError: ...
    """
    which = check_which(checkpoint)
    run = RunDir(run_dir).require()
    task = run.config().task.name
    if task == "language":
        from rnnlab.language.run import load_run

        return LanguagePredictor(load_run(run.path, which, device), run.path)
    if task == "forecasting":
        from rnnlab.forecasting.predict import load_forecaster

        return ForecastPredictor(load_forecaster(run.path, which, device))
    if task in ("speech-digits", "speech-ctc"):
        from rnnlab.speech.recognize import load_recognizer

        recognizer = load_recognizer(run.path, which, device)
        return SpeechPredictor(recognizer, run.find_checkpoint(which))
    raise RunDirError(
        f"{run.path} is a run of task {task!r}, which has no predictor (served tasks: "
        f"{', '.join(SERVED_TASKS)})"
    )
