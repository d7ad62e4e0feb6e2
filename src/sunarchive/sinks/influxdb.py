"""The InfluxDB mirror: what sunarchive collects, pushed to InfluxDB too, never slowing it.

The writer thread hands every accepted raw batch (or every 1 s row set) to :meth:`Mirror.offer`,
which only appends a reference to an in-memory queue — or, once ``queue_max_points`` wait or
anything waits on disk already, writes it to the disk buffer (:mod:`sunarchive.sinks.buffer`),
so order is kept: memory holds only points older than everything on disk. It never waits for
InfluxDB.

One sender thread (at a lower OS priority than collection) takes the points in order, encodes
them (:mod:`sunarchive.sinks.encode`), and writes up to ``batch_size`` points per request, at
least every ``flush_interval_s``, gzip-compressed. Unreachable, 429, 5xx, 401/403 and 404 are
retried with exponential backoff (``retry_min_s`` … ``retry_max_s``; a ``Retry-After`` header
wins) — the same points, in order, until InfluxDB takes them. A v3 partial write is logged line by
line with InfluxDB's reason; a 400/413/422 without that detail is split in halves until the bad
lines are found, logged and skipped, so one bad point never blocks the rest. A point leaves the
queue or the buffer only once InfluxDB has answered for it.

At stop the sender keeps going for ``stop_timeout_s``; what is still unsent then is saved at the
front of the disk buffer and sent first at the next start.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from sunarchive.model import SampleBatch, StatsRows
from sunarchive.profiles.spec import Profile
from sunarchive.sinks.buffer import DiskBuffer
from sunarchive.sinks.config import InfluxSettings
from sunarchive.sinks.encode import ArrowArray, Points, body_of, encode, raw_points, stats_points
from sunarchive.sinks.transport import Answer, Transport

log = logging.getLogger(__name__)
SENDER_NICE = 10
YIELD_S = 0.05
"""How long the sender waits while collection is busy before it looks again."""
YIELD_MAX_S = 30.0
"""Longest the sender holds back for busy collection in a row (then it sends anyway)."""
"""The sender thread runs at this niceness so that collection wins any CPU contention."""
MAX_LOGGED_LINES = 20
"""Rejected lines logged per request (the rest are counted)."""


@dataclass
class _Entry:
    """Points the sender has taken: from memory (``seq`` None) or a disk segment."""

    points: Points
    seq: int | None
    received: float
    lines: ArrowArray | None = None
    rows: np.ndarray[Any, Any] | None = None
    sent: int = 0

    def encoded(self, precision: str) -> ArrowArray:
        if self.lines is None:
            self.lines, self.rows = encode(self.points, precision)
        return self.lines

    def unsent(self, precision: str) -> int:
        return len(self.encoded(precision)) - self.sent

    def rest(self) -> Points:
        """The points not sent yet."""
        if self.rows is None or self.sent == 0:
            return self.points
        if self.sent >= len(self.rows):
            return self.points.slice(len(self.points))
        return self.points.slice(int(self.rows[self.sent]))


@dataclass
class MirrorStats:
    points_sent: int = 0
    points_rejected: int = 0
    requests: int = 0
    failed_requests: int = 0
    last_error: str | None = None
    last_error_at: float | None = None
    last_success_at: float | None = None
    connected: bool | None = None


class Mirror:
    """Mirrors raw batches or 1 s rows of the selected measurements to InfluxDB."""

    def __init__(self, settings: InfluxSettings, profiles: dict[str, Profile],
                 buffer: DiskBuffer, transport: Transport | None = None) -> None:
        self.settings = settings
        self.profiles = profiles
        self.buffer = buffer
        self.transport = transport or Transport(settings)
        self.stats = MirrorStats()
        self._selected = set(settings.measurements)
        self._queue: deque[tuple[float, SampleBatch | tuple[StatsRows, dict[int, Any]]]] = \
            deque()
        self._queued_points = 0
        self._cursor: list[_Entry] = []
        self._cursor_points = 0
        self._lock = threading.Condition()
        self._stopping = False
        self._flushing = False
        self._deadline = float("inf")
        self._thread: threading.Thread | None = None
        self._backoff_s = settings.retry_min_s
        self.busy: Callable[[], bool] | None = None
        """Set by the app: True while samples wait for the store's writer."""
        self._busy_since: float | None = None

    # -- writer side (never blocks) ------------------------------------------------------------
    def wants(self, measurement: str) -> bool:
        return (not self._selected or measurement in self._selected) and \
            measurement in self.profiles

    def offer_raw(self, batch: SampleBatch) -> None:
        """A raw batch as collected (writer thread)."""
        if self.settings.send == "raw" and len(batch) and self.wants(batch.measurement):
            self._offer(batch, len(batch))

    def offer_rows(self, rows: StatsRows, tags: dict[int, tuple[str, ...]]) -> None:
        """New 1 s rows (writer thread, a LiveState listener)."""
        if self.settings.send == "1s" and len(rows) and self.wants(rows.measurement):
            ids = np.unique(rows.series_id)
            self._offer((rows, {int(i): tags.get(int(i), ()) for i in ids}), len(rows))

    def _offer(self, item: SampleBatch | tuple[StatsRows, dict[int, Any]], count: int) -> None:
        with self._lock:
            spill = len(self.buffer) > 0 or self._queued_points + count > \
                self.settings.queue_max_points
            if not spill:
                self._queue.append((time.monotonic(), item))
                self._queued_points += count
                self._lock.notify()
                return
        self.buffer.put(self._points(item))
        with self._lock:
            self._lock.notify()

    def _points(self, item: SampleBatch | tuple[StatsRows, dict[int, Any]]) -> Points:
        if isinstance(item, SampleBatch):
            return raw_points(item, self.profiles[item.measurement])
        rows, tags = item
        return stats_points(rows, tags, self.profiles[rows.measurement])

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        log.info(self.initialized_text())
        log.debug("InfluxDB mirror: write API %s at %s, sending %s", self.settings.write_api,
                  self.transport.url, self.settings.send)
        self._thread = threading.Thread(target=self._run, name="sunarchive-influxdb",
                                        daemon=True)
        self._thread.start()

    def initialized_text(self) -> str:
        """The start-up line: host and database, never the token."""
        return f"InfluxDB writer initialized: {self.settings.host.rstrip('/')}/" \
            f"{self.settings.database}"

    def close(self, timeout_s: float | None = None) -> None:
        """Send what is left for up to ``stop_timeout_s``, then buffer the rest on disk."""
        wait = self.settings.stop_timeout_s if timeout_s is None else timeout_s
        with self._lock:
            self._stopping = True
            self._deadline = time.monotonic() + wait
            self._lock.notify_all()
        if self._thread is not None:
            self._thread.join(wait + self.settings.timeout_s + 5)
        self._save_rest()
        self.transport.close()

    def flush(self, timeout_s: float) -> bool:
        """Send what waits now, without waiting for ``flush_interval_s``, until everything
        offered so far was answered for; False on timeout."""
        end = time.monotonic() + timeout_s
        with self._lock:
            self._flushing = True
            self._lock.notify_all()
        try:
            while time.monotonic() < end:
                if self.pending_points() == 0:
                    return True
                time.sleep(0.01)
            return self.pending_points() == 0
        finally:
            self._flushing = False

    def pending_points(self) -> int:
        """Points not yet answered for: in memory and in the disk buffer."""
        return self._memory_points() + self.buffer.points

    def _memory_points(self) -> int:
        with self._lock:
            return self._queued_points + self._cursor_points

    def status(self) -> dict[str, Any]:
        """State for ``sunarchive status`` and ``/api/v1/status``."""
        s = self.stats
        memory, disk = self._memory_points(), self.buffer.points
        state = "connecting" if s.connected is None else \
            "connected" if s.connected else "disconnected"
        return {"enabled": True, "target": self.transport.target,
                "write_api": self.settings.write_api, "send": self.settings.send,
                "state": state, "points_sent": s.points_sent,
                "points_rejected": s.points_rejected,
                "points_dropped": self.buffer.dropped_points,
                "pending_memory": memory, "pending_disk": disk, "pending": memory + disk,
                "buffer_bytes": self.buffer.bytes, "buffer_dir": str(self.buffer.directory),
                "requests": s.requests, "failed_requests": s.failed_requests,
                "last_error": s.last_error, "last_error_at": s.last_error_at,
                "last_success_at": s.last_success_at}

    def _save_rest(self) -> None:
        """After the sender ended: unsent points in memory go to the front of the buffer."""
        rest = [e.rest() for e in self._cursor if e.seq is None]
        with self._lock:
            items = [item for _, item in self._queue]
            self._queue.clear()
            self._queued_points = 0
        rest = [p for p in rest + [self._points(i) for i in items] if len(p)]
        self._cursor = []
        self._set_cursor_points()
        if rest:
            self.buffer.put_front(rest)
            log.warning("InfluxDB mirror stopped with %d points unsent; they wait in %s for "
                        "the next start", sum(len(p) for p in rest), self.buffer.directory)

    # -- sender thread (owns the cursor) -------------------------------------------------------
    def _run(self) -> None:
        _lower_priority()
        try:
            while True:
                if self._collection_busy():   # collection first: encode and send after it
                    time.sleep(YIELD_S)
                    continue
                self._fill()
                if self._done():
                    return
                wait = self._wait_s()
                if wait > 0:
                    with self._lock:
                        if not (self._stopping or self._flushing or self._queue):
                            self._lock.wait(wait)
                    continue
                if not self._send_next():
                    return
        except Exception:  # the mirror must never take collection down with it
            log.exception("InfluxDB mirror stopped by an unexpected error")

    def _collection_busy(self) -> bool:
        """True while samples wait for the writer (bulk ingest): the mirror then holds back,
        up to ``YIELD_MAX_S`` in a row, so it never slows collection down."""
        if self.busy is None or self._stopping or self._flushing:
            return False
        now = time.monotonic()
        if not self.busy():
            self._busy_since = None
            return False
        if self._busy_since is None:
            self._busy_since = now
        return now - self._busy_since < YIELD_MAX_S

    def _unsent(self) -> int:
        return sum(e.unsent(self.settings.precision) for e in self._cursor)

    def _fill(self) -> None:
        """Take points into the cursor, in order, until a batch is full."""
        while self._unsent() < self.settings.batch_size:
            with self._lock:
                popped = self._queue.popleft() if self._queue else None
                if popped is not None:
                    item = popped[1]
                    count = len(item) if isinstance(item, SampleBatch) else len(item[0])
                    self._queued_points -= count
                    self._cursor_points += count
            if popped is not None:
                self._cursor.append(_Entry(self._points(popped[1]), None, popped[0]))
                continue
            taken = [e.seq for e in self._cursor if e.seq is not None]
            head = self.buffer.next_after(max(taken) if taken else None)
            if head is None:
                return
            self._cursor.append(_Entry(head[1], head[0], 0.0))

    def _set_cursor_points(self) -> None:
        count = sum(len(e.rest()) for e in self._cursor if e.seq is None)
        with self._lock:
            self._cursor_points = count

    def _done(self) -> bool:
        if not self._stopping:
            return False
        return self._unsent() == 0 or time.monotonic() >= self._deadline

    def _wait_s(self) -> float:
        """Seconds until the next request is due."""
        pending = [e for e in self._cursor if e.unsent(self.settings.precision)]
        if not pending:
            return 1.0
        if self._stopping or self._flushing or self._unsent() >= self.settings.batch_size:
            return 0.0
        oldest = min(e.received for e in pending)
        return max(0.0, oldest + self.settings.flush_interval_s - time.monotonic())

    def _send_next(self) -> bool:
        """Send one batch from the cursor; False when stopping gave up."""
        precision = self.settings.precision
        spans: list[tuple[_Entry, int, int]] = []
        room = self.settings.batch_size
        for entry in self._cursor:
            take = min(entry.unsent(precision), room)
            if take:
                spans.append((entry, entry.sent, entry.sent + take))
                room -= take
            if not room:
                break
        if spans:
            body = b"".join(body_of(e.encoded(precision), a, b) for e, a, b in spans)
            if not self._deliver(body):
                return False
        for entry, _, end in spans:
            entry.sent = end
        self._retire()
        return True

    def _retire(self) -> None:
        """Drop fully sent entries from the cursor (and their disk segments)."""
        precision = self.settings.precision
        while self._cursor and self._cursor[0].unsent(precision) == 0:
            entry = self._cursor.pop(0)
            if entry.seq is not None:
                self.buffer.remove(entry.seq)
        self._set_cursor_points()

    def _deliver(self, body: bytes) -> bool:
        """Write ``body`` until InfluxDB has answered for every line; False if stopping ran
        out of time first."""
        while True:
            answer = self.transport.write(body)
            self.stats.requests += 1
            if answer.ok or answer.partial:
                self._delivered(body, answer)
                return True
            if answer.bad_lines:
                return self._split(body, answer)
            self._failed(answer)
            if not self._pause(answer):
                return False

    def _delivered(self, body: bytes, answer: Answer) -> None:
        lines = body.count(b"\n")
        if answer.partial:
            self._rejected([(str(r.get("original_line", "")), str(r.get("error_message", "")))
                            for r in answer.rejected], answer.reason)
        self.stats.points_sent += lines - len(answer.rejected)
        self.stats.last_success_at = time.time()
        if self.stats.connected is not True:
            log.info("InfluxDB mirror connected to %s", self.transport.target)
        self.stats.connected = True
        self._backoff_s = self.settings.retry_min_s

    def _split(self, body: bytes, answer: Answer) -> bool:
        lines = body.splitlines(keepends=True)
        if len(lines) <= 1:
            self._rejected([(body.decode("utf-8", "replace").rstrip("\n"), answer.reason)],
                           answer.reason)
            self.stats.connected = True
            return True
        half = len(lines) // 2
        return self._deliver(b"".join(lines[:half])) and self._deliver(b"".join(lines[half:]))

    def _rejected(self, lines: list[tuple[str, str]], reason: str) -> None:
        self.stats.points_rejected += len(lines)
        line, why = lines[0]
        self.stats.last_error = f"{len(lines)} point(s) rejected ({reason}), first: {why}: " \
            f"{line[:200]}"
        self.stats.last_error_at = time.time()
        for line, why in lines[:MAX_LOGGED_LINES]:
            log.warning("InfluxDB rejected a point (%s): %s", why, line)
        if len(lines) > MAX_LOGGED_LINES:
            log.warning("InfluxDB rejected %d more points in the same request",
                        len(lines) - MAX_LOGGED_LINES)

    def _failed(self, answer: Answer) -> None:
        self.stats.failed_requests += 1
        self.stats.last_error = answer.reason
        self.stats.last_error_at = time.time()
        if self.stats.connected is not False:
            log.warning("InfluxDB mirror cannot write to %s (%s); points are kept and sent "
                        "once it answers", self.transport.target, answer.reason)
        self.stats.connected = False

    def _pause(self, answer: Answer) -> bool:
        """Wait before the next attempt; False when a stop deadline passes first."""
        delay = answer.retry_after_s if answer.retry_after_s is not None else self._backoff_s
        self._backoff_s = min(self._backoff_s * 2, self.settings.retry_max_s)
        end = time.monotonic() + delay
        with self._lock:
            while (left := end - time.monotonic()) > 0:
                if self._stopping and time.monotonic() >= self._deadline:
                    return False
                self._lock.wait(min(left, max(0.01, self._deadline - time.monotonic())))
        return not (self._stopping and time.monotonic() >= self._deadline)


def _lower_priority() -> None:
    with contextlib.suppress(AttributeError, OSError):  # elsewhere: normal priority
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), SENDER_NICE)
