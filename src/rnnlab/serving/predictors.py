"""Predictors: a trained run loaded once, answering one request at a time.

Each domain has one: :class:`LanguagePredictor` (``generate``), :class:`ForecastPredictor`
(``forecast`` from JSON rows or CSV text) and :class:`SpeechPredictor` (``recognize`` an
uploaded recording). They keep the model in memory and serialize the calls to it with a lock,
so one predictor may be shared by the threads of a server. Every bad request is a
:class:`RequestError` that names the field at fault; the answers are plain JSON-ready dicts.

:func:`rnnlab.serving.load.load` picks the predictor for a run directory; the command line
and the HTTP server (:mod:`rnnlab.serving.app`) use the same objects.

Example (a trained run in ``runs/ptb-small``)::

    predictor = rnnlab.load("runs/ptb-small")
    predictor.generate("the company said", length=20, seed=1)["text"]
"""

from __future__ import annotations

import math
import re
import tempfile
import threading
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import pandas as pd

from rnnlab.data.audio import AudioError
from rnnlab.errors import UserError
from rnnlab.forecasting.predict import Forecaster
from rnnlab.forecasting.recent_rows import read_csv_text
from rnnlab.language.generation import MAX_TEMPERATURE
from rnnlab.language.run import MAX_GENERATE_LENGTH, LanguageRun, stream_text
from rnnlab.speech.ctc_task import SpeechCTCTask
from rnnlab.speech.recognize import Recognizer

__all__ = [
    "ForecastPredictor",
    "LanguagePredictor",
    "Predictor",
    "RequestError",
    "SpeechPredictor",
]


class RequestError(UserError):
    """A request the predictor cannot answer; ``field`` names the part at fault and
    ``status`` is the HTTP status a server answers with (422: understood but unusable; 400:
    a body that cannot be read at all).

    Example:
        >>> RequestError("length must lie in [1, 100000], got 0", "length").field
        'length'
    """

    def __init__(self, message: str, field: str | None = None, status: int = 422) -> None:
        super().__init__(message)
        self.field = field
        self.status = status


@runtime_checkable
class Predictor(Protocol):
    """What every predictor offers besides its task's method."""

    task: str
    run_dir: Path
    checkpoint: Path

    def describe(self) -> dict[str, Any]:
        """The run it serves: task, run directory, checkpoint and what requests take."""
        ...


class _Locked:
    """One model call at a time (torch modules are not safe to share between threads)."""

    routes: ClassVar[tuple[str, ...]] = ()

    def __init__(self) -> None:
        self._lock = threading.Lock()


class LanguagePredictor(_Locked):
    """Text generation with a loaded language run (:class:`rnnlab.language.run.LanguageRun`).

    Example (a trained run)::

        >>> LanguagePredictor(load_run("runs/ptb")).generate("the", 5, seed=1)  # doctest: +SKIP
        {'text': ' market said ...', 'prompt': 'the', 'tokens': 5, 'seed': 1, 'notices': []}
    """

    routes = ("/generate",)

    def __init__(self, run: LanguageRun, run_dir: str | Path) -> None:
        super().__init__()
        self.run = run
        self.task = "language"
        self.run_dir = Path(run_dir)
        self.checkpoint = run.checkpoint

    def describe(self) -> dict[str, Any]:
        vocab = self.run.vocab
        return {
            "task": self.task,
            "run_dir": str(self.run_dir),
            "checkpoint": self.checkpoint.name,
            "vocabulary": len(vocab),
            "level": vocab.level,
            "max_length": MAX_GENERATE_LENGTH,
            "max_temperature": MAX_TEMPERATURE,
        }

    def generate(
        self,
        prompt: str = "",
        length: int = 100,
        temperature: float = 1.0,
        top_k: int | None = None,
        seed: int | None = None,
    ) -> dict[str, Any]:
        """The text that continues ``prompt`` (the prompt itself is not repeated).

        The same ``seed`` gives the same text as :func:`rnnlab.generate` (``rnnlab generate``).
        Prompt words outside the vocabulary are read as ``<unk>``, with a notice.

        Returns:
            ``{"text", "prompt", "tokens", "seed", "notices"}``.

        Raises:
            RequestError: ``length``, ``temperature``, ``top_k`` or ``seed`` out of range.
        """
        _check_int(length, "length", 1, MAX_GENERATE_LENGTH)
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)):
            raise RequestError(f"temperature must be a number, got {temperature!r}", "temperature")
        if not (math.isfinite(temperature) and 0.0 < temperature <= MAX_TEMPERATURE):
            raise RequestError(
                f"temperature must lie in (0, {MAX_TEMPERATURE:g}], got {temperature!r}",
                "temperature",
            )
        if top_k is not None:
            _check_int(top_k, "top_k", 1, len(self.run.vocab))
        if seed is not None:
            _check_int(seed, "seed", 0, 2**63 - 1)
        if not isinstance(prompt, str):
            raise RequestError(f"prompt must be text, got {type(prompt).__name__}", "prompt")
        with self._lock, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                pieces = stream_text(
                    self.run, prompt, length, temperature=temperature, top_k=top_k, seed=seed
                )
                text = "".join(pieces)
            except UserError as err:
                raise RequestError(str(err), None) from None
        notices = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
        return {"text": text, "prompt": prompt, "tokens": length, "seed": seed, "notices": notices}


class ForecastPredictor(_Locked):
    """Forecasts with a loaded forecasting run, from JSON rows or CSV text.

    The rows go through the same checks as ``rnnlab forecast --input`` (columns, grid, fill
    policy, known-future rows: :mod:`rnnlab.forecasting.recent_rows`).

    Example (a trained run)::

        >>> p = ForecastPredictor(load_forecaster("runs/etth1"))  # doctest: +SKIP
        >>> p.forecast(csv_text=open("recent.csv").read())["rows"][0]  # doctest: +SKIP
        {'date': '2018-06-26T20:00:00', 'OT': 9.87}
    """

    routes = ("/forecast",)

    def __init__(self, forecaster: Forecaster) -> None:
        super().__init__()
        self.forecaster = forecaster
        self.task = "forecasting"
        self.run_dir = forecaster.run_dir
        self.checkpoint = forecaster.checkpoint

    def describe(self) -> dict[str, Any]:
        meta = self.forecaster.meta
        return {
            "task": self.task,
            "run_dir": str(self.run_dir),
            "checkpoint": self.checkpoint.name,
            "time_column": meta.get("time_column"),
            "columns": self.forecaster.columns,
            "targets": list(meta["target_names"]),
            "input_length": int(meta["input_length"]),
            "horizon": int(meta["horizon"]),
            "freq": meta.get("freq"),
        }

    def frame(
        self, rows: Sequence[Mapping[str, Any]] | None = None, csv_text: str | None = None
    ) -> tuple[pd.DataFrame, str, str]:
        """The request's rows as a table, with the field they came from and their label.

        Raises:
            RequestError: neither or both of ``rows`` and ``csv_text``; rows that are not
                objects; CSV text that cannot be parsed.
        """
        if (rows is None) == (csv_text is None):
            raise RequestError("give exactly one of 'rows' (JSON objects) or 'csv' (text)", "rows")
        if csv_text is not None:
            try:
                return read_csv_text(csv_text, "the request CSV"), "csv", "the request CSV"
            except UserError as err:
                raise RequestError(str(err), "csv") from None
        assert rows is not None
        if not rows:
            raise RequestError("rows is empty: give the most recent rows of the series", "rows")
        for i, row in enumerate(rows):
            if not isinstance(row, Mapping):
                raise RequestError(
                    f"rows[{i}] must be an object of column: value, got {type(row).__name__}",
                    f"rows.{i}",
                )
        return pd.DataFrame.from_records(list(rows)), "rows", "the request rows"

    def forecast(
        self,
        rows: Sequence[Mapping[str, Any]] | None = None,
        *,
        csv_text: str | None = None,
        horizon: int | None = None,
    ) -> dict[str, Any]:
        """Forecast from the most recent rows (``rows`` as JSON objects, or ``csv_text``).

        Returns:
            ``{"columns", "rows", "notices", "horizon"}``: one row per forecast step (the time
            column as ISO 8601 text, then each target and, for a Gaussian model, its
            ``_lower``/``_upper`` bounds); ``notices`` say what was done to the input.

        Raises:
            RequestError: the rows or ``horizon`` cannot be used (the message says why).
        """
        frame, field, label = self.frame(rows, csv_text)
        if horizon is not None:
            _check_int(horizon, "horizon", 1, int(self.forecaster.meta["horizon"]))
        with self._lock:
            try:
                table = self.forecaster.forecast_frame(frame, horizon=horizon, source=label)
            except UserError as err:
                raise RequestError(str(err), field) from None
        return table_answer(table)


def table_answer(table: pd.DataFrame) -> dict[str, Any]:
    """A forecast table as JSON-ready ``{"columns", "rows", "notices", "horizon"}``.

    Example:
        >>> t = pd.DataFrame({"time": pd.date_range("2022-01-01", periods=1), "y": [1.5]})
        >>> table_answer(t)["rows"]
        [{'time': '2022-01-01T00:00:00', 'y': 1.5}]
    """
    out = table.copy()
    for name in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[name]):
            out[name] = [stamp.isoformat() for stamp in out[name]]
    records = [
        {str(k): (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
        for row in out.to_dict(orient="records")
    ]
    return {
        "columns": [str(c) for c in table.columns],
        "rows": records,
        "notices": list(table.attrs.get("notices", [])),
        "horizon": len(table),
    }


class SpeechPredictor(_Locked):
    """Recognition of uploaded recordings with a loaded speech run (digits or CTC).

    Example (a trained run)::

        >>> p = SpeechPredictor(load_recognizer("runs/fsdd-gru"))  # doctest: +SKIP
        >>> p.recognize(open("7.wav", "rb").read(), "7.wav")["digit"]  # doctest: +SKIP
        7
    """

    routes = ("/recognize",)

    def __init__(self, recognizer: Recognizer, checkpoint: Path) -> None:
        super().__init__()
        self.recognizer = recognizer
        self.task = "speech-ctc" if isinstance(recognizer.task, SpeechCTCTask) else "speech-digits"
        self.run_dir = recognizer.run_dir
        self.checkpoint = checkpoint

    def describe(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "run_dir": str(self.run_dir),
            "checkpoint": self.checkpoint.name,
            "sample_rate": self.recognizer.extractor.config.sample_rate,
            "max_seconds": self.recognizer.max_seconds,
        }

    def recognize(
        self, audio: bytes, name: str = "upload.wav", beam_width: int = 1
    ) -> dict[str, Any]:
        """Recognize one recording given as the bytes of a WAV, FLAC, Ogg or AIFF file.

        Returns:
            :meth:`rnnlab.speech.recognize.Recognizer.recognize_file`'s answer, with
            ``"file"`` the upload's name.

        Raises:
            RequestError: ``beam_width`` below 1 (field ``beam``); bytes that are not a usable
                recording: empty, not audio, too long or too short (field ``file``).
        """
        _check_int(beam_width, "beam", 1, 1024)
        if not isinstance(audio, (bytes, bytearray)) or not audio:
            raise RequestError("the uploaded file is empty: send a WAV or FLAC recording", "file")
        safe = _safe_name(name)
        with tempfile.TemporaryDirectory(prefix="rnnlab-serve-") as folder:
            path = Path(folder) / safe
            path.write_bytes(bytes(audio))
            with self._lock:
                try:
                    result = self.recognizer.recognize_file(path, beam_width)
                except AudioError as err:
                    message = str(err).replace(str(path), safe).replace(folder, "")
                    raise RequestError(message, "file") from None
        result["file"] = name
        result["notices"] = [n.replace(str(path), safe) for n in result.get("notices", [])]
        return result


def _safe_name(name: str) -> str:
    """A file name for an upload: its last path part, odd characters replaced.

    Example:
        >>> _safe_name("../../etc/pass wd.wav")
        'pass_wd.wav'
    """
    base = re.sub(r"[^A-Za-z0-9._-]", "_", Path(str(name).replace("\\", "/")).name)
    base = base.lstrip(".")[:100]
    return base or "upload.wav"


def _check_int(value: Any, field: str, low: int, high: int) -> None:
    """``value`` must be an integer in ``[low, high]`` (else a :class:`RequestError`)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestError(f"{field} must be an integer, got {value!r}", field)
    if not low <= value <= high:
        raise RequestError(f"{field} must lie in [{low}, {high}], got {value}", field)
