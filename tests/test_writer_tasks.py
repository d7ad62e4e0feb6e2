"""The writer owns every write (issue 16, point 1): tasks travel the writer's one queue with
the sample batches, run on the writer thread in order with them, hand their result or
exception to the caller's future, and never leave a caller hanging when the writer dies or
stops. No timing is asserted: the tests wait on state (futures, events), with generous bounds.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path

import numpy as np
import pytest

from sunarchive.errors import ConfigError, WriterStoppedError
from sunarchive.model import NS_PER_S, SampleBatch
from sunarchive.pipeline.accumulator import Accumulator
from sunarchive.pipeline.agent import Agent
from sunarchive.pipeline.tasks import awaited
from sunarchive.profiles import load_profiles
from sunarchive.profiles.loader import parse_profile
from sunarchive.storage.duckdb.store import DuckDBStore
from tests.support.writer_tasks import WriterKilled, kill_the_writer

pytestmark = pytest.mark.engine

T0 = 1_782_036_000  # 2026-06-21 10:00 UTC
BOUND_S = 60.0
"""How long a test waits for state it expects (never reached when the code is right)."""


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DuckDBStore]:
    store = DuckDBStore(tmp_path / "t.duckdb", load_profiles())
    store.setup()
    yield store
    store.close()


def _agent(store: DuckDBStore) -> Agent:
    return Agent(store, Accumulator(), lateness_s=0.5, commit_interval_s=0.05)


def _gate(agent: Agent) -> tuple[threading.Event, threading.Event]:
    """Hold the writer in a task until the returned ``release`` is set; ``holding`` is set
    once it holds, so everything submitted after waits in the queue behind it."""
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        holding.set()
        release.wait(BOUND_S)
    agent.submit(hold, "holding the writer")
    assert holding.wait(BOUND_S), "the writer never ran the gate task"
    return holding, release


def _document(name: str) -> dict[str, object]:
    return {"name": name, "description": "made by a writer task", "tags": ["site"],
            "fields": {"power": {"kind": "power", "unit": "W"}}}


def _batch(measurement: str, site: str, seconds: int = 3) -> SampleBatch:
    n = seconds * 10
    times = T0 * NS_PER_S + np.arange(n, dtype=np.int64) * (NS_PER_S // 10)
    return SampleBatch(measurement, [(site,)], np.zeros(n, np.int32), times,
                       {"power": np.full(n, 50.0)})


def test_tasks_run_on_the_writer_thread(store: DuckDBStore) -> None:
    agent = _agent(store)
    agent.start()
    try:
        ran_on = agent.submit(lambda: threading.current_thread(), "naming its thread")
        assert ran_on.result(BOUND_S) is agent._writer
        assert ran_on.result().name == "sunarchive-writer"
        assert ran_on.result() is not threading.current_thread()
    finally:
        agent.stop()


def test_a_task_runs_after_the_batches_before_it_and_before_those_after(
        store: DuckDBStore) -> None:
    """A batch of a measurement queued before the task that creates it has no profile (it
    is rejected); the batch queued after the task is stored. Both are queued, with the task
    between them, before the writer takes any of them."""
    agent = _agent(store)
    agent.start()
    _, release = _gate(agent)
    profile = parse_profile(_document("made_late"), "<test>")
    agent.accumulator.put(_batch("made_late", "before"))
    created = agent.submit(lambda: store.add_profile(profile, _document("made_late")),
                           "creating made_late")
    agent.accumulator.put(_batch("made_late", "after"))
    assert not created.done()
    release.set()
    assert created.result(BOUND_S)   # what it created
    agent.stop()
    assert agent.stats.rejected_batches == 1
    assert agent.stats.last_error is not None and "made_late" in agent.stats.last_error
    rows = store.sql("SELECT site, SUM(sample_count) FROM made_late_1s GROUP BY site").rows()
    assert rows == [("after", 30)]


def test_a_failing_task_gives_its_exception_to_the_caller(store: DuckDBStore) -> None:
    agent = _agent(store)
    agent.start()
    try:
        def refuse() -> None:
            raise ConfigError("measurement 'x' would use the tables of another measurement")
        failed = agent.submit(refuse, "creating x")
        with pytest.raises(ConfigError, match="tables of another measurement"):
            failed.result(BOUND_S)
        assert agent.writer_alive()   # a task's error is the caller's, not the writer's
        assert agent.submit(lambda: 42, "answering").result(BOUND_S) == 42
    finally:
        agent.stop()


def test_a_dead_writer_fails_every_pending_and_later_task(store: DuckDBStore) -> None:
    agent = _agent(store)
    agent.start()
    _, release = _gate(agent)
    fatal = agent.submit(kill_the_writer, "killing the writer")
    pending = [agent.submit(lambda: "never", f"task {i}") for i in range(3)]
    release.set()
    with pytest.raises(WriterKilled):
        fatal.result(BOUND_S)
    for future in pending:
        error = future.exception(BOUND_S)   # failed, not left waiting
        assert isinstance(error, WriterStoppedError)
        assert "WriterKilled: simulated bug in the writer" in str(error)
        assert "was not done" in str(error)
    later = agent.submit(lambda: "never", "a task after the death")
    assert later.done()
    with pytest.raises(WriterStoppedError, match="the writer stopped"):
        later.result(0)
    with pytest.raises(WriterStoppedError):
        agent.accumulator.put(_batch("ps100_readings", "late"))
    assert agent.writer_error is not None and "WriterKilled" in agent.writer_error
    agent.stop()


def test_stop_runs_the_queued_tasks_and_fails_later_ones(store: DuckDBStore) -> None:
    agent = _agent(store)
    agent.start()
    _, release = _gate(agent)
    queued = [agent.submit(lambda i=i: i * 10, f"task {i}") for i in range(3)]  # type: ignore[misc]
    stopping = threading.Thread(target=agent.stop)
    stopping.start()
    release.set()
    stopping.join(BOUND_S)
    assert not stopping.is_alive() and not agent.writer_alive()
    assert [f.result(0) for f in queued] == [0, 10, 20]
    after = agent.submit(lambda: "never", "a task after the stop")
    with pytest.raises(WriterStoppedError, match="stopped at shutdown"):
        after.result(0)
    assert agent.writer_error is None


def test_stop_of_a_writer_never_started_fails_its_queued_tasks(store: DuckDBStore) -> None:
    agent = _agent(store)
    waiting = agent.submit(lambda: "never", "a task no writer takes")
    agent.stop()
    with pytest.raises(WriterStoppedError, match="never started"):
        waiting.result(0)


def test_an_async_caller_awaits_a_task_without_blocking_its_loop(store: DuckDBStore) -> None:
    """While the writer holds the task, the event loop keeps running other coroutines."""
    import asyncio

    agent = _agent(store)
    agent.start()
    try:
        _, release = _gate(agent)
        future: Future[str] = agent.submit(lambda: "done", "a task behind the gate")

        async def both() -> tuple[str, int]:
            ticks = 0

            async def tick() -> None:
                nonlocal ticks
                while not future.done():
                    ticks += 1
                    if ticks == 3:
                        release.set()   # the loop ran while the task waited
                    await asyncio.sleep(0.01)
            ticker = asyncio.create_task(tick())
            result = await asyncio.wait_for(awaited(future), BOUND_S)
            await ticker
            return result, ticks
        result, ticks = asyncio.run(both())
        assert result == "done" and ticks >= 3
    finally:
        agent.stop()
