"""Optuna samplers by name: ``tpe`` (default), ``random`` or ``cmaes``."""

from __future__ import annotations

import importlib.util

import optuna

from rnnlab.registry import suggest
from rnnlab.tuning.failures import TuningError
from rnnlab.tuning.space import SearchSpace

SAMPLERS = ("tpe", "random", "cmaes")


def make_sampler(name: str, seed: int | None, space: SearchSpace) -> optuna.samplers.BaseSampler:
    """A sampler by name: ``tpe`` (default), ``random`` or ``cmaes``.

    Raises:
        TuningError: an unknown name, or ``cmaes`` for a space it does not apply to.
    """
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "cmaes":
        others = [p.path for p in space.params if p.kind == "choice" or p.when]
        if others:
            raise TuningError(
                f"sampler 'cmaes' applies to numeric entries without conditions; "
                f"{space.source} has {', '.join(others)} (use tpe or random)"
            )
        if importlib.util.find_spec("cmaes") is None:
            raise TuningError("sampler 'cmaes' needs the cmaes package (pip install cmaes)")
        return optuna.samplers.CmaEsSampler(seed=seed)
    raise TuningError(
        f"unknown sampler {name!r}{suggest(name, SAMPLERS)} (known: tpe, random, cmaes)"
    )
