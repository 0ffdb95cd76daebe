"""The whole experiment: ``[task]``, ``[data]`` (validated by the task's own schema),
``[model]``, ``[train]``, ``[output]``, and :func:`from_dict`, which builds it with one-line
errors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import tomli_w
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializeAsAny,
    ValidationError,
    model_validator,
)

from rnnlab.config.messages import format_errors
from rnnlab.config.sections import DataConfig, ModelConfig, TaskConfig
from rnnlab.config.train import OutputConfig, TrainConfig
from rnnlab.errors import ConfigError
from rnnlab.registry import TASKS


class ExperimentConfig(BaseModel):
    """A whole experiment: ``task``, ``data`` (the task's own schema), ``model``, ``train``,
    ``output``.

    Build it with :func:`from_dict` or :func:`load` for one-line error messages; calling the
    constructor directly works too and raises pydantic's ``ValidationError``.
    """

    model_config = ConfigDict(extra="forbid")

    task: TaskConfig
    data: SerializeAsAny[DataConfig] = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig
    output: OutputConfig = Field(default_factory=OutputConfig)

    @model_validator(mode="before")
    @classmethod
    def _task_data(cls, raw: Any) -> Any:
        """Validate ``data`` with the schema of the task named in ``task.name``."""
        if not isinstance(raw, Mapping):
            return raw
        task = raw.get("task")
        name: Any
        if isinstance(task, TaskConfig):
            name = task.name
        else:  # a table, or a value the task field reports as not a table
            name = task.get("name") if isinstance(task, Mapping) else None
        data = raw.get("data", {})
        if isinstance(data, DataConfig):
            return raw
        if not isinstance(name, str) or name not in TASKS:
            return {**raw, "data": DataConfig()}  # the task error is reported instead
        schema = TASKS.get(name).Data
        try:
            validated = schema.model_validate(data)
        except ValidationError as err:
            raise ConfigError(format_errors(err, schema, data, prefix=("data",))) from None
        return {**raw, "data": validated}

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict with ``None`` values left out (they are the defaults)."""
        return self.model_dump(mode="json", exclude_none=True)

    def to_toml(self) -> str:
        """The resolved config as TOML text (loads back to an equal config)."""
        return tomli_w.dumps(self.to_dict())


def from_dict(raw: Mapping[str, Any], source: str | None = None) -> ExperimentConfig:
    """Validate a plain dict (as read from TOML) into an :class:`ExperimentConfig`.

    Args:
        raw: the nested dict.
        source: where it came from (a file name), added to error messages.

    Raises:
        ConfigError: one line per bad key or value.
    """
    where = f" (in {source})" if source else ""
    try:
        return ExperimentConfig.model_validate(dict(raw))
    except ConfigError as err:
        raise ConfigError(f"{err}{where}") from None
    except ValidationError as err:
        raise ConfigError(format_errors(err, ExperimentConfig, raw) + where) from None
