"""The config sections a task and a model read: ``[task]``, ``[data]`` (base) and ``[model]``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from rnnlab.registry import CELLS, TASKS, cell_options, suggest

Probability = Annotated[float, Field(ge=0.0, lt=1.0)]


class Section(BaseModel):
    """Base of every config section: unknown keys are errors, assignments are validated, and
    no number is infinite or NaN (``--set train.lr=inf`` is refused here, not as a NaN loss
    later; a setting that can be off is ``None``, never ``inf``)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class TaskConfig(Section):
    """``[task]``: which registered task runs.

    Attributes:
        name: a registered task name (``rnnlab.registry.TASKS``), e.g. ``"adding"``.
    """

    name: str

    @field_validator("name")
    @classmethod
    def _known_task(cls, name: str) -> str:
        if name not in TASKS:
            known = ", ".join(TASKS.names())
            raise ValueError(f"unknown task{suggest(name, TASKS.names())} (known: {known})")
        return name


class DataConfig(Section):
    """Base class of the ``[data]`` section; each task subclasses it with its own fields."""


class ModelConfig(Section):
    """``[model]``: encoder, recurrent stack and head pooling (heads are chosen by the task).

    Attributes:
        cell: a registered cell name (``rnn``, ``lstm``, ``gru``; more join the registry).
        hidden_size, num_layers, bidirectional, dropout: as in ``torch.nn.LSTM``
            (``dropout`` between stacked layers).
        layer_norm, recurrent_dropout, zoneout, weight_drop: the rnnlab layer extras.
        forget_bias: initial forget-gate bias (cells that have one: ``lstm``).
        nonlinearity: ``tanh`` or ``relu`` (cells that have one: ``rnn``).
        proj_size: LSTM projection size, 0 for none (``lstm``).
        input_projection: size of a linear projection of the input features before the
            recurrent stack; ``None`` feeds the features directly.
        embedding_size: size of the token embedding for tasks with token inputs.
        pooling: how sequence-level heads summarize the outputs: ``last`` (final state of
            each direction at each sequence's own last step), ``mean`` or ``max`` over valid
            steps.
        init_range: if set, every weight starts uniform in ``[-init_range, init_range]``
            (as in the classic PTB recipes); otherwise torch's initialization.
    """

    cell: str = "lstm"
    hidden_size: int = Field(default=128, gt=0)
    num_layers: int = Field(default=1, gt=0)
    bidirectional: bool = False
    dropout: Probability = 0.0
    layer_norm: bool = False
    recurrent_dropout: Probability = 0.0
    zoneout: Probability = 0.0
    weight_drop: Probability = 0.0
    forget_bias: float | None = None
    nonlinearity: Literal["tanh", "relu"] = "tanh"
    proj_size: int = Field(default=0, ge=0)
    input_projection: int | None = Field(default=None, gt=0)
    embedding_size: int | None = Field(default=None, gt=0)
    pooling: Literal["last", "mean", "max"] = "last"
    init_range: float | None = Field(default=None, gt=0)

    @field_validator("cell")
    @classmethod
    def _known_cell(cls, cell: str) -> str:
        if cell not in CELLS:
            raise ValueError(
                f"unknown cell{suggest(cell, CELLS.names())} (known: {', '.join(CELLS.names())})"
            )
        return cell

    @field_validator(
        "layer_norm",
        "recurrent_dropout",
        "zoneout",
        "weight_drop",
        "forget_bias",
        "nonlinearity",
        "proj_size",
    )
    @classmethod
    def _cell_has_option(cls, value: Any, info: ValidationInfo) -> Any:
        cell = info.data.get("cell")
        name = str(info.field_name)
        default = cls.model_fields[name].default
        if cell is None or value == default or name in cell_options(cell):
            return value
        having = [c for c in CELLS.names() if name in cell_options(c)]
        raise ValueError(f"only cell {' or '.join(having)} has {name}; cell is {cell!r}")

    @model_validator(mode="after")
    def _projection_fits(self) -> ModelConfig:
        if self.proj_size and self.proj_size >= self.hidden_size:
            raise ValueError(
                f"model.proj_size={self.proj_size} must be smaller than "
                f"model.hidden_size={self.hidden_size}"
            )
        return self
