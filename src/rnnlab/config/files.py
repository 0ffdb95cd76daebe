"""Config files: shipped recipes, TOML parsing, dotted ``--set`` overrides, atomic saving."""

from __future__ import annotations

import codecs
import os
import sys
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from rnnlab.errors import ConfigError
from rnnlab.io import atomic_write_text
from rnnlab.registry import suggest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


from rnnlab.config.experiment import ExperimentConfig, from_dict

RECIPE_PACKAGE = "rnnlab.recipes"


def recipe_names() -> list[str]:
    """Names of the recipes shipped in ``rnnlab/recipes`` (without ``.toml``)."""
    folder = resources.files(RECIPE_PACKAGE)
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def read_config_text(path: Path) -> str:
    """A config file's text: UTF-8, with or without a byte-order mark (editors on Windows
    write one), or UTF-16 with its byte-order mark.

    Raises:
        ConfigError: unreadable, binary, or in another encoding (one line naming the file).
    """
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ConfigError(f"cannot read config {path}: {err.strerror or err}") from None
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    else:
        encoding = "utf-8-sig"
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"{path} is not a text file in UTF-8 (undecodable byte at offset {err.start}); "
            "save the config as UTF-8 TOML"
        ) from None
    if "\x00" in text:
        raise ConfigError(f"{path} is a binary file, not a TOML config")
    return text


def resolve_source(config_or_recipe: str | os.PathLike[str]) -> tuple[str, str]:
    """Find a config: an existing TOML file, or a shipped recipe by name.

    Returns:
        ``(text, source)``: the TOML text and a description of where it came from.

    Raises:
        ConfigError: when it is neither, naming the recipes and a close match.
    """
    path = Path(config_or_recipe)
    if path.is_file():
        return read_config_text(path), str(path)
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


def _deep_copy(raw: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, Mapping) else v for k, v in raw.items()}
