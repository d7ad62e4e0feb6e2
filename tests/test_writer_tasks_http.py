"""Over HTTP, the writer owns every write (issue 16, point 1): a line-protocol write creates
and grows measurements and adds state labels through tasks the writer thread runs; the
task's errors reach the HTTP answer (a store error refuses the lines it concerns, an
unavailable store or a dead writer answers 503 with Retry-After, never a hang); and many
measurements created at once by concurrent senders through ``sunarchive serve`` are each
stored exactly once, with every point. No timing is asserted.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sunarchive import errors
from sunarchive.api.server import HttpServer
from sunarchive.app import App, http_server
from sunarchive.errors import StoreError, StoreUnavailableError
from sunarchive.pipeline.accumulator import Accumulator
from sunarchive.pipeline.agent import Agent
from sunarchive.pipeline.live import LiveState
from sunarchive.profiles import Profile, load_profiles
from sunarchive.settings import load_settings
from sunarchive.storage.duckdb.store import DuckDBStore
from tests.support.ports import free_port
from tests.support.serving import T0_NS, serve, sql
from tests.support.writer_tasks import kill_the_writer

pytestmark = pytest.mark.integration

BOUND_S = 60.0
T0_S = T0_NS // 10**9


class RecordingStore(DuckDBStore):
    """A real DuckDB store that notes which thread makes each schema or label write, and
    fails the creation of measurements named ``refused_…`` (a store error) or
    ``unreachable_…`` (store unavailable), as a store can."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, load_profiles())
        self.writes: list[tuple[str, str]] = []

    def _note(self, what: str) -> None:
        self.writes.append((what, threading.current_thread().name))

    def add_profile(self, profile: Profile, document: dict[str, Any]) -> list[str]:
        self._note("add_profile")
        if profile.name.startswith("refused_"):
            raise StoreError(f"cannot change the tables of {profile.name!r}: disk full")
        if profile.name.startswith("unreachable_"):
            raise StoreUnavailableError("PostgreSQL unreachable (connection refused)")
        return super().add_profile(profile, document)

    def grow_profile(self, profile: Profile, document: dict[str, Any]) -> list[str]:
        self._note("grow_profile")
        return super().grow_profile(profile, document)

    def state_codes(self, measurement: str, field: str, labels: Any) -> dict[str, int]:
        self._note("state_codes")
        return super().state_codes(measurement, field, labels)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[App, HttpServer, RecordingStore]]:
    """An in-process server on a started writer, over a :class:`RecordingStore`."""
    settings = load_settings(overrides={"database_url": f"duckdb:///{tmp_path / 'h.duckdb'}",
                                        "http_port": free_port()}, env={}, dotenv_file=None)
    store = RecordingStore(tmp_path / "h.duckdb")
    store.setup()
    agent = Agent(store, Accumulator(), lateness_s=0.5, commit_interval_s=0.05)
    app = App(store, agent, LiveState(), store.location, [])
    server = http_server(settings, app)
    app.start()
    server.start()
    yield app, server, store
    server.stop()
    app.stop()


def write(server: HttpServer, body: str) -> httpx.Response:
    return httpx.post(server.url + "/api/v2/write", params={"precision": "s"},
                      content=body.encode(), timeout=BOUND_S)


def test_schema_and_label_writes_run_on_the_writer_thread(
        served: tuple[App, HttpServer, RecordingStore]) -> None:
    _, server, store = served
    first = write(server, f'ha_new,entity_id=a value=1.5,mode="on" {T0_S}')
    assert first.status_code == 204, first.text
    grown = write(server, f'ha_new,entity_id=a,area=k value=2.5,extra=3.0,mode="off" '
                          f'{T0_S + 1}')
    assert grown.status_code == 204, grown.text
    known = write(server, f'ha_new,entity_id=a value=3.5,mode="on" {T0_S + 2}')
    assert known.status_code == 204, known.text
    kinds = [what for what, _ in store.writes]
    assert kinds == ["add_profile", "state_codes", "grow_profile", "state_codes"]
    assert {thread for _, thread in store.writes} == {"sunarchive-writer"}
    assert store.known_state_codes("ha_new", "mode") == {"on": 0, "off": 1}


def test_a_store_error_in_a_task_refuses_its_lines_only(
        served: tuple[App, HttpServer, RecordingStore]) -> None:
    _, server, store = served
    answer = write(server, f"refused_m value=1.0 {T0_S}\nkept_m value=2.0 {T0_S}")
    assert answer.status_code == 400, answer.text
    message = answer.json()["message"]
    assert "line 1: measurement 'refused_m': cannot store it" in message
    assert "disk full" in message and "line 2" not in message
    assert "kept_m" in store.profiles and "refused_m" not in store.profiles


def test_an_unavailable_store_in_a_task_answers_503(
        served: tuple[App, HttpServer, RecordingStore]) -> None:
    _, server, store = served
    answer = write(server, f"unreachable_m value=1.0 {T0_S}\nkept_m value=2.0 {T0_S}")
    assert answer.status_code == 503, answer.text
    assert answer.headers["Retry-After"] == str(errors.RETRY_AFTER_S)
    assert "PostgreSQL unreachable" in answer.json()["error"]
    assert "unreachable_m" not in store.profiles


def test_a_dead_writer_answers_503_and_never_hangs(
        served: tuple[App, HttpServer, RecordingStore]) -> None:
    app, server, _ = served
    app.agent.submit(kill_the_writer, "killing the writer").exception(BOUND_S)
    answer = write(server, f"after_death value=1.0 {T0_S}")
    assert answer.status_code == 503, answer.text
    assert answer.headers["Retry-After"] == str(errors.RETRY_AFTER_S)
    # failed at once by the dead writer, not by the wait for it running out
    stopped = "the writer stopped (WriterKilled: simulated bug in the writer)"
    assert stopped in answer.json()["error"]
    assert httpx.get(server.url + "/health", timeout=BOUND_S).status_code == 503


SENDERS = 6
MEASUREMENTS = 24
PER_BODY = 4


def _send(url: str, sender: int, failures: list[str]) -> None:
    """Every measurement once, in an order of this sender's own, ``PER_BODY`` a body: a
    point of its own series (tag ``sender``) with the shared field ``value`` and a field
    ``f_<sender>`` no other sender brings (so measurements grow while being created)."""
    order = list(range(MEASUREMENTS))
    random.Random(sender).shuffle(order)
    with httpx.Client(base_url=url, timeout=BOUND_S) as client:
        for lo in range(0, MEASUREMENTS, PER_BODY):
            lines = [f"conc_{j},sender=s{sender} value={sender}.5,f_{sender}={j}.25 "
                     f"{T0_S + sender}" for j in order[lo:lo + PER_BODY]]
            answer = client.post("/api/v2/write", params={"precision": "s"},
                                 content="\n".join(lines).encode())
            if answer.status_code != 204:
                failures.append(f"{answer.status_code}: {answer.text}")


def test_concurrent_senders_create_each_measurement_exactly_once(tmp_path: Path) -> None:
    served = serve(tmp_path / "c.duckdb")
    failures: list[str] = []
    senders = [threading.Thread(target=_send, args=(served.url, k, failures))
               for k in range(SENDERS)]
    for thread in senders:
        thread.start()
    for thread in senders:
        thread.join(BOUND_S * 5)
    assert failures == []
    listed = {m["measurement"]: m for m in
              httpx.get(served.url + "/api/v1/measurements", timeout=BOUND_S).json()}
    fields = {"value", *(f"f_{k}" for k in range(SENDERS))}
    for j in range(MEASUREMENTS):
        assert {f["name"] for f in listed[f"conc_{j}"]["fields"]} == fields
    profiles = sql(served, "SELECT name, COUNT(*) AS n FROM sunarchive_profiles "
                           "WHERE name LIKE 'conc_%' GROUP BY name ORDER BY name")
    assert len(profiles) == MEASUREMENTS and {r["n"] for r in profiles} == {1}
    union = " UNION ALL ".join(
        f"SELECT '{j}' AS m, COUNT(*) AS n, SUM(sample_count) AS samples, "
        f"SUM(value_avg) AS value, "
        + " + ".join(f"COALESCE(SUM(f_{k}_avg), 0)" for k in range(SENDERS))
        + f" AS own FROM conc_{j}_1s" for j in range(MEASUREMENTS))
    rows = {str(r["m"]): r for r in sql(served, union)}
    for j in range(MEASUREMENTS):
        row = rows[str(j)]
        assert (row["n"], row["samples"]) == (SENDERS, SENDERS), row
        assert row["value"] == pytest.approx(sum(k + 0.5 for k in range(SENDERS)))
        assert row["own"] == pytest.approx(SENDERS * (j + 0.25))
