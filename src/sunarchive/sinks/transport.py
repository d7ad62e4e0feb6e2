"""One InfluxDB write request: URL, parameters and auth per write API; the answer classified.

| API | path | database | precision values |
|---|---|---|---|
| v3 | ``/api/v3/write_lp`` | ``db`` | ``nanosecond`` ``microsecond`` ``millisecond`` ``second`` |
| v2 | ``/api/v2/write`` | ``bucket`` (+ ``org``) | ``ns`` ``us`` ``ms`` ``s`` |
| v1 | ``/write`` | ``db`` | ``n`` ``u`` ``ms`` ``s`` |

v3 and v2 send ``Authorization: Token <token>`` (what the official clients send); v1 sends basic
auth with the token as password. The token never appears in a log line or an error message.
"""

from __future__ import annotations

import email.utils
import gzip
import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from sunarchive.sinks.config import InfluxSettings

PATHS = {"v3": "/api/v3/write_lp", "v2": "/api/v2/write", "v1": "/write"}
PRECISIONS = {
    "v3": {"ns": "nanosecond", "us": "microsecond", "ms": "millisecond", "s": "second"},
    "v2": {"ns": "ns", "us": "us", "ms": "ms", "s": "s"},
    "v1": {"ns": "n", "us": "u", "ms": "ms", "s": "s"},
}
MAX_RETRY_AFTER_S = 3600.0


def base_url(host: str) -> str:
    """``scheme://host:port`` as the official client reads ``host``: https and port 443
    unless given (``localhost:8181`` → ``https://localhost:8181``)."""
    text = host if "://" in host else f"https://{host}"
    parts = urlsplit(text)
    if not parts.hostname:
        raise ValueError(f"InfluxDB host {host!r} has no host name")
    name = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{name}:{parts.port or 443}{parts.path.rstrip('/')}"


@dataclass
class Answer:
    """What InfluxDB said to one write."""

    status: int
    """HTTP status; 0 when no answer came (connection refused, timeout)."""
    reason: str = ""
    retry_after_s: float | None = None
    rejected: list[dict[str, Any]] = field(default_factory=list)
    """v3 partial write: ``original_line``, ``line_number``, ``error_message`` per bad line."""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def partial(self) -> bool:
        """Some lines were rejected, the others written (v3 partial write)."""
        return bool(self.rejected)

    @property
    def bad_lines(self) -> bool:
        """The request's content was refused: split it to find the bad lines."""
        return self.status in (400, 413, 422) and not self.rejected

    @property
    def retry(self) -> bool:
        """Try the same request again later (unreachable, 429, 5xx, auth, missing db)."""
        return not self.ok and not self.partial and not self.bad_lines


class Transport:
    """Sends line protocol bodies to one InfluxDB database."""

    def __init__(self, settings: InfluxSettings) -> None:
        self.settings = settings
        self.url = base_url(settings.host) + PATHS[settings.write_api]
        self.target = f"{base_url(settings.host)}/{settings.database}"
        api = settings.write_api
        self.params = {"db" if api != "v2" else "bucket": settings.database,
                       "precision": PRECISIONS[api][settings.precision]}
        if api == "v2":
            self.params["org"] = settings.org or ""
        self.headers = {"Content-Type": "text/plain; charset=utf-8"}
        if settings.gzip:
            self.headers["Content-Encoding"] = "gzip"
        auth: tuple[str, str] | None = None
        token = settings.token.get_secret_value() if settings.token else None
        if token and api == "v1":
            auth = (settings.username or "sunarchive", token)
        elif token:
            self.headers["Authorization"] = f"Token {token}"
        self._client = httpx.Client(timeout=settings.timeout_s, auth=auth)

    def write(self, body: bytes) -> Answer:
        """POST ``body``; never raises for network trouble (status 0 then)."""
        data = gzip.compress(body, compresslevel=1) if self.settings.gzip else body
        try:
            response = self._client.post(self.url, params=self.params, content=data,
                                         headers=self.headers)
        except httpx.HTTPError as exc:
            return Answer(0, f"{type(exc).__name__}: {exc}")
        if 200 <= response.status_code < 300:
            return Answer(response.status_code)
        return _answer(response)

    def close(self) -> None:
        self._client.close()


def _answer(response: httpx.Response) -> Answer:
    text = response.text
    reason = text.strip()[:500] or response.reason_phrase
    rejected: list[dict[str, Any]] = []
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        reason = str(data.get("error") or data.get("message") or reason)
        if isinstance(data.get("data"), list) and response.status_code == 400:
            rejected = [d for d in data["data"] if isinstance(d, dict)]
    return Answer(response.status_code, f"HTTP {response.status_code}: {reason}",
                  retry_after(response.headers.get("Retry-After")), rejected)


def retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta seconds or an HTTP date)."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)
