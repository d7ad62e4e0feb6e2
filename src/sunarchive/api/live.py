"""WebSocket ``/api/v1/live``: each second's 1 s rows of the series a client subscribes to.

The writer thread hands every committed batch to :meth:`LiveHub.publish`, which only schedules
work on the server's event loop and returns: a client never slows ingest. Each client has a
small queue; when it is full the client is behind, the message is skipped and counted, and a
client that keeps falling behind is disconnected.

Protocol: the client sends ``{"subscribe": [{"measurement": "ps100_readings",
"tags": {"panel_id": "panel_1"}}]}`` (``tags`` optional: every series of the measurement);
the server answers ``{"subscribed": [...]}`` and then sends ``{"rows": [...]}`` messages,
each row ``{"measurement", "time", "tags", "values"}``. ``token`` may be a query parameter.
A message the server cannot use (a binary frame, bad JSON, a wrong type, an unknown
measurement or tag) gets ``{"error": "..."}`` naming the problem; the connection and the
previous subscriptions stay.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from sunarchive.api.auth import token_from
from sunarchive.api.context import ApiContext
from sunarchive.model import StatsRows
from sunarchive.profiles.spec import Profile

log = logging.getLogger(__name__)
router = APIRouter()
QUEUE_MESSAGES = 32
MAX_SKIPPED = 64
"""A client that missed this many messages in a row is disconnected."""
MAX_ROWS_PER_MESSAGE = 5000


@dataclass
class Subscription:
    measurement: str
    tags: dict[str, str] = field(default_factory=dict)

    def matches(self, measurement: str, tags: dict[str, str]) -> bool:
        return measurement == self.measurement and all(
            tags.get(k) == v for k, v in self.tags.items())


class LiveClient:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[list[dict[str, Any]] | None] = asyncio.Queue(QUEUE_MESSAGES)
        self.subscriptions: list[Subscription] = []
        self.skipped = 0
        self.skipped_in_a_row = 0

    def offer(self, rows: list[dict[str, Any]]) -> None:
        """On the event loop: queue the rows this client wants, or skip when it is behind."""
        wanted = [r for r in rows if any(s.matches(r["measurement"], r["tags"])
                                         for s in self.subscriptions)]
        if not wanted:
            return
        try:
            self.queue.put_nowait(wanted)
            self.skipped_in_a_row = 0
        except asyncio.QueueFull:
            self.skipped += 1
            self.skipped_in_a_row += 1
            if self.skipped_in_a_row >= MAX_SKIPPED:
                self.queue = asyncio.Queue(1)
                self.queue.put_nowait(None)   # tells the sender to hang up


class LiveHub:
    """Fans committed rows out to WebSocket clients without blocking the writer."""

    def __init__(self, profiles: dict[str, Profile]) -> None:
        self.profiles = profiles
        self.loop: asyncio.AbstractEventLoop | None = None
        self.clients: set[LiveClient] = set()

    def publish(self, rows: StatsRows, tags: dict[int, tuple[str, ...]]) -> None:
        """Writer thread: hand the rows to the event loop and return at once."""
        loop = self.loop
        if loop is None or not self.clients:
            return
        payload = rows_payload(self.profiles.get(rows.measurement), rows, tags)
        for client in list(self.clients):
            loop.call_soon_threadsafe(client.offer, payload)


def rows_payload(profile: Profile | None, rows: StatsRows,
                 tags: dict[int, tuple[str, ...]]) -> list[dict[str, Any]]:
    """JSON-ready rows (the newest ones when a bulk commit is very large)."""
    names = profile.tags if profile else ()
    start = max(0, len(rows) - MAX_ROWS_PER_MESSAGE)
    out = []
    for i in range(start, len(rows)):
        sid = int(rows.series_id[i])
        values = {k: _number(v[i]) for k, v in rows.columns.items()}
        out.append({"measurement": rows.measurement,
                    "time": datetime.fromtimestamp(int(rows.time_s[i]), UTC).isoformat(),
                    "tags": dict(zip(names, tags.get(sid, ()), strict=False)),
                    "values": values})
    return out


def _number(value: Any) -> float | None:
    number = float(value)
    return None if math.isnan(number) else number


USAGE = 'send {"subscribe": [{"measurement": "...", "tags": {...}}]}'
MAX_SUBSCRIPTIONS = 1000
JSON_KINDS = {dict: "an object", list: "an array", str: "a string", bool: "true or false",
              int: "a number", float: "a number", type(None): "null"}


def _kind(value: Any) -> str:
    return JSON_KINDS.get(type(value), type(value).__name__)


def decode(message: Mapping[str, Any]) -> Any:
    """The JSON of one received WebSocket message; ``ValueError`` naming the problem."""
    text = message.get("text")
    if not isinstance(text, str):
        raise ValueError("binary frames are not accepted; send the message as JSON text")
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("the message is nested too deeply to read") from None
    except ValueError as exc:
        raise ValueError(f"the message is not JSON: {exc}") from None


def subscriptions(profiles: Mapping[str, Profile], message: Any) -> list[Subscription]:
    """The subscriptions a decoded subscribe message asks for; ``ValueError`` naming the
    first bad part (``subscribe[0].tags: ...``)."""
    items = message.get("subscribe") if isinstance(message, dict) else None
    if not isinstance(items, list) or not items:
        raise ValueError(USAGE)
    if len(items) > MAX_SUBSCRIPTIONS:
        raise ValueError(f"subscribe: at most {MAX_SUBSCRIPTIONS} entries, got {len(items)}")
    return [_subscription(profiles, f"subscribe[{i}]", item) for i, item in enumerate(items)]


def _subscription(profiles: Mapping[str, Profile], where: str, item: Any) -> Subscription:
    if not isinstance(item, dict):
        raise ValueError(f'{where}: expected an object {{"measurement": ..., "tags": ...}}, '
                         f"got {_kind(item)}")
    unknown = sorted(set(item) - {"measurement", "tags"})
    if unknown:
        raise ValueError(f"{where}: unknown key {unknown[0]!r} (use measurement and tags)")
    measurement = item.get("measurement")
    if not isinstance(measurement, str):
        raise ValueError(f"{where}.measurement: expected a string, got {_kind(measurement)}")
    if measurement not in profiles:
        raise ValueError(f"unknown measurement {measurement!r}")
    tags = item.get("tags") or {}
    if not isinstance(tags, dict):
        raise ValueError(f"{where}.tags: expected an object of tag values, got {_kind(tags)}")
    for key, value in tags.items():
        if key not in profiles[measurement].tags:
            raise ValueError(f"tag {key!r} is not in measurement {measurement!r}")
        if not isinstance(value, str):
            raise ValueError(f"{where}.tags.{key}: expected a string, got {_kind(value)}")
    return Subscription(measurement, dict(tags))


def answer(profiles: Mapping[str, Profile], client: LiveClient,
           message: Mapping[str, Any]) -> dict[str, Any]:
    """What the server says to one client message: the new subscriptions, or an error (the
    old subscriptions and the connection stay)."""
    try:
        client.subscriptions = subscriptions(profiles, decode(message))
    except ValueError as exc:
        return {"error": str(exc)}
    return {"subscribed": [s.__dict__ for s in client.subscriptions]}


@router.websocket("/api/v1/live")
async def live(websocket: WebSocket) -> None:
    ctx: ApiContext = websocket.app.state.ctx
    hub: LiveHub = websocket.app.state.hub
    token = token_from(websocket.headers.get("authorization"),
                       websocket.query_params.get("token"))
    if not ctx.tokens.allows(token, "read"):
        await websocket.close(code=4401, reason="a read token is required")
        return
    await websocket.accept()
    hub.loop = asyncio.get_running_loop()
    client = LiveClient()
    hub.clients.add(client)
    try:
        await _pump(websocket, client, ctx.profiles)
    finally:
        hub.clients.discard(client)


async def _pump(websocket: WebSocket, client: LiveClient,
                profiles: Mapping[str, Profile]) -> None:
    """Answer the client's messages and send queued rows until the client leaves."""
    receiver = asyncio.create_task(websocket.receive())   # also notices a client leaving
    try:
        while True:
            getter = asyncio.create_task(client.queue.get())
            done, _ = await asyncio.wait({getter, receiver}, return_when=asyncio.FIRST_COMPLETED)
            if receiver in done:
                getter.cancel()
                message = None if receiver.exception() else receiver.result()
                if message is None or message["type"] != "websocket.receive":
                    return
                await websocket.send_json(answer(profiles, client, message))
                receiver = asyncio.create_task(websocket.receive())
                continue
            rows = getter.result()
            if rows is None:
                await websocket.close(code=4408, reason="client too slow; reconnect")
                return
            await websocket.send_json({"rows": rows, "skipped": client.skipped})
    except (WebSocketDisconnect, RuntimeError):
        return
    finally:
        receiver.cancel()
