"""Serving trained runs: :func:`load` gives a run's predictor; :mod:`rnnlab.serving.app` is
its HTTP JSON API and :mod:`rnnlab.serving.server` runs it (``rnnlab serve RUN_DIR``).

Example (a trained run)::

    >>> import rnnlab
    >>> rnnlab.load("runs/etth1-gru").forecast(csv_text=open("recent.csv").read())  # doctest: +SKIP
"""

from rnnlab.serving.load import SERVED_TASKS, load
from rnnlab.serving.predictors import (
    ForecastPredictor,
    LanguagePredictor,
    Predictor,
    RequestError,
    SpeechPredictor,
)

__all__ = [
    "SERVED_TASKS",
    "ForecastPredictor",
    "LanguagePredictor",
    "Predictor",
    "RequestError",
    "SpeechPredictor",
    "load",
]
