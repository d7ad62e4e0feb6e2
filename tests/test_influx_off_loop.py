"""Line-protocol writes never block the server's event loop (issue 14, point 8): parsing,
gunzipping, planning and queueing run on worker threads, so reads answer while a write waits.

The writer of the app is never started, so its queue (capacity 1 sample) stays full and the
second write waits in ``accumulator.put`` for the whole put timeout (120 s). A read must answer
during that wait; before the fix it waited for the put timeout, because the put ran on the
event loop. No timing is asserted: the test waits on state, with generous deadlines.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sunarchive.api.server import HttpServer
from sunarchive.app import App, build_app, http_server
from sunarchive.settings import load_settings
from tests.support.ports import free_port

pytestmark = pytest.mark.integration

T0_S = 1_782_036_000  # 2026-06-21 10:00 UTC
PUT_TIMEOUT_S = 120.0


@pytest.fixture
def stalled(tmp_path: Path) -> Iterator[tuple[App, HttpServer]]:
    """A server whose writer never drains its one-sample queue."""
    settings = load_settings(overrides={
        "database_url": f"duckdb:///{tmp_path / 'w.duckdb'}", "http_port": free_port(),
        "queue_max_samples": 1, "queue_put_timeout_s": PUT_TIMEOUT_S}, env={},
        dotenv_file=None)
    app = build_app(settings, demo=False, collect=False)
    server = http_server(settings, app)
    server.start()
    yield app, server
    app.agent.accumulator.close("test over")   # releases a put still waiting
    server.stop()
    app.store.close()


def puts_waiting(app: App) -> int:
    """Puts blocked on the accumulator's condition (CPython keeps them in ``_waiters``)."""
    return len(getattr(app.agent.accumulator._space, "_waiters", ()))


def body(panel: str) -> bytes:
    return "\n".join(f"ps100_readings,panel_id={panel} power={i}.5 {T0_S + i}"
                     for i in range(10)).encode()


def test_reads_answer_while_a_write_waits_for_queue_room(
        stalled: tuple[App, HttpServer]) -> None:
    app, server = stalled
    url = server.url
    first = httpx.post(url + "/api/v2/write", params={"precision": "s"}, content=body("p1"),
                       timeout=60)
    assert first.status_code == 204   # an empty queue takes any batch
    answers: list[httpx.Response] = []
    waiting = threading.Thread(target=lambda: answers.append(httpx.post(
        url + "/api/v2/write", params={"precision": "s"}, content=body("p2"),
        timeout=PUT_TIMEOUT_S + 60)))
    waiting.start()
    deadline = time.monotonic() + 60
    while not puts_waiting(app):
        assert time.monotonic() < deadline, "the second write never waited for room"
        time.sleep(0.05)
    health = httpx.get(url + "/api/v1/health", timeout=PUT_TIMEOUT_S + 60)
    listed = httpx.get(url + "/api/v1/measurements", timeout=PUT_TIMEOUT_S + 60)
    assert waiting.is_alive(), "the reads were answered only after the write gave up"
    assert "writer_alive" in health.json()
    assert "ps100_readings" in {m["measurement"] for m in listed.json()}
    app.agent.accumulator.close("test over")
    waiting.join(60)
    assert answers[0].status_code == 503
    assert "queue is full" in answers[0].json()["message"]
