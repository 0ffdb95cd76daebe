"""Hyperparameter tuning with Optuna: search spaces, pruning, resumable and parallel studies.

This package is the only place rnnlab imports Optuna. Its names load on first use, so that
``rnnlab.cli.tune`` can register the ``tune`` command without importing Optuna.

Example:
    >>> from rnnlab.tuning import tune
    >>> result = tune("adding", "adding", trials=30, pruner="median")      # doctest: +SKIP
    >>> result.best_toml                                                    # doctest: +SKIP
    PosixPath('runs/studies/adding/best.toml')
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rnnlab.tuning.failures import TuningError
    from rnnlab.tuning.pruning import PruningCallback
    from rnnlab.tuning.results import TuneResult
    from rnnlab.tuning.search import tune
    from rnnlab.tuning.space import Param, SearchSpace, SearchSpaceError, space_names

_HOMES = {
    "PruningCallback": "rnnlab.tuning.pruning",
    "Param": "rnnlab.tuning.space",
    "SearchSpace": "rnnlab.tuning.space",
    "SearchSpaceError": "rnnlab.tuning.space",
    "space_names": "rnnlab.tuning.space",
    "TuneResult": "rnnlab.tuning.results",
    "TuningError": "rnnlab.tuning.failures",
    "tune": "rnnlab.tuning.search",
}

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


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'rnnlab.tuning' has no attribute {name!r}")
