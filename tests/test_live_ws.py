"""The live WebSocket against a running demo, with a real WebSocket client."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from sunarchive.api.live import MAX_SKIPPED, QUEUE_MESSAGES, LiveClient, Subscription
from tests.support.ports import free_port
from tests.support.serving import serve, stop

pytestmark = pytest.mark.integration


def start_demo(folder: Path, *extra: str, env: dict[str, str] | None = None
               ) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SUNARCHIVE_")}
    clean.update(env or {})
    process = subprocess.Popen(
        [sys.executable, "-m", "sunarchive", "demo", "--db", str(folder / "live.duckdb"),
         "--http-port", str(port), "--no-console", "--panels", "2", "--duration", "3600",
         "--start", "2026-06-21T12:00:00+02:00", *extra],
        cwd=folder, env=clean, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(process.stderr.read() if process.stderr else "demo exited")
        try:
            if httpx.get(url + "/api/v1/health", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError("demo did not serve")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    process, url = start_demo(tmp_path_factory.mktemp("live"))
    yield url
    process.terminate()
    process.wait(30)


async def receive_rows(url: str, subscribe: list[dict[str, object]], messages: int
                       ) -> tuple[dict[str, object], list[dict[str, object]]]:
    async with websockets.connect(url.replace("http", "ws") + "/api/v1/live") as ws:
        await ws.send(json.dumps({"subscribe": subscribe}))
        ack = json.loads(await asyncio.wait_for(ws.recv(), 10))
        out: list[dict[str, Any]] = []
        while len(out) < messages:
            out.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
        return ack, out


def test_streams_each_second_of_the_subscribed_series(demo: str) -> None:
    ack, messages = asyncio.run(receive_rows(
        demo, [{"measurement": "ps100_readings", "tags": {"panel_id": "panel_1"}}], 3))
    assert ack == {"subscribed": [{"measurement": "ps100_readings",
                                   "tags": {"panel_id": "panel_1"}}]}
    rows = [r for m in messages for r in m["rows"]]  # type: ignore[attr-defined]
    assert {r["tags"]["panel_id"] for r in rows} == {"panel_1"}
    seconds = [r["time"] for r in rows]
    assert seconds == sorted(seconds) and len(set(seconds)) == len(seconds) >= 3
    assert all(r["values"]["power_avg"] > 0 and r["values"]["sample_count"] >= 1
               for r in rows)


def test_whole_measurement_and_bad_subscriptions(demo: str) -> None:
    _, messages = asyncio.run(receive_rows(demo, [{"measurement": "ps100_readings"}], 2))
    panels = {r["tags"]["panel_id"] for m in messages for r in m["rows"]}  # type: ignore[attr-defined]
    assert panels == {"panel_1", "panel_2"}

    async def bad() -> tuple[object, object]:
        async with websockets.connect(demo.replace("http", "ws") + "/api/v1/live") as ws:
            await ws.send(json.dumps({"subscribe": [{"measurement": "nope"}]}))
            reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
            await ws.send(json.dumps({"subscribe": [{"measurement": "ps100_readings"}]}))
            return reply, json.loads(await asyncio.wait_for(ws.recv(), 10))

    reply, ack = asyncio.run(bad())
    assert reply == {"error": "unknown measurement 'nope'"}
    assert ack == {"subscribed": [{"measurement": "ps100_readings", "tags": {}}]}


BAD_MESSAGES: list[tuple[str | bytes, str]] = [
    (b'{"subscribe": [{"measurement": "ps100_readings"}]}', "binary frame"),
    ('{"subscribe": [{"measurement": "ps100_readings", "tags": 5}]}',
     "subscribe[0].tags: expected an object"),
    ('{"subscribe": [{"measurement": ["a"]}]}', "subscribe[0].measurement: expected a string"),
    ('{"subscribe": [{"measurement": "ps100_readings", "tags": {"panel_id": [1]}}]}',
     "subscribe[0].tags.panel_id: expected a string"),
    ('{"subscribe": [5]}', "subscribe[0]: expected an object"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ("{not json", "not JSON"),
    ('"just a string"', 'send {"subscribe"'),
]


def test_bad_messages_get_an_error_and_keep_the_connection(demo: str) -> None:
    async def scenario() -> list[dict[str, object]]:
        async with websockets.connect(demo.replace("http", "ws") + "/api/v1/live") as ws:
            replies = []
            for message, _ in BAD_MESSAGES:
                await ws.send(message)
                replies.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
            await ws.send(json.dumps({"subscribe": [{"measurement": "ps100_readings"}]}))
            replies.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
            replies.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
            return replies

    replies = asyncio.run(scenario())
    for (_, expected), reply in zip(BAD_MESSAGES, replies, strict=False):
        assert set(reply) == {"error"} and expected in str(reply["error"]), (expected, reply)
    assert replies[len(BAD_MESSAGES)] == {"subscribed": [{"measurement": "ps100_readings",
                                                          "tags": {}}]}
    assert replies[-1]["rows"]


def test_a_stalled_client_does_not_slow_ingest(demo: str) -> None:
    async def stalled() -> tuple[int, int]:
        async with websockets.connect(demo.replace("http", "ws") + "/api/v1/live") as ws:
            await ws.send(json.dumps({"subscribe": [{"measurement": "ps100_readings"}]}))
            before = httpx.get(demo + "/api/v1/status").json()["counters"]["rows_written"]
            await asyncio.sleep(4)          # never reads
            after = httpx.get(demo + "/api/v1/status").json()["counters"]["rows_written"]
            return before, after

    before, after = asyncio.run(stalled())
    assert after - before >= 2 * 2      # two panels kept being written, second by second


def test_a_client_behind_is_skipped_then_dropped() -> None:
    async def scenario() -> LiveClient:
        client = LiveClient()
        client.subscriptions = [Subscription("m")]
        row = [{"measurement": "m", "tags": {}, "values": {}}]
        for _ in range(QUEUE_MESSAGES):
            client.offer(row)
        assert client.skipped == 0
        for _ in range(MAX_SKIPPED):
            client.offer(row)
        return client

    client = asyncio.run(scenario())
    assert client.skipped == MAX_SKIPPED
    assert client.queue.get_nowait() is None     # the sender hangs up on this client


def test_a_quiet_websocket_outlives_the_header_timeout(demo_db: Path, tmp_path: Path) -> None:
    """The HTTP header and body deadlines end with the upgrade: a live feed may stay quiet."""
    db = tmp_path / "quiet.duckdb"
    shutil.copy(demo_db, db)
    served = serve(db, env={"SUNARCHIVE_HTTP_HEADER_TIMEOUT_S": "1"})

    async def quiet() -> object:
        async with websockets.connect(served.url.replace("http", "ws") + "/api/v1/live") as ws:
            await asyncio.sleep(3)
            await ws.send(json.dumps({"subscribe": [{"measurement": "ps100_readings"}]}))
            return json.loads(await asyncio.wait_for(ws.recv(), 10))

    try:
        assert asyncio.run(quiet()) == {"subscribed": [{"measurement": "ps100_readings",
                                                        "tags": {}}]}
    finally:
        stop(served)
