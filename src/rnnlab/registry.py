"""Name registries: the one place where cells and tasks are looked up by their config name.

A registry maps a lower-case name to an object. Looking up an unknown name raises a
:class:`~rnnlab.errors.ConfigError` that lists the known names and suggests the closest one,
so a typo in a config (``cell = "lstn"``) is a one-line error instead of a ``KeyError``.

:data:`CELLS` and :data:`TASKS` live here, at the bottom of the import graph, so that the
config (which validates ``model.cell`` and ``task.name``) needs nothing above it. Each names
the modules that register the built-in entries (its *providers*, like a package's entry
points); they are imported on the first lookup, so ``rnnlab.config`` never imports a task
or a model module and no import cycle runs through the registries.

Example:
    >>> reg: Registry[int] = Registry("number")
    >>> @reg.register("one")
    ... def _one() -> int:
    ...     return 1
    >>> reg.get("one")()
    1
    >>> reg.get("onee")
    Traceback (most recent call last):
    ...
    rnnlab.errors.ConfigError: unknown number 'onee'; did you mean 'one'? (known: one)
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from rnnlab.errors import ConfigError

T = TypeVar("T")


def suggest(word: str, choices: list[str] | tuple[str, ...] | set[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest of ``choices``, or ``""`` when none is close."""
    close = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


class Registry(Generic[T]):
    """A name -> object mapping with helpful errors.

    Args:
        kind: what the registry holds, in words (``"cell"``, ``"task"``), used in messages.
        providers: modules that register the built-in entries; imported on the first
            lookup (``get``, ``names``, ``in``), not when the registry is created.
    """

    def __init__(self, kind: str, providers: tuple[str, ...] = ()) -> None:
        self.kind = kind
        self.providers = providers
        self._items: dict[str, T] = {}
        self._loaded = not providers

    def _load_providers(self) -> None:
        if self._loaded:
            return
        self._loaded = True  # before importing: a provider may look names up while loading
        for module in self.providers:
            importlib.import_module(module)

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator registering its argument under ``name``; re-registering is an error."""

        def add(item: T) -> T:
            self.add(name, item)
            return item

        return add

    def add(self, name: str, item: T) -> None:
        """Register ``item`` under ``name`` (lower case, unique)."""
        if name != name.lower() or not name:
            raise ValueError(f"{self.kind} names are non-empty and lower case, got {name!r}")
        if name in self._items and self._items[name] is not item:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._items[name] = item

    def get(self, name: str) -> T:
        """The object registered as ``name``.

        Raises:
            ConfigError: for an unknown name, with the known names and a close match.
        """
        self._load_providers()
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(self.names())
            raise ConfigError(
                f"unknown {self.kind} {name!r}{suggest(name, self.names())} (known: {known})"
            ) from None

    def names(self) -> list[str]:
        """Registered names, sorted."""
        self._load_providers()
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        self._load_providers()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


CELLS: Registry[type[Any]] = Registry("cell", providers=("rnnlab.models.stack",))
"""Config name -> recurrent layer class with the ``torch.nn.RNN/LSTM/GRU`` constructor and
call (``layer(x, hx=None, lengths=None) -> (output, h_n)``). A new cell joins with
``CELLS.add("mycell", MyLayer)``; ``model.cell = "mycell"`` then works in every config."""

TASKS: Registry[Any] = Registry(
    "task",
    providers=(
        "rnnlab.tasks.adding",
        "rnnlab.tasks.copy",
        "rnnlab.tasks.reber",
        "rnnlab.tasks.mackey_glass",
        "rnnlab.language.task",
        "rnnlab.forecasting.task",
        "rnnlab.speech.digits",
        "rnnlab.speech.ctc_task",
        "rnnlab.speech.sentences",
    ),
)
"""Config name -> :class:`rnnlab.tasks.Task` subclass (registered with
:func:`rnnlab.tasks.register_task`)."""


def cell_options(name: str) -> frozenset[str]:
    """Keyword options the constructor of cell ``name`` accepts (read from its signature), so
    the config can tell which extras apply to which cell (``proj_size``: LSTM, ...)."""
    return frozenset(inspect.signature(CELLS.get(name).__init__).parameters) - {"self"}
