"""The one wrapper every source shares: poll intervals, timeouts, retries with capped
backoff, online/offline events and per-source statistics.

Adapters stay small. A *polled* adapter implements :class:`Poller` (``connect``, ``poll``,
``close``) and :class:`PolledSource` runs it. A *push* adapter (an MQTT subscription, a TCP
listener) subclasses :class:`~sunarchive.sources.push.PushSource` and writes one session;
the wrapper gives it the same status, backoff and stop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from sunarchive.errors import SourceError as SourceError  # older import place
from sunarchive.model import Event, SampleBatch

if TYPE_CHECKING:
    from sunarchive.profiles.spec import Profile
    from sunarchive.sources.base import SampleSink
    from sunarchive.sources.config import PolledSourceSettings

log = logging.getLogger(__name__)

RATE_WINDOW_S = 10.0
"""Samples per second are averaged over this many seconds."""


EventSink = Callable[[Event], None]


def _drop_event(event: Event) -> None:
    log.info("event (not stored): %s", event.message)


@dataclass
class SourceContext:
    """What a source gets from the app when it is built."""

    timezone: str = "UTC"
    """The site's IANA time zone (for devices that report local times)."""
    profiles: Mapping[str, Profile] = field(default_factory=dict)
    """The measurement profiles known to the store, by measurement name."""
    events: EventSink = _drop_event
    """Where sources post events (thread-safe)."""
    max_future_s: float = 300.0
    """Push sources that take a time from the device refuse records stamped more than this
    many seconds ahead of the wall clock (the ``max_future_s`` setting;
    :mod:`sunarchive.timecheck`)."""


class SourceStatus:
    """Thread-safe state and counters of one source, shown by ``sunarchive sources``."""

    def __init__(self, name: str, kind: str, events: EventSink = _drop_event,
                 measurement: str = "") -> None:
        self.name = name
        self.kind = kind
        self.measurement = measurement
        self._events = events
        self._lock = threading.Lock()
        self.state = "starting"
        self.since = time.time()
        self.last_sample_at: float | None = None
        self.samples = 0
        self.values = 0
        self.errors = 0
        self.last_error: str | None = None
        self.reconnects = 0
        self._window: deque[tuple[float, int]] = deque()

    # -- transitions ------------------------------------------------------------------------
    def connected(self, detail: str = "") -> None:
        """The device answers. After being offline this posts an ``online`` event."""
        with self._lock:
            was = self.state
            if was == "connected":
                return
            self.state, self.since = "connected", time.time()
            if was == "offline":
                self.reconnects += 1
        if was == "offline":
            self._post("source_online", f"source {self.name} is online again"
                       + (f" ({detail})" if detail else ""))

    def offline(self, reason: str) -> None:
        """The device stopped answering (posts one ``offline`` event per outage)."""
        with self._lock:
            was = self.state
            self.state, self.since = "offline", time.time()
        if was != "offline":
            self._post("source_offline", f"source {self.name} is offline: {reason}")

    def failed(self, reason: str) -> None:
        """The source stopped for good (a permanent error)."""
        with self._lock:
            self.state, self.since = "failed", time.time()
            self.errors += 1
            self.last_error = reason
        self._post("source_failed", f"source {self.name} stopped: {reason}")

    def stopped(self) -> None:
        with self._lock:
            if self.state != "failed":
                self.state, self.since = "stopped", time.time()

    # -- counters ---------------------------------------------------------------------------
    def counted(self, batch: SampleBatch) -> None:
        """Count a batch handed to the pipeline (the agent does this for every source)."""
        now = time.time()
        with self._lock:
            self.samples += len(batch)
            self.values += batch.value_count
            self.last_sample_at = now
            self._window.append((now, len(batch)))
            while self._window and self._window[0][0] < now - RATE_WINDOW_S:
                self._window.popleft()

    def error(self, message: str) -> None:
        """Record an error that did not change the state (a malformed record, a failed poll)."""
        with self._lock:
            self.errors += 1
            self.last_error = message
        log.warning("source %s: %s", self.name, message)

    def samples_per_s(self) -> float:
        now = time.time()
        with self._lock:
            recent = sum(n for t, n in self._window if t >= now - RATE_WINDOW_S)
            span = min(RATE_WINDOW_S, max(now - self.since, 1e-9)) if recent else RATE_WINDOW_S
        return recent / max(span, 1.0)

    def snapshot(self) -> dict[str, Any]:
        rate = self.samples_per_s()
        with self._lock:
            return {"name": self.name, "type": self.kind, "state": self.state,
                    "since": self.since, "last_sample_at": self.last_sample_at,
                    "samples": self.samples, "values": self.values,
                    "samples_per_s": rate, "errors": self.errors,
                    "last_error": self.last_error, "reconnects": self.reconnects}

    def _post(self, kind: str, message: str) -> None:
        log.info(message)
        self._events(Event(time.time(), kind, self.measurement, message))


class Backoff:
    """Capped exponential backoff: ``min_s``, 2×, 4× … up to ``max_s``; ``reset`` on success."""

    def __init__(self, min_s: float = 1.0, max_s: float = 60.0) -> None:
        self.min_s, self.max_s = min_s, max_s
        self._next = min_s

    def next_delay(self) -> float:
        delay = self._next
        self._next = min(self._next * 2, self.max_s)
        return delay

    def reset(self) -> None:
        self._next = self.min_s

    def wait(self, stop: threading.Event) -> bool:
        """Sleep the next delay; True if ``stop`` was set meanwhile."""
        return stop.wait(self.next_delay())


class Poller(Protocol):
    """A device that is asked for readings. Methods raise :class:`SourceError` (or any
    ``OSError`` / ``TimeoutError``, which count as transient)."""

    def connect(self, timeout_s: float) -> None:
        """Open the connection (and discover the device) within ``timeout_s``."""

    def poll(self, timeout_s: float) -> list[SampleBatch]:
        """Read once; the batches carry the device's or the reading's time."""

    def close(self) -> None:
        """Release the connection; must not raise."""


class PolledSource:
    """Runs a :class:`Poller` every ``poll_interval_s`` with retries and offline events."""

    def __init__(self, name: str, poller: Poller, settings: PolledSourceSettings,
                 status: SourceStatus) -> None:
        self.name = name
        self.poller = poller
        self.settings = settings
        self.status = status
        self._backoff = Backoff(settings.backoff_min_s, settings.backoff_max_s)
        self._failures = 0
        self._connected = False

    def run(self, sink: SampleSink, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                started = time.monotonic()
                if not self._attempt(sink):
                    if self._backoff.wait(stop):
                        break
                    continue
                self._backoff.reset()
                elapsed = time.monotonic() - started
                if stop.wait(max(0.0, self.settings.poll_interval_s - elapsed)):
                    break
        finally:
            self._disconnect()
            self.status.stopped()

    def _attempt(self, sink: SampleSink) -> bool:
        """Connect if needed and poll once; False after a transient failure."""
        timeout = self.settings.timeout_s
        try:
            if not self._connected:
                self.poller.connect(timeout)
                self._connected = True
            batches = self.poller.poll(timeout)
        except SourceError as exc:
            if not exc.transient:
                self.status.failed(str(exc))
                raise
            self._failure(str(exc))
            return False
        except (OSError, TimeoutError) as exc:
            self._failure(f"{type(exc).__name__}: {exc}")
            return False
        self._failures = 0
        self.status.connected()
        for batch in batches:
            if len(batch):
                sink.put(batch)   # the agent's sink counts it into the status
        return True

    def _failure(self, reason: str) -> None:
        self._failures += 1
        self.status.error(reason)
        self._connected = True   # close() even after a half-done connect
        self._disconnect()
        if self._failures >= self.settings.offline_after_failures:
            self.status.offline(reason)

    def _disconnect(self) -> None:
        if self._connected:
            self._connected = False
            try:
                self.poller.close()
            except Exception:  # close must never take the loop down
                log.debug("closing %s failed", self.name, exc_info=True)
