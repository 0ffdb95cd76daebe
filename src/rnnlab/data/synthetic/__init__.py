"""Generated sequence tasks with known difficulty, deterministic given a seed.

Every generator takes a seed (the same seed gives the same data) and documents the score of
the baseline a model without memory reaches, so a study can say whether a cell beat it. One
module per task:

- :mod:`~rnnlab.data.synthetic.adding`: :func:`adding_problem` (Hochreiter and Schmidhuber
  1997; Le et al. 2015): sum the two marked values of ``T`` steps; the mean predictor scores
  MSE ``1/6 ~ 0.167``.
- :mod:`~rnnlab.data.synthetic.copying`: :func:`copy_memory` (Arjovsky et al. 2016): remember
  10 symbols over ``T`` steps; the memoryless baseline has cross-entropy ``10 log(8) / (T + 20)``.
- :mod:`~rnnlab.data.synthetic.reber`: :func:`embedded_reber` (Fahlman 1991; Hochreiter and
  Schmidhuber 1997): next-symbol prediction on strings of the embedded Reber grammar, with the
  one long-range dependency marked; :func:`is_reber` and :func:`is_embedded_reber` check strings.
- :mod:`~rnnlab.data.synthetic.chaotic`: :func:`mackey_glass` (Mackey and Glass 1977): the
  chaotic delay-differential series with ``tau = 17``.
- :mod:`~rnnlab.data.synthetic.forecast_pairs`: :func:`prediction_windows` cuts one-step or
  multi-step forecasting pairs from a series.
"""

from __future__ import annotations

from rnnlab.data.synthetic.adding import ADDING_MEAN_PREDICTOR_MSE, adding_problem
from rnnlab.data.synthetic.chaotic import mackey_glass
from rnnlab.data.synthetic.copying import (
    COPY_ALPHABET_SIZE,
    COPY_BLANK,
    COPY_MEMORY_LENGTH,
    copy_memory,
    copy_memory_baseline_accuracy,
    copy_memory_baseline_cross_entropy,
    copy_memory_delimiter,
    copy_memory_vocabulary_size,
)
from rnnlab.data.synthetic.forecast_pairs import prediction_windows
from rnnlab.data.synthetic.reber import (
    REBER_SYMBOLS,
    ReberBatch,
    embedded_reber,
    is_embedded_reber,
    is_reber,
)

__all__ = [
    "ADDING_MEAN_PREDICTOR_MSE",
    "COPY_ALPHABET_SIZE",
    "COPY_BLANK",
    "COPY_MEMORY_LENGTH",
    "REBER_SYMBOLS",
    "ReberBatch",
    "adding_problem",
    "copy_memory",
    "copy_memory_baseline_accuracy",
    "copy_memory_baseline_cross_entropy",
    "copy_memory_delimiter",
    "copy_memory_vocabulary_size",
    "embedded_reber",
    "is_embedded_reber",
    "is_reber",
    "mackey_glass",
    "prediction_windows",
]
