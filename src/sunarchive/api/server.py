"""Serve the API with uvicorn on a background thread, next to the collector.

Slow clients cannot hold connections: a request's line and headers must arrive within
``header_timeout_s`` (from connecting, or from the first byte of a later request on the same
connection), else the connection is closed (with a 408 when part of a request came); a body
that makes no progress for as long is cut off too (the handler sees the client leave); an
idle connection after a response is closed after ``keep_alive_s``.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import time

import h11
import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.h11_impl import H11Protocol

from sunarchive.model import ConfigError

START_TIMEOUT_S = 10.0
SHUTDOWN_GRACE_S = 5
"""At stop, how long requests still running may finish, in seconds."""
_TOO_SLOW = b"request line and headers came in too slowly"
REQUEST_TIMEOUT = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
                   b"connection: close\r\ncontent-length: %d\r\n\r\n%s"
                   % (len(_TOO_SLOW), _TOO_SLOW))
"""What a client that sent part of a request gets when its header deadline passes."""


class HeaderTimeoutProtocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for each request's line and headers, and for
    each step of progress of its body."""

    header_timeout_s = 10.0
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._watch_header()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch_header()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_header_timer()
        super().connection_lost(exc)

    def _watch_header(self) -> None:
        """Start the deadline while a request's head is awaited and data (or the connection)
        has come; restart it whenever body data comes; stop it once the request is in."""
        state = self.conn.their_state
        upgraded = self.transport.get_protocol() is not self     # a WebSocket now
        if upgraded or self.transport.is_closing() or state not in (h11.IDLE, h11.SEND_BODY):
            self._stop_header_timer()
        elif state is h11.SEND_BODY:
            self._stop_header_timer()
            self._header_timer = self.loop.call_later(self.header_timeout_s,
                                                      self._body_stalled)
        elif self._header_timer is None and self.timeout_keep_alive_task is None:
            self._header_timer = self.loop.call_later(self.header_timeout_s,
                                                      self._header_too_slow)

    def _stop_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_too_slow(self) -> None:
        self._header_timer = None
        if self.conn.their_state is not h11.IDLE or self.transport.is_closing():
            return
        if self.conn.trailing_data[0]:
            self.transport.write(REQUEST_TIMEOUT)
        self.transport.close()

    def _body_stalled(self) -> None:
        self._header_timer = None
        if self.conn.their_state is not h11.SEND_BODY or self.transport.is_closing() \
                or self.transport.get_protocol() is not self:
            return
        if self.flow.read_paused:       # the handler is behind, not the client: wait again
            self._watch_header()
            return
        self.transport.close()


def header_timeout_protocol(timeout_s: float) -> type[HeaderTimeoutProtocol]:
    """:class:`HeaderTimeoutProtocol` with a deadline of ``timeout_s`` seconds."""
    return type("HeaderTimeoutProtocol", (HeaderTimeoutProtocol,),
                {"header_timeout_s": timeout_s})


class HttpServer:
    """uvicorn on a daemon thread; ``start`` fails clearly when the port cannot be bound."""

    def __init__(self, app: FastAPI, host: str, port: int, header_timeout_s: float = 10.0,
                 keep_alive_s: int = 5) -> None:
        self.host, self.port = host, port
        config = uvicorn.Config(app, host=host, port=port, log_level="warning",
                                access_log=False, lifespan="off",
                                http=header_timeout_protocol(header_timeout_s),
                                timeout_keep_alive=keep_alive_s,
                                timeout_graceful_shutdown=SHUTDOWN_GRACE_S)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="sunarchive-http",
                                        daemon=True)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise ConfigError(f"cannot serve HTTP on {self.host}:{self.port} (is the port "
                                  "in use? choose another with --http-port, or --no-http)")
            time.sleep(0.02)
        # Everything built so far (store, profiles, libraries) lives as long as the server:
        # keep it out of the collector's scans, which otherwise cost milliseconds per
        # request that builds many small objects (the rows of a JSON answer).
        gc.freeze()

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(5.0)
        gc.unfreeze()
