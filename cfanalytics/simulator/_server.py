"""A loopback HTTP server in front of a :class:`~.app.Simulator` (stdlib ``http.server``).

``serve(sim)`` starts it on a free port in a background thread and returns a
:class:`SimServer` (``.url``, ``.close()``, a context manager); ``SimServer.serve_forever()``
runs it in the foreground for a CLI. Headers are exactly the simulator's: the handler writes
no ``Server`` or ``Date`` of its own, so the ``Date`` comes from the sim clock. It listens on
loopback only unless ``allow_remote=True``: the simulator accepts whatever keys it was given,
so it should not be reachable from elsewhere by accident.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from ._app import Simulator

__all__ = ["SimServer", "serve"]

logger = logging.getLogger(__name__)
# How often serve_forever checks for shutdown: close() waits up to this long.
_POLL_S = 0.05


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Handler(BaseHTTPRequestHandler):
    """Hands every request to the server's simulator and writes its answer verbatim."""

    protocol_version = "HTTP/1.1"  # keep-alive, so benchmarks measure the simulator
    # Buffer the response so headers and body leave in one segment (flushed after each
    # request by http.server), and send at once: otherwise Nagle's algorithm meets the
    # client's delayed ACK and every response waits ~40 ms.
    wbufsize = 1 << 16
    disable_nagle_algorithm = True
    server: _HTTPServer

    def _dispatch(self) -> None:
        split = urlsplit(self.path)
        query: dict[str, str] = {}
        for key, value in parse_qsl(split.query, keep_blank_values=True):
            # The first value of a repeated parameter wins, as with httpx's QueryParams.
            query.setdefault(key, value)
        headers = {key: value for key, value in self.headers.items()}
        answer = self.server.simulator.handle(self.command, unquote(split.path), query, headers)
        if answer.fault == "drop":
            self.close_connection = True  # nothing written: the client sees a hang-up
            return
        if answer.fault == "latency":
            time.sleep(answer.latency)
        self.send_response_only(answer.status)
        for key, value in answer.headers:
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer.body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        """Route the default stderr access log to ``logging`` at debug level."""
        logger.debug("%s - " + format, self.address_string(), *args)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    # A burst of benchmark connections must not overflow the default backlog of 5.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], simulator: Simulator) -> None:
        self.simulator = simulator
        super().__init__(address, _Handler)


class _HTTPServer6(_HTTPServer):
    address_family = socket.AF_INET6


class SimServer:
    """A bound simulator server; start it with :meth:`start` or :meth:`serve_forever`."""

    def __init__(
        self,
        simulator: Simulator,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        allow_remote: bool = False,
    ) -> None:
        if not allow_remote and not _is_loopback(host):
            raise ValueError(
                f"refusing to serve the simulator on non-loopback host {host!r}; "
                "pass allow_remote=True if you mean it"
            )
        self.simulator = simulator
        server_class = _HTTPServer6 if ":" in host else _HTTPServer
        self._httpd = server_class((host, port), simulator)
        self.host = host
        self.port: int = self._httpd.server_address[1]
        self._thread: threading.Thread | None = None
        self._serving = threading.Event()

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:54321``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def __repr__(self) -> str:
        return f"SimServer(url={self.url!r})"

    def start(self) -> SimServer:
        """Serve from a daemon thread; returns self."""
        if self._thread is None:
            self._serving.set()  # before the thread runs, so an early close() still stops it
            self._thread = threading.Thread(
                target=self._loop, name=f"sim-server-{self.port}", daemon=True
            )
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Block until :meth:`close` is called from another thread (or Ctrl-C).

        Serves in the calling thread; if :meth:`start` (or :func:`serve`) already serves from a
        background thread, just waits for it, so ``with serve(sim) as s: s.serve_forever()``
        works too.
        """
        thread = self._thread
        if thread is None:
            self._serving.set()
            self._loop()
            return
        while thread.is_alive():
            thread.join(0.1)  # a timed join lets Ctrl-C reach the main thread

    def _loop(self) -> None:
        try:
            self._httpd.serve_forever(poll_interval=_POLL_S)
        finally:
            self._serving.clear()

    def close(self) -> None:
        """Stop serving and release the port."""
        if self._serving.is_set():
            self._httpd.shutdown()  # blocks until the serving loop has left
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> SimServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def serve(
    simulator: Simulator, host: str = "127.0.0.1", port: int = 0, *, allow_remote: bool = False
) -> SimServer:
    """Start a :class:`SimServer` for ``simulator`` in a background thread."""
    return SimServer(simulator, host, port, allow_remote=allow_remote).start()
