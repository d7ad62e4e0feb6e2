"""The running wrapper of push sources (an MQTT subscription, a TCP listener).

A push adapter subclasses :class:`PushSource` and writes one *session* — a connection to its
broker or a bound port, delivering readings until it ends — and how to hand over what it
still holds (:meth:`PushSource.drain`). The wrapper gives every push source the same life:

* sessions run in an asyncio loop of the source's own thread, one after the other;
* a session that ends with a transient :class:`~sunarchive.errors.SourceError` marks the
  source offline (counted as an error, an ``offline`` event after being online) and starts
  again after a capped backoff (:class:`~sunarchive.sources.running.Backoff`), which the
  adapter resets once connected;
* a permanent one (refused credentials) marks it failed and ends the source: retrying cannot
  help;
* at stop, what the adapter holds is handed over and the status says ``stopped``.

Polled adapters get the same from :class:`~sunarchive.sources.running.PolledSource`.
"""

from __future__ import annotations

import asyncio
import threading
import time
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

from sunarchive.errors import SourceError
from sunarchive.sources.running import Backoff, SourceStatus

if TYPE_CHECKING:
    from sunarchive.sources.base import SampleSink

TICK_S = 0.2
"""How often waiting sessions look at the stop flag (s)."""


class PushSource(ABC):
    """Runs the adapter's sessions with status, backoff and a clean stop (module docstring)."""

    name: str
    status: SourceStatus
    backoff_min_s: float = 1.0
    backoff_max_s: float = 60.0

    @abstractmethod
    async def session(self, sink: SampleSink, stop: threading.Event, backoff: Backoff) -> None:
        """One connection until it ends or ``stop`` is set; raises :class:`SourceError` when
        it cannot go on (``transient``: try again later). Resets ``backoff`` once
        connected."""

    @abstractmethod
    def drain(self, sink: SampleSink) -> None:
        """Hand over the readings the adapter still holds (at disconnect and stop)."""

    def run(self, sink: SampleSink, stop: threading.Event) -> None:
        """Run sessions until ``stop`` is set (the source's thread)."""
        try:
            asyncio.run(self._sessions(sink, stop))
        finally:
            self.drain(sink)
            self.status.stopped()

    async def _sessions(self, sink: SampleSink, stop: threading.Event) -> None:
        backoff = Backoff(self.backoff_min_s, self.backoff_max_s)
        while not stop.is_set():
            try:
                await self.session(sink, stop, backoff)
            except SourceError as exc:
                self.drain(sink)
                if not exc.transient:
                    self.status.failed(str(exc))
                    raise
                self.status.error(str(exc))
                self.status.offline(str(exc))
            if not stop.is_set():
                await sleep_unless_stopped(backoff.next_delay(), stop)


async def sleep_unless_stopped(seconds: float, stop: threading.Event) -> None:
    """Sleep ``seconds`` or until ``stop`` is set."""
    end = time.monotonic() + seconds
    while not stop.is_set() and (left := end - time.monotonic()) > 0:
        await asyncio.sleep(min(left, TICK_S))
