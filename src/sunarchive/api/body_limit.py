"""Request bodies of the read endpoints that take a statement (``/api/v1/sql``, ``/query``)
are limited like the write endpoints' (``http_max_body_mb``): 413 beyond it, read no further.

An ASGI middleware, so the body is refused before FastAPI reads it whole to parse it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Asgi = Callable[[Scope, Receive, Send], Awaitable[None]]

LIMITED_PATHS = frozenset({"/api/v1/sql", "/query"})
GONE = b"\0gone"
"""What :meth:`BodyLimit._read` returns for a client that disconnected mid-body."""


class BodyLimit:
    """Answers 413 for a body over ``limit_bytes`` on ``paths``; other requests pass."""

    def __init__(self, app: Asgi, limit_bytes: int,
                 paths: frozenset[str] = LIMITED_PATHS) -> None:
        self.app, self.limit, self.paths = app, limit_bytes, paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.limit:
            await _too_large(send, f"request body of {declared} bytes exceeds the limit of "
                                   f"{self.limit} bytes")
            return
        body = await self._read(receive)
        if body is GONE:
            return  # the client went away: nothing to answer, nothing to run
        if body is None:
            await _too_large(send, f"request body exceeds the limit of {self.limit} bytes")
            return
        await self.app(scope, _replay(body, receive), send)

    async def _read(self, receive: Receive) -> bytes | None:
        """The whole body; None once it grows past the limit; :data:`GONE` when the client
        disconnected before sending all of it."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return GONE
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", []):
        if key == b"content-length" and value.isdigit():
            return int(value)
    return None


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def _too_large(send: Send, message: str) -> None:
    payload = orjson.dumps({"error": message})
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})
