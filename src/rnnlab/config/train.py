"""The trainer's sections: ``[train]`` (optimizer, schedule, early stopping, checkpoints) and
``[output]``."""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from rnnlab.config.durations import parse_duration
from rnnlab.config.sections import Probability, Section


class ConstantSchedule(Section):
    """``kind = "constant"``: the learning rate stays ``train.lr``."""

    kind: Literal["constant"] = "constant"


class StepSchedule(Section):
    """``kind = "step"``: after epoch ``start_epoch``, divide the rate by ``factor`` each epoch.

    With epochs numbered from 1, epoch ``e`` runs at ``lr / factor ** max(0, e - start_epoch)``
    (Zaremba et al. 2014, small PTB model: ``start_epoch = 4, factor = 2``).
    """

    kind: Literal["step"] = "step"
    start_epoch: int = Field(ge=0)
    factor: float = Field(gt=1.0)


class PlateauSchedule(Section):
    """``kind = "plateau"``: multiply the rate by ``factor`` when the metric stops improving.

    After ``patience`` evaluations in a row without a relative improvement of ``threshold``
    on the monitored metric (``metric``/``mode``, default ``train.monitor``), the rate is
    multiplied by ``factor`` (never below ``min_lr``) and the count starts again.
    """

    kind: Literal["plateau"] = "plateau"
    factor: float = Field(default=0.1, gt=0.0, lt=1.0)
    patience: int = Field(default=2, ge=0)
    threshold: float = Field(default=1e-4, ge=0.0)
    min_lr: float = Field(default=0.0, ge=0.0)
    metric: str | None = None
    mode: Literal["min", "max"] | None = None


class CosineSchedule(Section):
    """``kind = "cosine"``: linear warm-up over ``warmup_steps``, then a cosine to ``min_lr``.

    At step ``s`` (0-based, ``S`` total steps, ``W`` warm-up steps)::

        lr(s) = lr * (s + 1) / W                                            s < W
        lr(s) = min_lr + (lr - min_lr) * (1 + cos(pi * (s - W) / (S - W))) / 2  otherwise
    """

    kind: Literal["cosine"] = "cosine"
    warmup_steps: int = Field(default=0, ge=0)
    min_lr: float = Field(default=0.0, ge=0.0)


class BudgetSchedule(Section):
    """``kind = "budget"``: warm-up, then a decay to ``min_lr``, over ``train.time_budget``.

    Progress ``p`` is the fraction of the training time used (wall time against the budget
    less the time kept for the final evaluation and checkpoint; or the fraction of
    ``epochs``/``max_steps`` done, when that is larger). With ``w`` the warm-up fraction
    and ``q = (p - w) / (1 - w)``::

        lr(p) = lr * p / w                                              p < w
        lr(p) = min_lr + (lr - min_lr) * (1 + cos(pi * q)) / 2          decay = "cosine"
        lr(p) = min_lr + (lr - min_lr) * (1 - q)                        decay = "linear"

    Attributes:
        decay: ``cosine`` or ``linear``.
        warmup: a fraction of the budget in [0, 1) (``0.05``) or a duration (``"2m"``).
        min_lr: the rate at the end of the budget.
    """

    kind: Literal["budget"] = "budget"
    decay: Literal["cosine", "linear"] = "cosine"
    warmup: float | str = 0.0
    min_lr: float = Field(default=0.0, ge=0.0)

    @field_validator("warmup")
    @classmethod
    def _warmup(cls, value: float | str) -> float | str:
        if isinstance(value, str):
            parse_duration(value)
        elif not 0.0 <= value < 1.0:
            raise ValueError("expected a fraction in [0, 1) or a duration such as '2m'")
        return value

    def warmup_fraction(self, budget_seconds: float) -> float:
        """The warm-up as a fraction of a budget of ``budget_seconds``."""
        if isinstance(self.warmup, str):
            return parse_duration(self.warmup) / budget_seconds
        return float(self.warmup)


Schedule = Annotated[
    Union[  # noqa: UP007
        ConstantSchedule, StepSchedule, PlateauSchedule, CosineSchedule, BudgetSchedule
    ],
    Field(discriminator="kind"),
]


class EarlyStoppingConfig(Section):
    """``[train.early_stopping]``: stop when the metric has not improved for a while.

    Attributes:
        patience: evaluations without improvement before stopping; ``None`` turns it off.
        metric, mode: the validation metric and its direction; default ``train.monitor``
            and ``train.monitor_mode``.
        min_delta: the smallest change that counts as an improvement.
    """

    patience: int | None = Field(default=None, gt=0)
    metric: str | None = None
    mode: Literal["min", "max"] | None = None
    min_delta: float = Field(default=0.0, ge=0.0)


class TrainConfig(Section):
    """``[train]``: everything the trainer needs, nothing about tasks or cells.

    Attributes:
        optimizer: ``sgd`` (with ``momentum``, ``nesterov``), ``adam``, ``adamw`` or
            ``nt-asgd``: SGD switched to weight averaging when the monitored validation
            metric is worse than the best of the checks before the last ``nonmono``
            (Merity et al. 2017); evaluation and ``best.pt`` use the averaged weights
            (``rnnlab.training.averaging``). The metric must be lower-is-better.
        nonmono: the look-back ``n`` of ``nt-asgd``'s trigger, in validation checks.
        lr, weight_decay, betas, eps: optimizer settings (``betas``/``eps``: Adam, AdamW).
        schedule: the learning-rate schedule, a table with ``kind`` = ``constant``, ``step``,
            ``plateau``, ``cosine`` or ``budget`` (see each schedule class).
        batch_size: the global batch size (split over processes under DDP).
        seq_len: sequence (truncated BPTT) length, for tasks that cut sequences into windows.
        epochs, max_steps: stop after whichever comes first; at least one is required
            unless ``time_budget`` is set.
        time_budget: a wall-time budget such as ``"30m"`` or ``"1h30m"``: training stops early
            enough that the last evaluation, the final test and the final checkpoint finish
            inside it (see ``rnnlab.training.budget``); ``epochs``/``max_steps`` still cap
            the run. The time spent is kept in checkpoints, so a resumed run continues its
            budget. A budgeted run is not bit-reproducible (when it stops, and with
            ``schedule.kind = "budget"`` its rates, depend on wall time).
        grad_clip_norm, grad_clip_value: clip gradients by total norm or by value (one).
        early_stopping: see :class:`EarlyStoppingConfig`.
        monitor, monitor_mode: the validation metric that decides ``best.pt``.
        eval_every_steps: also evaluate every N steps (always at the end of each epoch).
        log_every_steps: write a training record to ``metrics.jsonl`` every N steps.
        checkpoint_every: write ``last.pt`` every N steps (and at the end of each epoch).
        skip_nonfinite: skip batches whose loss is NaN or infinite instead of stopping.
        seed, deterministic: seeding; ``deterministic`` also asks torch for deterministic
            algorithms (bit-exact resume on CPU).
        device: ``auto`` (CUDA, then MPS, then CPU), ``cpu``, ``cuda`` or ``mps``.
        num_threads: CPU threads of torch's kernels (``torch.set_num_threads``); ``None``
            keeps torch's default. Small recurrent models often run fastest on 1 thread, and
            on a busy machine extra threads can slow them down many times over.
        precision: ``fp32``; ``bf16`` or ``fp16`` autocast (fp16 with loss scaling, GPU).
    """

    optimizer: Literal["sgd", "adam", "adamw", "nt-asgd"] = "adam"
    nonmono: int = Field(default=5, ge=1)
    lr: float = Field(default=1e-3, gt=0.0)
    momentum: float = Field(default=0.0, ge=0.0, lt=1.0)
    nesterov: bool = False
    weight_decay: float = Field(default=0.0, ge=0.0)
    betas: tuple[Probability, Probability] = (0.9, 0.999)
    eps: float = Field(default=1e-8, gt=0.0)
    schedule: Schedule = Field(default_factory=ConstantSchedule)
    batch_size: int = Field(default=32, gt=0)
    seq_len: int | None = Field(default=None, gt=0)
    epochs: int | None = Field(default=None, gt=0)
    max_steps: int | None = Field(default=None, gt=0)
    time_budget: str | None = None
    grad_clip_norm: float | None = Field(default=None, gt=0.0)
    grad_clip_value: float | None = Field(default=None, gt=0.0)
    early_stopping: EarlyStoppingConfig = Field(default_factory=EarlyStoppingConfig)
    monitor: str = "loss"
    monitor_mode: Literal["min", "max"] = "min"
    eval_every_steps: int | None = Field(default=None, gt=0)
    log_every_steps: int = Field(default=50, gt=0)
    checkpoint_every: int = Field(default=500, gt=0)
    skip_nonfinite: bool = False
    seed: int = 0
    deterministic: bool = False
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    num_threads: int | None = Field(default=None, gt=0)
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"

    @field_validator("time_budget", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        if value is not None:
            parse_duration(value)
        return value

    @property
    def time_budget_seconds(self) -> float | None:
        """``time_budget`` in seconds, or ``None`` without a budget."""
        return None if self.time_budget is None else parse_duration(self.time_budget)

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        if self.epochs is None and self.max_steps is None and self.time_budget is None:
            raise ValueError(
                "set train.epochs or train.max_steps, or train.time_budget (any of them; "
                "the first reached stops)"
            )
        self._check_budget_schedule()
        if self.grad_clip_norm is not None and self.grad_clip_value is not None:
            raise ValueError(
                f"set one of train.grad_clip_norm={self.grad_clip_norm} and "
                f"train.grad_clip_value={self.grad_clip_value}, not both"
            )
        if self.optimizer != "sgd" and (self.momentum or self.nesterov):
            raise ValueError(
                f"train.momentum and train.nesterov apply to optimizer 'sgd', "
                f"not {self.optimizer!r} (Adam's momentum is train.betas)"
            )
        if self.optimizer == "nt-asgd" and self.monitor_mode != "min":
            raise ValueError(
                'train.optimizer = "nt-asgd" triggers on a lower-is-better metric; '
                f"train.monitor_mode is {self.monitor_mode!r} (use a loss, mode 'min')"
            )
        if self.nesterov and self.momentum == 0:
            raise ValueError("train.nesterov = true needs train.momentum > 0")
        return self

    def _check_budget_schedule(self) -> None:
        spec, seconds = self.schedule, self.time_budget_seconds
        if isinstance(spec, BudgetSchedule):
            if seconds is None:
                raise ValueError(
                    'train.schedule kind = "budget" runs over train.time_budget; set it '
                    '(e.g. train.time_budget = "30m") or choose kind "cosine"'
                )
            if spec.warmup_fraction(seconds) >= 1.0:
                raise ValueError(
                    f"train.schedule.warmup={spec.warmup!r} is not shorter than "
                    f"train.time_budget={self.time_budget!r}"
                )
        if isinstance(spec, CosineSchedule) and self.epochs is None and self.max_steps is None:
            raise ValueError(
                'train.schedule kind = "cosine" counts steps, and train.time_budget alone '
                'plans none; use kind = "budget" or set train.epochs or train.max_steps'
            )


class OutputConfig(Section):
    """``[output]``: where runs go.

    Attributes:
        dir: the folder holding run directories.
        name: the run directory's name; default ``<task>-<cell>-<date>-<time>``.
        tensorboard: also write TensorBoard logs to ``<run>/tensorboard`` (needs the
            optional ``tensorboard`` package).
    """

    dir: str = "runs"
    name: str | None = None
    tensorboard: bool = False
