"""The trainer callback that feeds Optuna's pruner: report each validation, stop when told.

Example:
    >>> callback = PruningCallback(trial, "loss")                         # doctest: +SKIP
    >>> api.train(config, callbacks=[callback], quiet=None)               # doctest: +SKIP
    >>> callback.pruned                                                   # doctest: +SKIP
    True
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import optuna

from rnnlab.training.callbacks import Callback

if TYPE_CHECKING:
    from rnnlab.training.trainer import Trainer


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

    def on_evaluate(self, trainer: Trainer, split: str, metrics: dict[str, float]) -> None:
        if split != "valid" or self.pruned:
            return
        value = trainer.metric(metrics, self.metric, "train.monitor")
        self.trial.report(value, trainer.step)
        if self.trial.should_prune():
            self.pruned = True
            self.reason = f"pruned at step {trainer.step}: valid {self.metric} {value:.6g}"
            trainer.should_stop = True
            trainer.stop_reason = self.reason
