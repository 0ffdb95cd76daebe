"""Experiment configs: pydantic sections, TOML files, dotted overrides, one-line errors.

An experiment is one TOML file with five sections::

    [task]    name = "adding"                  which registered task runs
    [data]    ...                              owned by the task: each task registers the
                                               pydantic model of its own data section
    [model]   cell = "lstm", hidden_size, ...  the recurrent stack and its extras
    [train]   optimizer, lr, schedule, ...     the trainer's settings (task-agnostic)
    [output]  dir, name, tensorboard           where the run directory goes

How the ``data`` section stays open to new tasks: a task class registers itself by name
(``rnnlab.tasks.register_task``) and carries a ``Data`` class, a subclass of
:class:`DataConfig`. :class:`ExperimentConfig` validates ``data`` with the ``Data`` class of
the task named in ``task.name``, so a new task brings its own data schema without any change
here. ``model.cell`` is checked the same way against the cell registry
(``rnnlab.registry.CELLS``).

Every problem is reported as a :class:`~rnnlab.errors.ConfigError` with one line per bad
key or value: its dotted path, the value and what is allowed, with a close match for a
misspelled key::

    train.lrr: unknown key; did you mean 'lr'? (allowed: batch_size, betas, ...)
    train.lr: Input should be greater than 0 (got -1.0)

Optional settings default to ``None`` (meaning "off" or "use the default rule"), so writing a
resolved config with the ``None`` values left out and loading it back gives the same config.

Example:
    >>> cfg = from_dict({"task": {"name": "adding"}, "train": {"epochs": 2}})
    >>> cfg = with_overrides(cfg, ["train.lr=0.5", "model.cell=gru"])
    >>> cfg.train.lr, cfg.model.cell
    (0.5, 'gru')
"""

from rnnlab.config.experiment import ExperimentConfig, from_dict
from rnnlab.config.files import (
    RECIPE_PACKAGE,
    apply_overrides,
    load,
    parse_toml,
    parse_value,
    recipe_names,
    resolve_source,
    save,
    tomllib,
    with_overrides,
)
from rnnlab.config.messages import format_errors, raw_at
from rnnlab.config.sections import DataConfig, ModelConfig, Probability, Section, TaskConfig
from rnnlab.config.train import (
    BudgetSchedule,
    ConstantSchedule,
    CosineSchedule,
    EarlyStoppingConfig,
    OutputConfig,
    PlateauSchedule,
    Schedule,
    StepSchedule,
    TrainConfig,
)

__all__ = [
    "RECIPE_PACKAGE",
    "BudgetSchedule",
    "ConstantSchedule",
    "CosineSchedule",
    "DataConfig",
    "EarlyStoppingConfig",
    "ExperimentConfig",
    "ModelConfig",
    "OutputConfig",
    "PlateauSchedule",
    "Probability",
    "Schedule",
    "Section",
    "StepSchedule",
    "TaskConfig",
    "TrainConfig",
    "apply_overrides",
    "format_errors",
    "from_dict",
    "load",
    "parse_toml",
    "parse_value",
    "raw_at",
    "recipe_names",
    "resolve_source",
    "save",
    "tomllib",
    "with_overrides",
]
