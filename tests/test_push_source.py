"""The push sources' running wrapper (issue 16, point 6): one life for every push source —
transient failures go offline and retry with backoff, a permanent one fails the source, and
what an adapter holds is handed over at each disconnect and at stop."""

from __future__ import annotations

import threading

import pytest

from sunarchive.errors import SourceError
from sunarchive.model import SampleBatch
from sunarchive.sources.push import PushSource
from sunarchive.sources.running import Backoff, SourceStatus

pytestmark = pytest.mark.unit


class Sink:
    def __init__(self) -> None:
        self.batches: list[SampleBatch] = []

    def put(self, batch: SampleBatch) -> None:
        self.batches.append(batch)


class Scripted(PushSource):
    """Sessions that fail as scripted, then wait for the stop."""

    backoff_min_s = 0.001
    backoff_max_s = 0.002

    def __init__(self, failures: list[SourceError], stop: threading.Event) -> None:
        self.name = "scripted"
        self.status = SourceStatus("scripted", "test")
        self.failures = failures
        self.sessions = 0
        self.drains = 0
        self.stop = stop

    async def session(self, sink: object, stop: threading.Event, backoff: Backoff) -> None:
        self.sessions += 1
        if self.failures:
            raise self.failures.pop(0)
        backoff.reset()
        self.status.connected("up")
        stop.set()   # the run ends after its first good session

    def drain(self, sink: object) -> None:
        self.drains += 1


def test_transient_failures_go_offline_and_retry_until_a_session_holds() -> None:
    stop = threading.Event()
    source = Scripted([SourceError("broker gone"), SourceError("still gone")], stop)
    source.run(Sink(), stop)
    assert source.sessions == 3
    assert source.status.errors == 2 and source.status.last_error == "still gone"
    assert source.status.state == "stopped"
    assert source.drains == 3      # after each failed session, and at the stop


def test_a_permanent_failure_fails_the_source_and_ends_it() -> None:
    stop = threading.Event()
    source = Scripted([SourceError("not authorised", transient=False)], stop)
    with pytest.raises(SourceError, match="not authorised"):
        source.run(Sink(), stop)
    assert source.sessions == 1
    assert source.status.state == "failed"    # the stop does not hide why it ended
    assert source.status.last_error == "not authorised"
    assert source.drains == 2
