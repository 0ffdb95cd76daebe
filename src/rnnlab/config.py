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

from __future__ import annotations

import os
import sys
import types
import typing
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import tomli_w
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializeAsAny,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from rnnlab.errors import ConfigError
from rnnlab.io import atomic_write_text
from rnnlab.registry import CELLS, TASKS, cell_options, suggest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

RECIPE_PACKAGE = "rnnlab.recipes"

Probability = Annotated[float, Field(ge=0.0, lt=1.0)]


class Section(BaseModel):
    """Base of every config section: unknown keys are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


# --------------------------------------------------------------------------------- sections


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

    @field_validator("forget_bias", "nonlinearity", "proj_size")
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


Schedule = Annotated[
    Union[ConstantSchedule, StepSchedule, PlateauSchedule, CosineSchedule],  # noqa: UP007
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
        optimizer: ``sgd`` (with ``momentum``, ``nesterov``), ``adam`` or ``adamw``.
        lr, weight_decay, betas, eps: optimizer settings (``betas``/``eps``: Adam, AdamW).
        schedule: the learning-rate schedule, a table with ``kind`` = ``constant``, ``step``,
            ``plateau`` or ``cosine`` (see each schedule class).
        batch_size: the global batch size (split over processes under DDP).
        seq_len: sequence (truncated BPTT) length, for tasks that cut sequences into windows.
        epochs, max_steps: stop after whichever comes first; at least one is required.
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

    optimizer: Literal["sgd", "adam", "adamw"] = "adam"
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

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        if self.epochs is None and self.max_steps is None:
            raise ValueError(
                "set train.epochs or train.max_steps (or both; the first reached stops)"
            )
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
        if self.nesterov and self.momentum == 0:
            raise ValueError("train.nesterov = true needs train.momentum > 0")
        return self


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
        name = task.name if isinstance(task, TaskConfig) else (task or {}).get("name")
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


# ----------------------------------------------------------------------- loading, overrides


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


def recipe_names() -> list[str]:
    """Names of the recipes shipped in ``rnnlab/recipes`` (without ``.toml``)."""
    folder = resources.files(RECIPE_PACKAGE)
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def resolve_source(config_or_recipe: str | os.PathLike[str]) -> tuple[str, str]:
    """Find a config: an existing TOML file, or a shipped recipe by name.

    Returns:
        ``(text, source)``: the TOML text and a description of where it came from.

    Raises:
        ConfigError: when it is neither, naming the recipes and a close match.
    """
    path = Path(config_or_recipe)
    if path.is_file():
        return path.read_text(encoding="utf-8"), str(path)
    name = str(config_or_recipe)
    names = recipe_names()
    if name in names:
        text = resources.files(RECIPE_PACKAGE).joinpath(f"{name}.toml").read_text("utf-8")
        return text, f"recipe {name!r}"
    raise ConfigError(
        f"{name!r} is neither a config file nor a shipped recipe{suggest(name, names)} "
        f"(recipes: {', '.join(names)})"
    )


def parse_toml(text: str, source: str) -> dict[str, Any]:
    """Parse TOML text, turning a syntax error into a one-line :class:`ConfigError`."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{source}: invalid TOML: {err}") from None


def load(
    config_or_recipe: str | os.PathLike[str], overrides: Sequence[str] = ()
) -> ExperimentConfig:
    """Load a TOML config file or shipped recipe, apply ``--set`` style overrides, validate.

    Args:
        config_or_recipe: a path to a TOML file, or a recipe name such as ``"adding"``.
        overrides: ``"dotted.key=value"`` strings (see :func:`apply_overrides`).

    Raises:
        ConfigError: for a missing file, bad TOML, or a bad key or value.

    Example:
        >>> load("adding", ["train.lr=0.01"]).train.lr
        0.01
    """
    text, source = resolve_source(config_or_recipe)
    raw = apply_overrides(parse_toml(text, source), overrides)
    return from_dict(raw, source=source)


def parse_value(text: str) -> Any:
    """Type an override value: TOML syntax when it parses (``0.5``, ``true``, ``[1, 2]``,
    ``"x"``), ``none``/``null`` for ``None``, else the bare text as a string."""
    stripped = text.strip()
    if stripped.lower() in ("none", "null"):
        return None
    try:
        return tomllib.loads(f"value = {stripped}")["value"]
    except tomllib.TOMLDecodeError:
        return stripped


def apply_overrides(raw: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Return a copy of ``raw`` with each ``"a.b.c=value"`` set (value typed by
    :func:`parse_value`; ``None`` removes the key so the default applies).

    Raises:
        ConfigError: for an override without ``=`` or one that goes through a non-table.
    """
    result = _deep_copy(raw)
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            raise ConfigError(f"override {item!r} is not of the form section.key=value")
        *parents, leaf = key.split(".")
        node = result
        for depth, part in enumerate(parents):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                where = ".".join(parents[: depth + 1])
                raise ConfigError(f"override {item!r}: {where}={child!r} is a value, not a table")
            node = child
        value = parse_value(text)
        if value is None:
            node.pop(leaf, None)
        else:
            node[leaf] = value
    return result


def with_overrides(config: ExperimentConfig, overrides: Sequence[str]) -> ExperimentConfig:
    """A new validated config: ``config`` with dotted overrides applied."""
    return from_dict(apply_overrides(config.to_dict(), overrides))


def save(config: ExperimentConfig, path: str | os.PathLike[str]) -> None:
    """Write the resolved config as TOML, atomically (temporary file, flush, rename)."""
    atomic_write_text(Path(path), config.to_toml())


# ------------------------------------------------------------------------- error messages


def format_errors(
    err: ValidationError,
    root: type[BaseModel],
    raw: Any,
    prefix: tuple[str, ...] = (),
) -> str:
    """One line per pydantic error: dotted path, value, what is allowed.

    Args:
        err: the validation error.
        root: the model class that was validated (to list allowed keys).
        raw: the input that was validated (to find which loc parts are union tags).
        prefix: path parts to put in front (``("data",)`` for a task's data section).
    """
    lines = []
    for item in err.errors():
        path, owner = _clean_loc(tuple(item["loc"]), root, raw)
        dotted = ".".join((*prefix, *path)) or "config"
        kind = item["type"]
        if kind == "extra_forbidden":
            allowed = sorted(owner.model_fields) if owner is not None else []
            hint = suggest(path[-1], allowed) if path else ""
            lines.append(f"{dotted}: unknown key{hint} (allowed: {', '.join(allowed)})")
        elif kind == "missing":
            lines.append(f"{dotted}: required key is missing")
        elif kind in ("union_tag_not_found", "union_tag_invalid"):
            tags = item.get("ctx", {}).get(
                "expected_tags", "'constant', 'step', 'plateau', 'cosine'"
            )
            got = raw_at(raw, path)
            got_kind = got.get("kind") if isinstance(got, Mapping) else got
            lines.append(f"{dotted}.kind: should be one of {tags} (got {got_kind!r})")
        else:
            message = str(item["msg"]).removeprefix("Value error, ")
            if kind == "value_error" and message.startswith(("train.", "model.", "set ")):
                lines.append(message)
            else:
                lines.append(f"{dotted}: {message} (got {_show(item.get('input'))})")
    return "\n".join(lines)


def raw_at(raw: Any, path: Sequence[str | int]) -> Any:
    """The raw input at ``path``, or ``None`` where the path does not exist."""
    node = raw
    for part in path:
        if isinstance(node, Mapping) and part in node:
            node = node[part]
            continue
        if isinstance(node, list | tuple) and isinstance(part, int) and part < len(node):
            node = node[part]
            continue
        return None
    return node


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _clean_loc(
    loc: tuple[str | int, ...], root: type[BaseModel], raw: Any
) -> tuple[tuple[str, ...], type[BaseModel] | None]:
    """Drop discriminated-union tags from ``loc``; return the path and the model owning its
    last key (for listing allowed keys)."""
    path: list[str] = []
    owner: type[BaseModel] | None = root
    field_tp: Any = None
    node = raw
    for index, part in enumerate(loc):
        last = index == len(loc) - 1
        if isinstance(node, Mapping) and part not in node and not last and field_tp is not None:
            member = _union_member(field_tp, str(part))
            if member is not None:  # a union tag, as "step" in (train, schedule, step, factor)
                owner = member
                continue
        field_tp = _field_type(owner, str(part)) if owner is not None else None
        path.append(str(part))
        if not last:
            owner = field_tp if _is_model(field_tp) else None
        node = node.get(part) if isinstance(node, Mapping) else None
    return tuple(path), owner


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _field_type(model: type[BaseModel], name: str) -> Any:
    field = model.model_fields.get(name)
    if field is None:
        return None
    if name == "data" and model is ExperimentConfig:
        return DataConfig
    tp = field.annotation
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType) and len(args) == 1:
        return args[0]
    return tp


def _union_member(tp: Any, tag: str) -> type[BaseModel] | None:
    for member in typing.get_args(tp):
        if _is_model(member):
            kind = member.model_fields.get("kind")
            if kind is not None and kind.default == tag:
                return member
    return None


def _deep_copy(raw: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, Mapping) else v for k, v in raw.items()}
