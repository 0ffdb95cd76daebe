"""Name registries: one place where cells, tasks (and later heads, data sets) are looked up.

A registry maps a lower-case name to an object. Looking up an unknown name raises a
:class:`~rnnlab.errors.ConfigError` that lists the known names and suggests the closest one,
so a typo in a config (``cell = "lstn"``) is a one-line error instead of a ``KeyError``.

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
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

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
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

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
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(self.names())
            raise ConfigError(
                f"unknown {self.kind} {name!r}{suggest(name, self.names())} (known: {known})"
            ) from None

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
