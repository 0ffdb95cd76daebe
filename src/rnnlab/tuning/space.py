"""Search spaces: a TOML file of dotted config paths, each with a distribution.

A space names config paths (the same dotted keys as ``--set``) and how to sample them::

    train.lr         = { log_uniform = [1e-4, 1e-1] }        # exp(uniform(log lo, log hi))
    model.dropout    = { uniform = [0.0, 0.5] }              # optional: step = 0.1
    model.hidden_size = { int = [16, 128], step = 16 }       # 16, 32, ..., 128; or log = true
    model.cell       = { choice = ["rnn", "lstm", "gru"] }
    train.batch_size = { choice = [16, 32, 64] }
    model.proj_size  = { int = [0, 8], when = { "model.cell" = "lstm" } }

    [fixed]                    # optional: plain overrides applied to every trial
    train.epochs = 3

``when`` makes an entry conditional: it is sampled only when each named ``choice`` entry
took the given value (or one of a list of values); otherwise the config keeps its own value.
Every problem is a :class:`SearchSpaceError` naming the entry, e.g.
``space.toml: train.lr: log_uniform needs 0 < low < high (got [0.0, 0.1])``.

Example:
    >>> space = parse({"train": {"lr": {"log_uniform": [1e-4, 1e-1]}}})
    >>> [p.path for p in space.params]
    ['train.lr']
    >>> space.to_overrides({"train.lr": 0.01})
    ['train.lr=0.01']
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import tomli_w
from pydantic import BaseModel

from rnnlab.config import ExperimentConfig, tomllib
from rnnlab.errors import UserError
from rnnlab.registry import suggest

SPACES_PACKAGE = "rnnlab.tuning.spaces"
KINDS = ("log_uniform", "uniform", "int", "choice")
OPTIONS = {
    "log_uniform": ("when",),
    "uniform": ("step", "when"),
    "int": ("step", "log", "when"),
    "choice": ("when",),
}
FIXED = "fixed"

Scalar = str | int | float | bool


class SearchSpaceError(UserError):
    """A search-space file or entry is invalid; the message names the entry."""


class Suggester(Protocol):
    """What a space needs from a trial (``optuna.trial.Trial`` has these methods)."""

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False
    ) -> float: ...

    def suggest_int(
        self, name: str, low: int, high: int, *, step: int = 1, log: bool = False
    ) -> int: ...

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any: ...


@dataclass(frozen=True)
class Param:
    """One entry of a search space.

    Attributes:
        path: the dotted config path (``train.lr``); also the Optuna parameter name.
        kind: ``log_uniform``, ``uniform``, ``int`` or ``choice``.
        low, high: the bounds (both included) for numeric kinds.
        step: the grid step for ``uniform`` and ``int`` (``None``: continuous / 1).
        log: ``int`` sampled on a log scale.
        choices: the values of a ``choice`` entry.
        when: conditions ``{choice path: allowed values}``; all must hold.
    """

    path: str
    kind: str
    low: float = 0.0
    high: float = 0.0
    step: float | None = None
    log: bool = False
    choices: tuple[Scalar, ...] = ()
    when: tuple[tuple[str, tuple[Scalar, ...]], ...] = ()

    def active(self, values: Mapping[str, Any]) -> bool:
        """Whether every condition holds for the values sampled so far."""
        return all(path in values and values[path] in allowed for path, allowed in self.when)

    def sample(self, trial: Suggester) -> Any:
        """Draw a value with the trial's ``suggest_*`` method."""
        if self.kind == "log_uniform":
            return trial.suggest_float(self.path, self.low, self.high, log=True)
        if self.kind == "uniform":
            return trial.suggest_float(self.path, self.low, self.high, step=self.step)
        if self.kind == "int":
            return trial.suggest_int(
                self.path, int(self.low), int(self.high), step=int(self.step or 1), log=self.log
            )
        return trial.suggest_categorical(self.path, list(self.choices))


@dataclass
class SearchSpace:
    """A parsed search space: its entries in sampling order, and fixed overrides.

    Attributes:
        params: the entries, each after the entries its ``when`` refers to.
        fixed: ``"path=value"`` overrides applied to every trial.
        source: where the space came from (for messages).
        raw: the table it was parsed from (to hand the space to worker processes).
    """

    params: list[Param]
    fixed: list[str] = field(default_factory=list)
    source: str = "space"
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def conditional(self) -> bool:
        """Whether any entry has a ``when`` condition."""
        return any(p.when for p in self.params)

    def sample(self, trial: Suggester) -> dict[str, Any]:
        """Sample every active entry; returns ``{path: value}`` (inactive entries left out)."""
        values: dict[str, Any] = {}
        for param in self.params:
            if param.active(values):
                values[param.path] = param.sample(trial)
        return values

    def to_overrides(self, values: Mapping[str, Any]) -> list[str]:
        """``path=value`` overrides for sampled values (the fixed ones not included)."""
        return [f"{path}={toml_value(v)}" for path, v in values.items()]

    def check_paths(self, config: ExperimentConfig) -> None:
        """Check that every entry names a setting of ``config``.

        Raises:
            SearchSpaceError: naming the entry and the keys allowed at that level.
        """
        for path in [p.path for p in self.params] + [o.partition("=")[0] for o in self.fixed]:
            node: Any = config
            parts = path.split(".")
            for depth, part in enumerate(parts):
                if not isinstance(node, BaseModel):
                    where = ".".join(parts[:depth])
                    raise SearchSpaceError(
                        f"{self.source}: {path}: {where} is a value, not a table"
                    )
                allowed = sorted(type(node).model_fields)
                if part not in allowed:
                    raise SearchSpaceError(
                        f"{self.source}: {path}: unknown config key {part!r}"
                        f"{suggest(part, allowed)} (allowed: {', '.join(allowed)})"
                    )
                node = getattr(node, part)


def toml_value(value: Any) -> str:
    """``value`` in TOML syntax, as ``--set`` overrides read it (``0.01``, ``"lstm"``)."""
    text = tomli_w.dumps({"v": value})
    return text.partition("=")[2].strip()


# --------------------------------------------------------------------------------- parsing


def load(space: str | os.PathLike[str]) -> SearchSpace:
    """Load a space from a TOML file, or a shipped space by name (see :func:`space_names`).

    Raises:
        SearchSpaceError: missing file, bad TOML or a bad entry.
    """
    path = Path(space)
    if path.is_file():
        text, source = path.read_text(encoding="utf-8"), str(path)
    else:
        name = str(space)
        names = space_names()
        if name not in names:
            raise SearchSpaceError(
                f"{name!r} is neither a search-space file nor a shipped space"
                f"{suggest(name, names)} (shipped: {', '.join(names) or 'none'})"
            )
        text = resources.files(SPACES_PACKAGE).joinpath(f"{name}.toml").read_text("utf-8")
        source = f"space {name!r}"
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise SearchSpaceError(f"{source}: invalid TOML: {err}") from None
    return parse(raw, source)


def space_names() -> list[str]:
    """Names of the spaces shipped in ``rnnlab/tuning/spaces`` (without ``.toml``)."""
    folder = resources.files(SPACES_PACKAGE)
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def default_space(config: str | os.PathLike[str]) -> str:
    """The shipped space for a recipe or config file: the one of the same name
    (``adding`` or ``my/adding.toml`` -> space ``adding``).

    Raises:
        SearchSpaceError: no shipped space has that name.
    """
    name = Path(config).stem
    if name not in space_names():
        raise SearchSpaceError(
            f"no shipped space for {str(config)!r}; give --space SPACE.toml "
            f"(shipped: {', '.join(space_names())})"
        )
    return name


def parse(raw: Mapping[str, Any], source: str = "space") -> SearchSpace:
    """Turn the dict read from a space TOML file into a :class:`SearchSpace`.

    Raises:
        SearchSpaceError: one line naming the bad entry, its value and what is allowed.
    """
    fixed_raw = raw.get(FIXED, {})
    if not isinstance(fixed_raw, Mapping):
        raise SearchSpaceError(f"{source}: [{FIXED}] must be a table (got {fixed_raw!r})")
    fixed = [f"{path}={toml_value(v)}" for path, v in _flatten_plain(fixed_raw, ())]
    entries = _entries({k: v for k, v in raw.items() if k != FIXED}, (), source)
    if not entries:
        raise SearchSpaceError(f"{source}: the space has no entries")
    params = {path: _param(path, spec, source) for path, spec in entries}
    for path in (o.partition("=")[0] for o in fixed):
        if path in params:
            raise SearchSpaceError(f"{source}: {path}: both in [{FIXED}] and searched")
    for param in params.values():
        _check_when(param, params, source)
    return SearchSpace(_ordered(params, source), fixed, source, dict(raw))


def _flatten_plain(table: Mapping[str, Any], prefix: tuple[str, ...]) -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    for key, value in table.items():
        if isinstance(value, Mapping):
            found += _flatten_plain(value, (*prefix, key))
        else:
            found.append((".".join((*prefix, key)), value))
    return found


def _entries(
    table: Mapping[str, Any], prefix: tuple[str, ...], source: str
) -> list[tuple[str, Mapping[str, Any]]]:
    """``(dotted path, spec table)`` pairs: a table holding a kind key is an entry."""
    found: list[tuple[str, Mapping[str, Any]]] = []
    for key, value in table.items():
        path = ".".join((*prefix, key))
        if isinstance(value, Mapping):
            if any(k in value for k in KINDS) or "when" in value:
                found.append((path, value))
            else:
                found += _entries(value, (*prefix, key), source)
        else:
            raise SearchSpaceError(
                f"{source}: {path}: expected a table such as {{ log_uniform = [low, high] }} "
                f"or {{ choice = [...] }} (got {value!r}); put plain values under [{FIXED}]"
            )
    return found


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _param(path: str, spec: Mapping[str, Any], source: str) -> Param:
    where = f"{source}: {path}"
    kinds = [k for k in KINDS if k in spec]
    if len(kinds) != 1:
        found = ", ".join(kinds) if kinds else "none"
        raise SearchSpaceError(f"{where}: give exactly one of {', '.join(KINDS)} (found: {found})")
    kind = kinds[0]
    allowed = (kind, *OPTIONS[kind])
    for key in spec:
        if key not in allowed:
            raise SearchSpaceError(
                f"{where}: unknown key {key!r}{suggest(key, list(allowed))} for a {kind} entry "
                f"(allowed: {', '.join(allowed)})"
            )
    when = _when(spec.get("when"), where)
    value = spec[kind]
    if kind == "choice":
        if not isinstance(value, list) or not value:
            raise SearchSpaceError(f"{where}: choice needs a non-empty list (got {value!r})")
        for item in value:
            if not isinstance(item, str | int | float | bool):
                raise SearchSpaceError(
                    f"{where}: choice values must be strings, numbers or booleans (got {item!r})"
                )
        if len({toml_value(v) for v in value}) != len(value):
            raise SearchSpaceError(f"{where}: choice has a repeated value ({value!r})")
        return Param(path, kind, choices=tuple(value), when=when)
    if not isinstance(value, list) or len(value) != 2 or not all(_number(v) for v in value):
        raise SearchSpaceError(f"{where}: {kind} needs [low, high], two numbers (got {value!r})")
    low, high = value
    if not all(math.isfinite(v) for v in value) or not low < high:
        raise SearchSpaceError(f"{where}: {kind} needs low < high (got {value!r})")
    if kind == "log_uniform" and low <= 0:
        raise SearchSpaceError(f"{where}: log_uniform needs 0 < low < high (got {value!r})")
    step = spec.get("step")
    log = spec.get("log", False)
    if kind == "int":
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise SearchSpaceError(f"{where}: int needs integer bounds (got {value!r})")
        if step is not None and (not isinstance(step, int) or isinstance(step, bool) or step < 1):
            raise SearchSpaceError(f"{where}: int step must be an integer >= 1 (got {step!r})")
        if not isinstance(log, bool):
            raise SearchSpaceError(f"{where}: log must be true or false (got {log!r})")
        if log and low < 1:
            raise SearchSpaceError(f"{where}: int with log = true needs low >= 1 (got {low})")
        if log and step not in (None, 1):
            raise SearchSpaceError(f"{where}: int with log = true cannot have step={step}")
        if step is not None and (high - low) % step:
            raise SearchSpaceError(
                f"{where}: int range {value!r} is not a whole number of steps of {step}"
            )
    if (
        kind == "uniform"
        and step is not None
        and (not _number(step) or step <= 0 or step > high - low)
    ):
        raise SearchSpaceError(
            f"{where}: uniform step must be a number in (0, high - low] (got {step!r})"
        )
    return Param(
        path,
        kind,
        low=float(low) if kind != "int" else low,
        high=float(high) if kind != "int" else high,
        step=step,
        log=bool(log),
        when=when,
    )


def _when(value: Any, where: str) -> tuple[tuple[str, tuple[Scalar, ...]], ...]:
    if value is None:
        return ()
    if not isinstance(value, Mapping) or not value:
        raise SearchSpaceError(
            f'{where}: when must be a table such as {{ "model.cell" = "lstm" }} (got {value!r})'
        )
    conditions = []
    for path, allowed in _flatten_plain(value, ()):
        values = tuple(allowed) if isinstance(allowed, list) else (allowed,)
        if not values:
            raise SearchSpaceError(f"{where}: when {path!r} has an empty list of values")
        conditions.append((path, values))
    return tuple(conditions)


def _check_when(param: Param, params: Mapping[str, Param], source: str) -> None:
    where = f"{source}: {param.path}"
    for path, allowed in param.when:
        if path == param.path:
            raise SearchSpaceError(f"{where}: when refers to the entry itself")
        other = params.get(path)
        if other is None:
            raise SearchSpaceError(
                f"{where}: when refers to {path!r}, which is not an entry of the space"
                f"{suggest(path, list(params))}"
            )
        if other.kind != "choice":
            raise SearchSpaceError(
                f"{where}: when refers to {path!r}, a {other.kind} entry; conditions "
                "must refer to choice entries"
            )
        for item in allowed:
            if item not in other.choices:
                raise SearchSpaceError(
                    f"{where}: when {path} = {item!r} is not one of its choices "
                    f"({', '.join(map(repr, other.choices))})"
                )


def _ordered(params: Mapping[str, Param], source: str) -> list[Param]:
    """Entries in file order, except that each comes after the entries its ``when`` names."""
    done: dict[str, Param] = {}
    visiting: list[str] = []

    def visit(param: Param) -> None:
        if param.path in done:
            return
        if param.path in visiting:
            cycle = " -> ".join([*visiting[visiting.index(param.path) :], param.path])
            raise SearchSpaceError(f"{source}: {param.path}: circular when conditions ({cycle})")
        visiting.append(param.path)
        for path, _ in param.when:
            visit(params[path])
        visiting.pop()
        done[param.path] = param

    for param in params.values():
        visit(param)
    return list(done.values())
