"""Hyperparameter tuning with Optuna: search spaces, pruning, resumable and parallel studies.

This package is the only place rnnlab imports Optuna.

Example:
    >>> from rnnlab.tuning import tune
    >>> result = tune("adding", "adding", trials=30, pruner="median")      # doctest: +SKIP
    >>> result.best_toml                                                    # doctest: +SKIP
    PosixPath('runs/studies/adding/best.toml')
"""

from rnnlab.tuning.pruning import PruningCallback
from rnnlab.tuning.space import Param, SearchSpace, SearchSpaceError, space_names
from rnnlab.tuning.study import TuneResult, TuningError, tune

__all__ = [
    "Param",
    "PruningCallback",
    "SearchSpace",
    "SearchSpaceError",
    "TuneResult",
    "TuningError",
    "space_names",
    "tune",
]
