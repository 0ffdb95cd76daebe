"""Running the HTTP API with uvicorn: :func:`serve` (``rnnlab serve``) and :func:`running`
(a server in a background thread, for tests, benchmarks and notebooks).

Both listen on a socket bound here first, so ``port=0`` picks a free port and the address
is known before the first request. One process, one model: the predictor serializes model
calls and requests queue (:mod:`rnnlab.serving.app`).

Example::

    >>> import httpx, rnnlab
    >>> app = create_app(rnnlab.load("runs/ptb-small"))  # doctest: +SKIP
    >>> with running(app) as url:  # doctest: +SKIP
    ...     httpx.get(f"{url}/health").json()["task"]
    'language'
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

import torch
import uvicorn
from fastapi import FastAPI

from rnnlab.errors import UserError
from rnnlab.serving.app import DEFAULT_MAX_BODY_BYTES, create_app
from rnnlab.serving.load import load

__all__ = ["bind", "running", "serve"]


def bind(host: str = "127.0.0.1", port: int = 8000) -> socket.socket:
    """A listening TCP socket on ``host:port`` (``port=0``: a free port the system picks).

    Raises:
        UserError: a port outside 0..65535, an unknown host, or an address in use.

    Example:
        >>> sock = bind("127.0.0.1", 0)
        >>> sock.getsockname()[1] > 0
        True
        >>> sock.close()
    """
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise UserError(f"--port must lie in [0, 65535], got {port!r}")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
    except (OSError, UnicodeError) as err:
        raise UserError(f"cannot listen on {host}:{port}: {err}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(1024)
    except OSError as err:
        sock.close()
        raise UserError(f"cannot listen on {host}:{port}: {err.strerror or err}") from None
    return sock


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class _Server(uvicorn.Server):
    """uvicorn's server, stopped gracefully by SIGINT/SIGTERM without re-raising the signal
    afterwards: :func:`serve` then returns, and says which signal stopped it."""

    stopped_by: int | None = None

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        stops = (signal.SIGINT, signal.SIGTERM)
        original = {sig: signal.signal(sig, self._stop) for sig in stops}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)

    def _stop(self, sig: int, frame: FrameType | None) -> None:
        self.stopped_by = sig
        self.handle_exit(sig, frame)


def _server(app: FastAPI, access_log: bool, log_level: str = "info") -> _Server:
    config = uvicorn.Config(app, log_level=log_level, access_log=access_log, lifespan="off")
    return _Server(config)


def serve(
    run_dir: str | os.PathLike[str],
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    checkpoint: str = "best",
    device: str = "cpu",
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    access_log: bool = False,
    threads: int | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> str | None:
    """Load ``run_dir`` and answer HTTP requests on ``host:port`` until Ctrl-C / SIGTERM.

    A signal stops the server gracefully (the requests in progress are answered first).

    Args:
        run_dir: a language, forecasting or speech run (:func:`rnnlab.load`).
        host: the address to listen on (``0.0.0.0``: every interface).
        port: the TCP port (``0``: a free one).
        checkpoint: ``best`` (else ``last``) or ``last``.
        device: where the model runs.
        max_body_bytes: the largest request body accepted (413 above).
        access_log: log one line per request.
        threads: torch's intra-op threads (``torch.set_num_threads``; default: torch's own).
            Small models answer faster with 1 on a busy machine.
        on_ready: called with the server's URL once it listens (before the first request).

    Returns:
        The name of the signal that stopped the server (``"SIGINT"``, ``"SIGTERM"``), or
        ``None`` when it stopped otherwise.

    Raises:
        UserError: the run cannot be loaded, or the address cannot be listened on.
    """
    if isinstance(max_body_bytes, bool) or not isinstance(max_body_bytes, int):
        raise UserError(f"the body limit must be a whole number of bytes, got {max_body_bytes!r}")
    if max_body_bytes < 1:
        raise UserError(f"the body limit must be at least 1 byte, got {max_body_bytes}")
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise UserError(f"--threads must be a whole number >= 1, got {threads!r}")
        torch.set_num_threads(threads)
    predictor = load(run_dir, checkpoint, device)
    app = create_app(predictor, max_body_bytes=max_body_bytes)
    sock = bind(host, port)
    try:
        if on_ready is not None:
            on_ready(_url(sock))
        server = _server(app, access_log)
        server.run(sockets=[sock])
    finally:
        sock.close()
    return None if server.stopped_by is None else signal.Signals(server.stopped_by).name


@contextmanager
def running(app: FastAPI, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve ``app`` from a background thread; yields its URL, stops it on exit.

    Raises:
        UserError: the address cannot be listened on.
        RuntimeError: the server did not start within 30 s.
    """
    sock = bind(host, port)
    server = _server(app, access_log=False, log_level="warning")
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="rnnlab-serve", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 30.0
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError("the HTTP server did not start")
        time.sleep(0.01)
    try:
        yield _url(sock)
    finally:
        server.should_exit = True
        thread.join(timeout=30.0)
        sock.close()
