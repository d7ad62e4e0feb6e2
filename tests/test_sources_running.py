"""The shared source wrapper: polling, retries with capped backoff, offline/online events and
per-source statistics, run by the real agent into a real DuckDB file. The device is an
in-process fake poller whose answers are scripted."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from sunarchive.model import SampleBatch
from sunarchive.pipeline.accumulator import Accumulator
from sunarchive.pipeline.agent import Agent
from sunarchive.profiles import load_profiles
from sunarchive.sources.config import PolledSourceSettings
from sunarchive.sources.running import Backoff, PolledSource, SourceError, SourceStatus
from sunarchive.storage.duckdb.store import DuckDBStore

pytestmark = pytest.mark.engine


class ScriptedDevice:
    """A fake device: each poll takes the next answer — a voltage, or an exception to raise."""

    def __init__(self, answers: list[float | Exception]) -> None:
        self.answers = list(answers)
        self.connects = 0
        self.closes = 0
        self.done = threading.Event()

    def connect(self, timeout_s: float) -> None:
        self.connects += 1

    def poll(self, timeout_s: float) -> list[SampleBatch]:
        if not self.answers:
            self.done.set()
            return []
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        now_ns = time.time_ns()
        return [SampleBatch("ps100_readings", [("p1",)], np.zeros(1, np.int32),
                            np.array([now_ns], np.int64),
                            {"voltage": np.array([answer]), "current": np.array([np.nan])})]

    def close(self) -> None:
        self.closes += 1


def _settings(**kw: float) -> PolledSourceSettings:
    base = {"name": "dev", "poll_interval_s": 0.02, "timeout_s": 1.0, "backoff_min_s": 0.01,
            "backoff_max_s": 0.04, "offline_after_failures": 2}
    return PolledSourceSettings(**(base | kw))


def _run(tmp_path: Path, device: ScriptedDevice) -> tuple[Agent, DuckDBStore, SourceStatus]:
    store = DuckDBStore(tmp_path / "s.duckdb", load_profiles())
    store.setup()
    agent = Agent(store, Accumulator(), lateness_s=0.1, commit_interval_s=0.05)
    status = SourceStatus("dev", "scripted", agent.post_event, "ps100_readings")
    source = PolledSource("dev", device, _settings(), status)
    agent.add_source(source)
    agent.start()
    assert device.done.wait(10), "the scripted device was not polled to the end"
    agent.stop()
    return agent, store, status


def test_outage_gives_one_offline_and_one_online_event_and_no_zeros(tmp_path: Path) -> None:
    outage: list[float | Exception] = [OSError("connection refused")] * 4
    device = ScriptedDevice([20.0, 21.0, *outage, 22.0, 23.0])
    agent, store, status = _run(tmp_path, device)
    kinds = [e["kind"] for e in store.event_rows(50)]
    assert kinds.count("source_offline") == 1
    assert kinds.count("source_online") == 1
    snap = status.snapshot()
    assert snap["samples"] == 4 and snap["values"] == 4
    assert snap["errors"] == 4 and "connection refused" in snap["last_error"]
    assert snap["reconnects"] == 1 and snap["state"] == "stopped"
    assert device.connects == 5     # once at start, then once after each failed poll
    volts = store.sql("SELECT voltage_min FROM ps100_readings_1s").table.column(0).to_pylist()
    assert volts and all(v is not None and v >= 20.0 for v in volts)   # no zero readings
    assert agent.source_status["dev"] is status
    store.close()


def test_one_failure_below_threshold_is_not_an_outage(tmp_path: Path) -> None:
    device = ScriptedDevice([20.0, TimeoutError("no answer"), 21.0])
    _, store, status = _run(tmp_path, device)
    assert not [e for e in store.event_rows(50) if e["kind"].startswith("source_")]
    assert status.snapshot()["errors"] == 1
    store.close()


def test_permanent_error_stops_the_source_and_is_recorded(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "s.duckdb", load_profiles())
    store.setup()
    agent = Agent(store, Accumulator(), lateness_s=0.1, commit_interval_s=0.05)
    device = ScriptedDevice([20.0, SourceError("not a SunSpec device", transient=False), 21.0])
    status = SourceStatus("dev", "scripted", agent.post_event)
    source = PolledSource("dev", device, _settings(), status)
    agent.add_source(source, status)
    agent.start()
    deadline = time.monotonic() + 10
    while agent.source_status["dev"].state not in ("failed", "stopped") and \
            time.monotonic() < deadline:
        time.sleep(0.02)
    agent.stop()
    assert status.state == "failed"
    assert "not a SunSpec device" in (status.last_error or "")
    assert device.answers == [21.0]            # nothing polled after the permanent error
    assert "source_failed" in [e["kind"] for e in store.event_rows(50)]
    store.close()


def test_backoff_doubles_up_to_the_cap_and_resets() -> None:
    backoff = Backoff(0.5, 3.0)
    assert [backoff.next_delay() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    backoff.reset()
    assert backoff.next_delay() == 0.5


def test_backoff_order_is_validated() -> None:
    with pytest.raises(ValueError, match="backoff_max_s"):
        _settings(backoff_min_s=5, backoff_max_s=1)


def test_the_sample_config_in_docs_loads(tmp_path: Path) -> None:
    from sunarchive.settings import load_settings

    doc = (Path(__file__).resolve().parents[1] / "docs" / "sources.md").read_text()
    sample = doc.split("```yaml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "c.yaml").write_text(sample)
    settings = load_settings(config_file=tmp_path / "c.yaml", env={}, dotenv_file=None)
    assert [(s.type, s.name) for s in settings.sources] == [("simulator", "roof"),
                                                            ("mqtt", "opendtu")]
