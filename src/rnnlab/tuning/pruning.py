"""Pruning: Optuna's pruners by name, and the trainer callback that feeds them (report each
validation, stop when told).

Example:
    >>> callback = PruningCallback(trial, "loss")                         # doctest: +SKIP
    >>> api.train(config, callbacks=[callback], quiet=None)               # doctest: +SKIP
    >>> callback.pruned                                                   # doctest: +SKIP
    True
"""

from __future__ import annotations

import optuna

from rnnlab.registry import suggest
from rnnlab.training.callbacks import Callback
from rnnlab.training.protocol import TrainerView
from rnnlab.tuning.failures import TuningError

PRUNERS = ("median", "hyperband", "halving", "none")


def make_pruner(name: str) -> optuna.pruners.BasePruner:
    """A pruner by name: ``median`` (default), ``hyperband``, ``halving`` or ``none``.

    ``median`` prunes a trial whose value at a step is worse than the median of earlier
    trials at that step, after 5 trials have finished; ``halving`` is asynchronous successive
    halving; ``hyperband`` runs several halving brackets. Steps are optimizer steps.

    ``NAME:STEPS`` (e.g. ``median:500``) never prunes before optimizer step ``STEPS``
    (median: ``n_warmup_steps``; halving and hyperband: ``min_resource``). Tasks whose loss
    sits on a plateau before it drops (the adding problem stays at the mean predictor for a
    while, then falls) need it: early values say nothing about which trial will drop.
    """
    base, _, warmup_text = name.partition(":")
    warmup = 0
    if warmup_text:
        if not warmup_text.isdigit():
            raise TuningError(
                f"pruner {name!r}: the part after ':' must be a whole number of steps"
            )
        warmup = int(warmup_text)
    if base == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=warmup)
    if base == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=warmup or 1)
    if base in ("halving", "successive_halving"):
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=warmup or "auto")
    if base == "none":
        return optuna.pruners.NopPruner()
    raise TuningError(
        f"unknown pruner {name!r}{suggest(name, PRUNERS)} (known: {', '.join(PRUNERS)})"
    )


class PruningCallback(Callback):
    """Report the validation metric to an Optuna trial after every validation evaluation
    (at the trainer's optimizer step), and stop training when ``trial.should_prune()``.

    Args:
        trial: the Optuna trial.
        metric: the validation metric reported (the config's ``train.monitor``).

    Attributes:
        pruned: whether the pruner stopped the run.
        reason: why, for the trial's record (``"pruned at step 64: valid loss 0.31"``).
    """

    name = "optuna_pruning"

    def __init__(self, trial: optuna.Trial, metric: str) -> None:
        self.trial = trial
        self.metric = metric
        self.pruned = False
        self.reason = ""

    def on_evaluate(self, trainer: TrainerView, split: str, metrics: dict[str, float]) -> None:
        if split != "valid" or self.pruned:
            return
        value = trainer.metric(metrics, self.metric, "train.monitor")
        self.trial.report(value, trainer.step)
        if self.trial.should_prune():
            self.pruned = True
            self.reason = f"pruned at step {trainer.step}: valid {self.metric} {value:.6g}"
            trainer.should_stop = True
            trainer.stop_reason = self.reason
