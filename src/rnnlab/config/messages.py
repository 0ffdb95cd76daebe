"""One line per pydantic validation error: the dotted path, the value, what is allowed."""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, Union

from pydantic import (
    BaseModel,
    ValidationError,
)

from rnnlab.registry import suggest


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
