"""What the HTTP handlers share: the store, the live state, the writer's queue, the tokens."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from fastapi import HTTPException, Request

from sunarchive.api.auth import TokenSet, token_candidates
from sunarchive.api.limits import WriteLimits
from sunarchive.pipeline.agent import Agent
from sunarchive.pipeline.live import LiveState
from sunarchive.pipeline.tasks import wait
from sunarchive.profiles.spec import Profile
from sunarchive.query import parse_time
from sunarchive.storage.open import SqlStore

T = TypeVar("T")


@dataclass
class ApiContext:
    """One per server. ``agent`` is None for a server that cannot write."""

    store: SqlStore
    live: LiveState
    agent: Agent | None = None
    tokens: TokenSet = field(default_factory=TokenSet)
    timezone: str = "UTC"
    max_body_bytes: int = 10 * 2**20
    started_at: float = 0.0
    limits: WriteLimits = field(default_factory=WriteLimits)
    ps100: Any = None
    """The ``ps100:`` settings (:class:`sunarchive.upstream.ps100.Ps100Settings`) of the
    running app, for the clear-sky upkeep after a panel edit; None: the defaults."""
    writer_wait_s: float = 30.0
    """How long a write waits for the writer to run its task (create or grow a measurement,
    add state labels) before it is answered 503 "retry later", in seconds."""

    def on_writer(self, fn: Callable[[], T], what: str) -> T:
        """Run ``fn`` on the writer thread, the one owner of store writes, and return its
        result (its exception is raised here). Blocking, at most ``writer_wait_s``: call it
        from a worker thread, never on the event loop."""
        if self.agent is None:
            raise HTTPException(403, "this server does not accept writes (started without "
                                     "a writer)")
        return wait(self.agent.submit(fn, what), self.writer_wait_s, what)

    @property
    def profiles(self) -> dict[str, Profile]:
        return self.store.profiles

    def profile(self, measurement: str) -> Profile:
        found = self.store.profiles.get(measurement)
        if found is None:
            raise HTTPException(404, f"unknown measurement {measurement!r}; known: "
                                     f"{', '.join(sorted(self.store.profiles))}")
        return found

    def authorize(self, request: Request, scope: str) -> None:
        """401 unless the request carries a token good for ``scope`` (when tokens are set)."""
        tokens = token_candidates(request.headers.get("authorization"),
                                  request.query_params.get("p"))
        if not self.tokens.allows_any(tokens, scope):
            raise HTTPException(401, f"a token with {scope} access is required "
                                     "(Authorization: Bearer <token>)",
                                headers={"WWW-Authenticate": "Bearer"})


def instant(value: str | None, name: str, default: datetime | None = None) -> datetime:
    """A query parameter as an aware time; 400 naming the parameter when it is not one."""
    if value is None or value == "":
        if default is None:
            raise HTTPException(400, f"{name} is required (ISO 8601 with offset)")
        return default
    try:
        return parse_time(value, name)
    except Exception as exc:
        raise HTTPException(400, str(exc)) from None


def iso(value: Any) -> Any:
    """JSON-ready value: datetimes become ISO 8601 with offset (naive ones are UTC)."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.isoformat()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, float) and value != value:  # NaN
        return None
    return value
