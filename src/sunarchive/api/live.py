"""WebSocket ``/api/v1/live``: each second's 1 s rows of the series a client subscribes to.

The writer thread hands every committed batch to :meth:`LiveHub.publish`, which only schedules
work on the server's event loop and returns: a client never slows ingest. Each client has a
small queue; when it is full the client is behind, the message is skipped and counted, and a
client that keeps falling behind is disconnected.

Protocol: the client sends ``{"subscribe": [{"measurement": "ps100_readings",
"tags": {"panel_id": "panel_1"}}]}`` (``tags`` optional: every series of the measurement);
the server answers ``{"subscribed": [...]}`` and then sends ``{"rows": [...]}`` messages,
each row ``{"measurement", "time", "tags", "values"}``. ``token`` may be a query parameter.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
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


def _subscriptions(ctx: ApiContext, message: dict[str, Any]) -> list[Subscription]:
    items = message.get("subscribe")
    if not isinstance(items, list) or not items:
        raise ValueError('send {"subscribe": [{"measurement": "...", "tags": {...}}]}')
    out = []
    for item in items:
        measurement = item.get("measurement") if isinstance(item, dict) else None
        if measurement not in ctx.profiles:
            raise ValueError(f"unknown measurement {measurement!r}")
        tags = item.get("tags") or {}
        unknown = [t for t in tags if t not in ctx.profiles[measurement].tags]
        if unknown:
            raise ValueError(f"tag {unknown[0]!r} is not in measurement {measurement!r}")
        out.append(Subscription(measurement, {str(k): str(v) for k, v in tags.items()}))
    return out


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
    try:
        first = json.loads(await websocket.receive_text())
        client.subscriptions = _subscriptions(ctx, first)
    except (ValueError, AttributeError) as exc:
        await websocket.send_json({"error": str(exc)})
        await websocket.close(code=4400)
        return
    await websocket.send_json({"subscribed": [s.__dict__ for s in client.subscriptions]})
    hub.clients.add(client)
    try:
        await _pump(websocket, client)
    finally:
        hub.clients.discard(client)


async def _pump(websocket: WebSocket, client: LiveClient) -> None:
    """Send queued rows; a new subscribe message replaces the subscriptions."""
    ctx: ApiContext = websocket.app.state.ctx
    receiver = asyncio.create_task(websocket.receive_text())   # also notices a client leaving
    try:
        while True:
            getter = asyncio.create_task(client.queue.get())
            done, _ = await asyncio.wait({getter, receiver}, return_when=asyncio.FIRST_COMPLETED)
            if receiver in done:
                getter.cancel()
                if receiver.exception() is not None:
                    return
                try:
                    client.subscriptions = _subscriptions(ctx, json.loads(receiver.result()))
                    await websocket.send_json(
                        {"subscribed": [s.__dict__ for s in client.subscriptions]})
                except (ValueError, AttributeError) as exc:
                    await websocket.send_json({"error": str(exc)})
                receiver = asyncio.create_task(websocket.receive_text())
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
