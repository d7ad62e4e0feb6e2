"""An in-process, strict InfluxDB 3 write endpoint on loopback (``POST /api/v3/write_lp``).

It checks what a real InfluxDB 3 checks — the token (``Bearer``, ``Token`` or basic auth with the
token as password), ``db``, ``precision`` (``auto second millisecond microsecond nanosecond`` and
``s ms us ns``), ``Content-Encoding: gzip``, the 10 MiB body limit, line protocol syntax and
field type conflicts — and answers as InfluxDB 3 does: 204, 401, 400 with a partial write body
listing each rejected line (the good lines kept), 413. Tests script failures (429 with
Retry-After, 500s), stall answers, reject chosen lines, or stop the server and start it again
on the same port. Every accepted point is recorded, in arrival order.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sunarchive.lineprotocol import parse_lines

PRECISIONS = {"auto", "second", "millisecond", "microsecond", "nanosecond", "s", "ms", "us",
              "ns"}
MAX_BODY = 10 * 2**20


@dataclass
class Point:
    measurement: str
    tags: dict[str, str]
    fields: dict[str, tuple[str, Any]]
    """field → (kind: float, int, uint, bool, string; value)."""
    time_ns: int


@dataclass
class Request:
    params: dict[str, str]
    headers: dict[str, str]
    lines: int
    status: int
    at: float = 0.0


@dataclass
class FakeInflux3:
    """The endpoint; ``start()`` binds 127.0.0.1 (a free port, then the same one again)."""

    token: str = "test-token"
    port: int = 0
    points: list[Point] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    script: deque[tuple[int, dict[str, str]]] = field(default_factory=deque)
    """Answers to give instead of processing the next requests: (status, headers)."""
    reject: Callable[[str], str | None] | None = None
    """Returns a reason to reject a line (a stand-in for a schema conflict), or None."""
    partial_writes: bool = True
    """False: a request with any bad line is refused whole, 400 without detail (as v1/v2)."""
    stall: threading.Event | None = None
    """When set to an unset Event, every request waits for it before answering."""
    _server: ThreadingHTTPServer | None = None
    _types: dict[tuple[str, str], str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _connections: list[socket.socket] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeInflux3:
        handler = type("Handler", (_Handler,), {"fake": self})
        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Go away: stop listening and cut open (keep-alive) connections."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        for conn in self._connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
        self._connections.clear()

    def series(self, measurement: str, tag: str) -> dict[str, list[int]]:
        """Timestamps per value of ``tag``, in arrival order."""
        out: dict[str, list[int]] = {}
        for p in self.points:
            if p.measurement == measurement:
                out.setdefault(p.tags.get(tag, ""), []).append(p.time_ns)
        return out

    # -- request handling --------------------------------------------------------------------
    def authorized(self, header: str | None, params: dict[str, str]) -> bool:
        if header is None:
            return False
        scheme, _, value = header.partition(" ")
        if scheme in ("Bearer", "Token"):
            return value == self.token
        if scheme == "Basic":
            _, _, password = base64.b64decode(value).decode().partition(":")
            return password == self.token
        return False

    def write(self, text: str, precision: str, accept_partial: bool) -> tuple[int, Any]:
        good: list[Point] = []
        errors: list[dict[str, Any]] = []
        for number, line in enumerate(text.split("\n"), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            point, why = self._point(line, precision)
            if point is None:
                errors.append({"original_line": line, "line_number": number,
                               "error_message": why})
            else:
                good.append(point)
        if errors and not self.partial_writes:
            return 400, {"error": f"write failed: {errors[0]['error_message']}"}
        if errors and not accept_partial:
            return 400, {"error": "parsing failed for write_lp endpoint", "data": errors}
        with self._lock:
            for point in good:
                for name, (kind, _) in point.fields.items():
                    self._types.setdefault((point.measurement, name), kind)
            self.points.extend(good)
        if errors:
            return 400, {"error": "partial write of line protocol occurred", "data": errors}
        return 204, None

    def _point(self, line: str, precision: str) -> tuple[Point | None, str]:
        result = parse_lines(line, precision)
        if result.errors:
            return None, result.errors[0].message
        (m,) = result.measurements.values()
        fields: dict[str, tuple[str, Any]] = {name: (f.kind, f.values[0])
                                              for name, f in m.fields.items()}
        for name, (kind, _) in fields.items():
            known = self._types.get((m.measurement, name))
            if known is not None and known != kind:
                return None, (f"invalid column type for column '{name}', expected {known}, "
                              f"got {kind}")
        reason = self.reject(line) if self.reject else None
        if reason:
            return None, reason
        tags = {k: v for k, v in zip(m.tag_keys, m.tag_sets[0], strict=True) if v}
        return Point(m.measurement, tags, fields, int(m.time_ns[0])), ""


class _Handler(BaseHTTPRequestHandler):
    fake: FakeInflux3
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        self.fake._connections.append(self.connection)

    def do_POST(self) -> None:
        fake = self.fake
        parts = urlsplit(self.path)
        params = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length)
        if fake.stall is not None:
            fake.stall.wait()
        status, body, headers = self._handle(parts.path, params, raw)
        lines = body.get("lines", 0) if isinstance(body, dict) else 0
        fake.requests.append(Request(params, dict(self.headers), lines, status, time.time()))
        payload = b"" if body is None or "lines" in body else json.dumps(body).encode()
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        if payload:
            self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(payload)

    def _handle(self, path: str, params: dict[str, str], raw: bytes
                ) -> tuple[int, dict[str, Any] | None, dict[str, str]]:
        fake = self.fake
        if path != "/api/v3/write_lp":
            return 404, {"error": f"no route {path}"}, {}
        if not fake.authorized(self.headers.get("Authorization"), params):
            return 401, {"error": "the request was not authenticated"}, {}
        if fake.script:
            status, headers = fake.script.popleft()
            return status, {"error": f"scripted {status}"}, headers
        if not params.get("db"):
            return 400, {"error": "missing db"}, {}
        precision = params.get("precision", "auto")
        if precision not in PRECISIONS:
            return 400, {"error": f"invalid precision {precision!r}"}, {}
        if self.headers.get("Content-Encoding") == "gzip":
            try:
                raw = gzip.decompress(raw)
            except (OSError, EOFError):
                return 400, {"error": "invalid gzip body"}, {}
        elif self.headers.get("Content-Encoding") not in (None, "identity"):
            return 415, {"error": "unsupported content encoding"}, {}
        if len(raw) > MAX_BODY:
            return 413, {"error": "request body too large"}, {}
        accept = params.get("accept_partial", "true") != "false"
        status, body = fake.write(raw.decode("utf-8"), precision, accept)
        if status == 204:
            return 204, {"lines": raw.count(b"\n")}, {}
        return status, body, {}
