"""Per-column scaling fitted on the training part only, saved with a run as JSON.

- ``"zscore"``: ``z = (x - mean) / std`` with the population standard deviation (``ddof=0``,
  as scikit-learn's ``StandardScaler`` that the long-horizon literature uses);
- ``"minmax"``: ``z = (x - min) / (max - min)``, so training values lie in ``[0, 1]``.

A column whose training values are constant gets a scale of 1 (it is only shifted), so
nothing is divided by zero.

Example:
    >>> import numpy as np
    >>> scaler = Scaler("zscore").fit(np.array([[1.0], [3.0]]), names=["y"])
    >>> scaler.transform(np.array([[5.0]])).tolist()
    [[3.0]]
    >>> scaler.inverse_transform(np.array([[3.0]])).tolist()
    [[5.0]]
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
import torch
from torch import Tensor

from rnnlab.data.series.errors import SeriesError
from rnnlab.io import atomic_write_text

ScalingKind = Literal["zscore", "minmax"]
ArrayT = TypeVar("ArrayT", np.ndarray, Tensor)
FORMAT_VERSION = 1


class Scaler:
    """Per-column affine scaling ``z = (x - shift) / scale``.

    Args:
        kind: ``"zscore"`` or ``"minmax"``.
    """

    def __init__(self, kind: ScalingKind = "zscore") -> None:
        if kind not in ("zscore", "minmax"):
            raise SeriesError(f"scaling kind must be 'zscore' or 'minmax', got {kind!r}")
        self.kind: ScalingKind = kind
        self.shift: np.ndarray | None = None  # (C,)
        self.scale: np.ndarray | None = None  # (C,)
        self.names: tuple[str, ...] = ()

    def fit(self, values: np.ndarray, names: Sequence[str] | None = None) -> Scaler:
        """Fit on ``values`` of shape ``(T, C)`` (the training rows only); returns ``self``."""
        array = np.asarray(values, dtype=np.float64)
        if array.ndim != 2 or array.shape[0] == 0:
            raise SeriesError(f"Scaler.fit needs a (T, C) array with T >= 1, got {array.shape}")
        if not np.isfinite(array).all():
            raise SeriesError("Scaler.fit got NaN or infinite values")
        if self.kind == "zscore":
            shift, scale = array.mean(axis=0), array.std(axis=0)
        else:
            shift, scale = array.min(axis=0), array.max(axis=0) - array.min(axis=0)
        self.shift = shift
        self.scale = np.where(scale > 0, scale, 1.0)
        names = [f"column_{j}" for j in range(array.shape[1])] if names is None else list(names)
        if len(names) != array.shape[1]:
            raise SeriesError(f"Scaler.fit got {len(names)} names for {array.shape[1]} columns")
        self.names = tuple(names)
        return self

    def _params(self, columns: Sequence[int | str] | None, width: int) -> tuple[np.ndarray, ...]:
        if self.shift is None or self.scale is None:
            raise SeriesError("the Scaler is not fitted: call fit() or Scaler.load() first")
        if columns is None:
            index = np.arange(len(self.shift))
        else:
            index = np.array([self._column(c) for c in columns], dtype=np.int64)
        if width != len(index):
            raise SeriesError(
                f"the last dimension has {width} columns but the scaler covers {len(index)} "
                f"({[self.names[i] for i in index]}); pass columns= to pick them"
            )
        return self.shift[index], self.scale[index]

    def _column(self, column: int | str) -> int:
        if isinstance(column, str):
            if column not in self.names:
                raise SeriesError(
                    f"column {column!r} is not in the scaler; it has {list(self.names)}"
                )
            return self.names.index(column)
        if not 0 <= column < len(self.names):
            raise SeriesError(
                f"column index {column} is out of range for {len(self.names)} columns"
            )
        return int(column)

    def transform(self, values: ArrayT, columns: Sequence[int | str] | None = None) -> ArrayT:
        """Scale ``values`` (``(..., C)``, NumPy or torch); ``columns`` picks fitted columns."""
        shift, scale = self._params(columns, int(values.shape[-1]))
        if isinstance(values, Tensor):
            return (values - _like(shift, values)) / _like(scale, values)
        return (np.asarray(values) - shift) / scale

    def inverse_transform(
        self, values: ArrayT, columns: Sequence[int | str] | None = None
    ) -> ArrayT:
        """Undo :meth:`transform`: ``x = z * scale + shift`` (``columns`` as there)."""
        shift, scale = self._params(columns, int(values.shape[-1]))
        if isinstance(values, Tensor):
            return values * _like(scale, values) + _like(shift, values)
        return np.asarray(values) * scale + shift

    def inverse_variance(
        self, variance: ArrayT, columns: Sequence[int | str] | None = None
    ) -> ArrayT:
        """A variance in scaled units, in original units: ``var * scale**2``."""
        _, scale = self._params(columns, int(variance.shape[-1]))
        if isinstance(variance, Tensor):
            return variance * _like(scale, variance) ** 2
        return np.asarray(variance) * scale**2

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description."""
        if self.shift is None or self.scale is None:
            raise SeriesError("the Scaler is not fitted: nothing to save")
        return {
            "format": FORMAT_VERSION,
            "kind": self.kind,
            "names": list(self.names),
            "shift": self.shift.tolist(),
            "scale": self.scale.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scaler:
        """Rebuild a fitted scaler from :meth:`to_dict`'s output."""
        try:
            scaler = cls(data["kind"])
            shift = np.asarray(data["shift"], dtype=np.float64)
            scale = np.asarray(data["scale"], dtype=np.float64)
            names = tuple(str(n) for n in data["names"])
        except (KeyError, TypeError, ValueError) as exc:
            raise SeriesError(f"not a saved Scaler: {exc!r}") from exc
        if not (shift.ndim == scale.ndim == 1 and len(shift) == len(scale) == len(names)):
            raise SeriesError("not a saved Scaler: shift, scale and names differ in length")
        scaler.shift, scaler.scale, scaler.names = shift, scale, names
        return scaler

    def save(self, path: str | Path) -> None:
        """Write JSON atomically (temporary file, flush, fsync, rename)."""
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2))

    @classmethod
    def load(cls, path: str | Path) -> Scaler:
        """Read a scaler written by :meth:`save`."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise SeriesError(f"scaler file not found: {path}") from exc
        except json.JSONDecodeError as exc:
            raise SeriesError(f"scaler file {path} is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise SeriesError(f"scaler file {path} does not hold a JSON object")
        return cls.from_dict(data)

    def __repr__(self) -> str:
        return f"Scaler(kind={self.kind!r}, names={list(self.names)})"


def _like(array: np.ndarray, tensor: Tensor) -> Tensor:
    return torch.as_tensor(array, dtype=tensor.dtype, device=tensor.device)
