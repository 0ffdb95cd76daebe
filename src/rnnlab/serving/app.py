"""The HTTP JSON API of a predictor: :func:`create_app` (FastAPI).

Routes (only the task's own route besides ``/health``):

=================  ======================================================================
route              request -> answer
=================  ======================================================================
``GET /health``    ``{"status": "ok", "task", "run_dir", "checkpoint", "routes", ...}``
``POST /generate`` JSON ``{"prompt", "length", "temperature", "top_k", "seed"}`` ->
                   ``{"text", "prompt", "tokens", "seed", "notices"}`` (language runs)
``POST /forecast`` JSON ``{"rows": [{column: value}, ...], "horizon"}`` or ``{"csv": "..."}``,
                   or a ``text/csv`` body (``?horizon=``) -> ``{"columns", "rows", "notices",
                   "horizon"}`` (forecasting runs)
``POST /recognize`` multipart upload ``file`` (WAV, FLAC, Ogg, AIFF), form field ``beam`` ->
                   the recognizer's answer (speech runs)
=================  ======================================================================

Every error is JSON ``{"error": "<one line>", "field": "<the field at fault or null>"}``:
malformed JSON or a body that is not UTF-8 400; a missing field, a wrong type, a value out of
range, rows the run cannot use, an upload that is not audio 422; an unknown route 404; a body
over ``max_body_bytes`` 413; a content type the route does not read 415; more than
``max_queue`` requests waiting 503; anything unexpected 500 with the exception's type only
(the traceback goes to the server log, never to the client).

Concurrency: the predictor serializes its model calls (a lock), so concurrent requests queue
in the server's worker threads and are answered one after another.

Example::

    >>> import rnnlab
    >>> app = create_app(rnnlab.load("runs/ptb-small"), max_body_bytes=1 << 20)  # doctest: +SKIP
    >>> # uvicorn.run(app, port=8000), or rnnlab.serving.server.serve("runs/ptb-small")
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rnnlab.errors import UserError
from rnnlab.language.generation import MAX_TEMPERATURE
from rnnlab.language.run import MAX_GENERATE_LENGTH
from rnnlab.serving.load import AnyPredictor
from rnnlab.serving.predictors import (
    ForecastPredictor,
    LanguagePredictor,
    RequestError,
    SpeechPredictor,
)

log = logging.getLogger("rnnlab.serving")

#: The default limit on a request body (10 MiB).
DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024
#: The default number of requests that may wait for the model at once.
DEFAULT_MAX_QUEUE = 64

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_QUEUE",
    "BodyLimit",
    "ForecastRequest",
    "GenerateRequest",
    "create_app",
    "error_body",
]


class GenerateRequest(BaseModel):
    """The body of ``POST /generate`` (unknown fields are refused)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    prompt: str = ""
    length: int = Field(100, ge=1, le=MAX_GENERATE_LENGTH)
    temperature: float = Field(1.0, gt=0.0, le=MAX_TEMPERATURE, allow_inf_nan=False)
    top_k: int | None = Field(None, ge=1)
    seed: int | None = Field(None, ge=0, lt=2**63)


class ForecastRequest(BaseModel):
    """The JSON body of ``POST /forecast``: ``rows`` or ``csv``, and an optional horizon."""

    model_config = ConfigDict(extra="forbid", strict=True)

    rows: list[dict[str, Any]] | None = None
    csv: str | None = None
    horizon: int | None = Field(None, ge=1)


class GenerateResponse(BaseModel):
    text: str
    prompt: str
    tokens: int
    seed: int | None
    notices: list[str]


class ForecastResponse(BaseModel):
    columns: list[str]
    rows: list[dict[str, Any]]
    notices: list[str]
    horizon: int


def error_body(message: str, field: str | None = None) -> dict[str, Any]:
    """The JSON every error answers with.

    Example:
        >>> error_body("length: must be >= 1", "length")
        {'error': 'length: must be >= 1', 'field': 'length'}
    """
    return {"error": " ".join(str(message).split()), "field": field}


class _BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than the limit of {limit} bytes")


class BodyLimit:
    """ASGI middleware: a request body over ``max_bytes`` is answered 413 (JSON).

    A ``Content-Length`` over the limit is refused before anything is read; a body sent
    without one (chunked) is counted as it arrives and refused once it passes the limit.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                await _send_json(send, 400, error_body("Content-Length is not a number", "body"))
                return
            if size > self.max_bytes:
                await _send_json(send, 413, error_body(_BodyTooLarge(self.max_bytes).detail))
                return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, counted, send)


async def _send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    response = JSONResponse(body, status_code=status)
    await send({"type": "http.response.start", "status": status, "headers": response.raw_headers})
    await send({"type": "http.response.body", "body": response.body})


class _Gate:
    """Counts the requests waiting for the model; past ``limit`` a request is refused (503)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.waiting = 0
        self._lock = threading.Lock()

    @contextmanager
    def enter(self) -> Iterator[None]:
        with self._lock:
            if self.waiting >= self.limit:
                raise HTTPException(503, f"busy: {self.waiting} requests are waiting; retry")
            self.waiting += 1
        try:
            yield
        finally:
            with self._lock:
                self.waiting -= 1


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    """``("body", "rows", 0)`` -> ``"rows.0"``; the body itself is ``"body"``."""
    parts = [str(p) for p in loc if p not in ("body", "query", "form", "path", "header")]
    return ".".join(parts) or "body"


def _validation_answer(errors: list[Any]) -> JSONResponse:
    """The 400/422 answer for pydantic's errors: the first field at fault and every message."""
    if any(e.get("type") == "json_invalid" for e in errors):
        detail = next(e for e in errors if e.get("type") == "json_invalid")
        reason = (detail.get("ctx") or {}).get("error", detail.get("msg", ""))
        return JSONResponse(error_body(f"malformed JSON: {reason}", "body"), status_code=400)
    messages = [f"{_field(e.get('loc', ()))}: {e.get('msg', 'invalid')}" for e in errors]
    first = _field(errors[0].get("loc", ())) if errors else "body"
    return JSONResponse(error_body("; ".join(messages), first), status_code=422)


def create_app(
    predictor: AnyPredictor,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_queue: int = DEFAULT_MAX_QUEUE,
) -> FastAPI:
    """The FastAPI app serving ``predictor`` (see the module docstring for the routes).

    Args:
        predictor: from :func:`rnnlab.load`.
        max_body_bytes: the largest request body accepted (413 above it).
        max_queue: the most requests waiting for the model at once (503 above it).

    Raises:
        ValueError: a limit below 1.
    """
    if max_body_bytes < 1 or max_queue < 1:
        raise ValueError("max_body_bytes and max_queue must be >= 1")
    app = FastAPI(
        title=f"rnnlab: {predictor.task} run {predictor.run_dir.name}",
        description=__doc__,
        version="1",
    )
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    gate = _Gate(max_queue)
    routes = ["/health", *type(predictor).routes]

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _validation_answer(list(exc.errors()))

    @app.exception_handler(UserError)
    async def refused(request: Request, exc: UserError) -> JSONResponse:
        if isinstance(exc, RequestError):
            return JSONResponse(error_body(str(exc), exc.field), status_code=exc.status)
        return JSONResponse(error_body(str(exc)), status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        message = str(exc.detail)
        if exc.status_code == 404:
            message = f"no route {request.url.path}: this {predictor.task} server has {routes}"
        field = "body" if exc.status_code in (400, 413, 415) else None
        return JSONResponse(
            error_body(message, field), status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(Exception)
    async def failed(request: Request, exc: Exception) -> JSONResponse:
        log.error("request %s %s failed", request.method, request.url.path, exc_info=exc)
        message = f"internal error ({type(exc).__name__}); the details are in the server log"
        return JSONResponse(error_body(message), status_code=500)

    @app.get("/health")
    def health() -> dict[str, Any]:
        """The run served, its routes and how many requests wait for the model."""
        return {"status": "ok", **predictor.describe(), "routes": routes, "waiting": gate.waiting}

    if isinstance(predictor, LanguagePredictor):
        language = predictor

        @app.post("/generate", response_model=GenerateResponse)
        def generate(request: GenerateRequest) -> dict[str, Any]:
            """Continue ``prompt`` with ``length`` sampled tokens (the same seed, the same text)."""
            with gate.enter():
                return language.generate(
                    request.prompt, request.length, request.temperature, request.top_k, request.seed
                )

    if isinstance(predictor, ForecastPredictor):
        forecaster = predictor

        @app.post("/forecast", response_model=ForecastResponse)
        async def forecast(request: Request, horizon: int | None = None) -> Any:
            """Forecast from JSON ``rows`` or ``csv`` text, or from a ``text/csv`` body."""
            kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
            body = await request.body()
            try:
                if kind in ("text/csv", "text/plain", "application/csv"):
                    try:
                        text = body.decode("utf-8")
                    except UnicodeDecodeError:
                        raise RequestError("the CSV body is not UTF-8 text", "body", 400) from None
                    parsed = ForecastRequest.model_validate({"csv": text, "horizon": horizon})
                elif kind in ("application/json", ""):
                    parsed = ForecastRequest.model_validate_json(body or b"null")
                    if horizon is not None and parsed.horizon is None:
                        parsed = ForecastRequest.model_validate(
                            {"rows": parsed.rows, "csv": parsed.csv, "horizon": horizon}
                        )
                else:
                    raise HTTPException(
                        415, f"content type {kind!r}: send application/json or text/csv"
                    )
            except ValidationError as err:
                return _validation_answer(list(err.errors()))

            def run() -> dict[str, Any]:
                with gate.enter():
                    return forecaster.forecast(
                        parsed.rows, csv_text=parsed.csv, horizon=parsed.horizon
                    )

            return await run_in_threadpool(run)

    if isinstance(predictor, SpeechPredictor):
        speech = predictor

        @app.post("/recognize")
        def recognize(
            file: Annotated[UploadFile, File(description="A WAV, FLAC, Ogg or AIFF file.")],
            beam: Annotated[int, Form(ge=1, le=1024)] = 1,
        ) -> dict[str, Any]:
            """Recognize one uploaded recording (a digit, or a transcript with word times)."""
            audio = file.file.read()
            with gate.enter():
                return speech.recognize(audio, file.filename or "upload.wav", beam)

    return app
