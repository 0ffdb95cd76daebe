"""Shared by the serving tests: a server on a free local port, driven by a real HTTP client."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

import httpx

from rnnlab.serving.app import create_app
from rnnlab.serving.load import AnyPredictor
from rnnlab.serving.server import running

T = TypeVar("T")


@contextmanager
def served(predictor: AnyPredictor, **limits: int) -> Iterator[httpx.Client]:
    """``predictor``'s app served by uvicorn in a thread on 127.0.0.1 (a free port), and an
    HTTP client for it; the server stops at the end."""
    with (
        running(create_app(predictor, **limits)) as url,
        httpx.Client(base_url=url, timeout=120.0) as client,
    ):
        yield client


def error_of(response: httpx.Response, status: int, field: str | None) -> str:
    """The one-line error message of a JSON error answer, after checking its status and field."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error", "field"}, body
    assert body["field"] == field, body
    assert "Traceback" not in body["error"] and "\n" not in body["error"]
    return str(body["error"])


def at_once(call: Callable[[int], T], count: int = 8) -> list[T]:
    """``call(0) .. call(count - 1)`` from ``count`` threads at the same time, in order."""
    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(call, range(count)))


def post_json_text(client: httpx.Client, route: str, text: str) -> httpx.Response:
    """POST raw text labelled as JSON (for malformed bodies)."""
    return client.post(route, content=text, headers={"content-type": "application/json"})


__all__ = ["at_once", "error_of", "post_json_text", "served"]
