"""Wiring: sources → accumulator → reducers → the one writer thread → store.

The writer thread is the only thread that touches the store for writing. It pulls batches
and tasks from one queue, in order: batches feed the per-measurement reducers; tasks
(:meth:`Agent.submit`: create or grow a measurement, add state labels) run there and then, so
what a task creates exists before the batches queued after it. Every ``commit_interval_s`` it
closes the seconds the lateness allowance permits, writes them in one commit per measurement,
materializes rollup buckets that became complete, records events and applies retention. A
clean stop closes the queue, then runs or ingests everything queued and flushes every reducer,
so nothing accepted is left behind; a writer that dies fails every task queued, and every task
submitted later, with :class:`~sunarchive.errors.WriterStoppedError`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import numpy as np

from sunarchive.model import (
    Event,
    InputError,
    SampleBatch,
    SeriesKey,
    StatsRows,
    TransientStoreError,
)
from sunarchive.pipeline.accumulator import Accumulator
from sunarchive.pipeline.live import LiveState
from sunarchive.pipeline.recent_file import RecentFiles
from sunarchive.pipeline.spool import PendingWrite, Spool
from sunarchive.pipeline.tasks import QueueItem, WriterTask
from sunarchive.reducer import Reducer, ReduceResult, concat_rows, select_rows
from sunarchive.sources.base import SampleSink, Source
from sunarchive.sources.running import SourceStatus
from sunarchive.storage.base import REPLAY_COLUMN, Store

log = logging.getLogger(__name__)
RETRY_MIN_S, RETRY_MAX_S = 0.5, 30.0
"""Backoff between attempts to write spooled batches while the store is unreachable."""
SERIES_LOOKBACK_S = 7 * 86400
"""At start, the newest stored second of each series is looked up this far behind the
measurement's newest (a series not found there counts as stored until that bound)."""
COMMIT_SAMPLES = 500_000
"""Commit early once this many samples wait in the reducers (bounds memory in bulk ingest)."""
STOPPED_CLEANLY = "stopped at shutdown"
"""Why the queue refuses puts after a clean stop."""
T = TypeVar("T")


@dataclass
class WriterStats:
    """What the writer has done since start."""

    started_at: float = field(default_factory=time.time)
    rows_written: int = 0
    rollup_rows: int = 0
    commits: int = 0
    too_late_samples: int = 0
    duplicates: int = 0
    """Exact duplicate points (a retried body): they replaced or repeated earlier points."""
    rejected_batches: int = 0
    rejected_fields: int = 0
    write_errors: int = 0
    last_write_at: float | None = None
    last_error: str | None = None
    gaps: int = 0
    spooled_batches: int = 0


def _canonical(key: SeriesKey) -> SeriesKey:
    """``key`` without its trailing empty tag values: a tag key a grown profile added is
    empty in the series from before, so ``("a",)`` and ``("a", "")`` are one series."""
    tags = key.tags
    end = len(tags)
    while end and tags[end - 1] == "":
        end -= 1
    return key if end == len(tags) else SeriesKey(key.measurement, tags[:end])


class SeriesRegistry:
    """Maps (measurement, tag values) to compact ids, persisting new ones in the store.

    A series is found whatever the number of tag keys its measurement had when its tag
    values were taken (a profile may grow tag keys; see :func:`_canonical`). ``tags`` keeps
    each series' values as first seen: readers pad them to the profile's tags."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._ids = {_canonical(k): i for k, i in store.load_series().items()}
        self.tags: dict[int, tuple[str, ...]] = {i: k.tags for k, i in self._ids.items()}
        self.measurement_of: dict[int, str] = {i: k.measurement for k, i in self._ids.items()}
        self.unsaved: dict[int, SeriesKey] = {}
        """New series not yet persisted (saved before the next write; idempotent)."""

    def adopt(self, item: PendingWrite) -> None:
        """Learn the series of a batch spooled by an earlier run."""
        for sid, tags in item.tags.items():
            key = _canonical(SeriesKey(item.measurement, tags))
            if key not in self._ids:
                self._ids[key] = sid
                self.tags[sid] = tags
                self.measurement_of[sid] = item.measurement
                self.unsaved[sid] = key

    def save_new(self) -> None:
        """Persist new series; raises (and keeps them) when the store is unreachable."""
        saving = list(self.unsaved.items())
        if saving:
            self._store.save_series([(key, sid) for sid, key in saving])
        for sid, _ in saving:
            del self.unsaved[sid]

    def ids_for(self, batch: SampleBatch) -> np.ndarray[Any, np.dtype[np.int32]]:
        ids = np.array([self.id_of(SeriesKey(batch.measurement, tuple(t)))
                        for t in batch.tag_sets], dtype=np.int32)
        return ids[batch.tag_index]

    def id_of(self, key: SeriesKey) -> int:
        found = self._ids.get(_canonical(key))
        if found is not None:
            return found
        new = max(self._ids.values(), default=0) + 1
        self.unsaved[new] = key
        self._ids[_canonical(key)] = new
        self.tags[new] = key.tags
        self.measurement_of[new] = key.measurement
        return new


class Agent:
    """Runs sources and the writer thread against one store."""

    live_clock = True
    """Its inputs are live (HTTP, MQTT, TCP, device pollers): the writer's clock closes
    seconds too, so a point nothing follows is stored within ``commit_interval_s +
    lateness_s`` after the end of its second (invariant 8). False for an agent fed only by
    inputs that follow their own clock (imports)."""
    own_clock: frozenset[str] = frozenset()
    """Measurements fed by inputs that follow their own clock (the simulator): only their
    data close their seconds (see :meth:`follow_own_clock`)."""

    def __init__(self, store: Store, accumulator: Accumulator, lateness_s: float = 2.0,
                 commit_interval_s: float = 1.0, maintenance_interval_s: float = 60.0,
                 live: LiveState | None = None, spool: Spool | None = None,
                 dedup_window_s: float = 600.0) -> None:
        self.store = store
        self.accumulator = accumulator
        self.lateness_s = lateness_s
        self.dedup_window_s = dedup_window_s
        self.commit_interval_s = commit_interval_s
        self.maintenance_interval_s = maintenance_interval_s
        self.live = live or LiveState()
        self.stats = WriterStats()
        self.sources: list[Source] = []
        self.source_status: dict[str, SourceStatus] = {}
        self._posted_events: list[Event] = []
        self._events_lock = threading.Lock()
        self.source_errors: dict[str, str] = {}
        self._reducers: dict[str, Reducer] = {}
        self._stored_until: dict[str, int | None] = {}
        self._series_until: dict[str, tuple[dict[int, int], int]] = {}
        """Per measurement: newest second an earlier run stored per series, and the bound
        for the series not in it (see ``SERIES_LOOKBACK_S``)."""
        self._registry = SeriesRegistry(store)
        self._stop_sources = threading.Event()
        self._stop_writer = threading.Event()
        self._threads: list[threading.Thread] = []
        self._writer: threading.Thread | None = None
        self.writer_error: str | None = None
        """Why the writer thread died (None while it runs or after a clean stop)."""
        # `is None`, not `or`: an empty disk spool has length 0 and would count as false
        self.spool = spool if spool is not None else Spool()
        self._recent_files = (None if self.spool.directory is None
                              else RecentFiles(self.spool.directory, dedup_window_s))
        """The dedup window's points on disk, next to the spool (none for a memory spool)."""
        self._batch_ids: dict[str, int] = {}
        self._owed_catch_up: set[str] = set()
        """Measurements whose start-up catch-up failed (store unreachable): their batches are
        spooled unrouted and written, after the catch-up, once the store answers."""
        self._retry_at = 0.0
        self._backoff_s = RETRY_MIN_S
        self._pending_events: list[Event] = []
        self._next_maintenance = 0.0
        self._raw_listeners: list[Callable[[SampleBatch], None]] = []

    # -- lifecycle ---------------------------------------------------------------------------
    def add_source(self, source: Source, status: SourceStatus | None = None) -> None:
        """Run ``source`` at start. Its batches are counted into ``status`` (the source's own
        ``status`` attribute if it has one, else a new one)."""
        status = status or getattr(source, "status", None) or SourceStatus(
            source.name, type(source).__name__, self.post_event)
        self.sources.append(source)
        self.source_status[source.name] = status

    def add_raw_listener(self, listener: Callable[[SampleBatch], None]) -> None:
        """Call ``listener`` (on the writer thread; it must not block) with every accepted raw
        batch, after fields the profile does not know were dropped (the InfluxDB mirror)."""
        self._raw_listeners.append(listener)

    def follow_own_clock(self, measurement: str) -> None:
        """Close the seconds of ``measurement`` by its data only, never by the clock (its
        source replays time, e.g. the simulator at another speed or start)."""
        self.own_clock = self.own_clock | {measurement}

    def submit(self, fn: Callable[[], T], what: str) -> Future[T]:
        """Run ``fn`` on the writer thread, after every batch and task queued before it and
        before every one queued after it; its result or exception goes to the future
        (``what`` names it in messages). Callable from any thread; the future fails with
        :class:`~sunarchive.errors.WriterStoppedError` if the writer has stopped or stops
        first."""
        task = WriterTask(fn, what)
        self.accumulator.put_task(task)
        return task.future

    def post_event(self, event: Event) -> None:
        """Record an event from any thread (a source going offline, ...)."""
        with self._events_lock:
            self._posted_events.append(event)

    def start(self) -> None:
        """Catch up rollups left from an earlier run, then start the writer and sources."""
        for item in self.spool.pending():
            self._registry.adopt(item)
            self._batch_ids[item.measurement] = max(self._batch_ids.get(item.measurement, 0),
                                                    item.batch_id)
        for name in self.store.profiles:
            try:
                self._catch_up(name)
            except TransientStoreError as exc:   # collect into the spool meanwhile
                self._owed_catch_up.add(name)
                log.warning("store unreachable at start (%s); collecting into the spool, "
                            "catching up %s once it answers", exc, name)
        self._writer = threading.Thread(target=self._run_writer, name="sunarchive-writer",
                                        daemon=True)
        self._writer.start()
        for source in self.sources:
            thread = threading.Thread(target=self._run_source, args=(source,),
                                      name=f"source-{source.name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _catch_up(self, name: str) -> None:
        """Where an earlier run left ``name``: its last batch, newest second and rollups
        (owed until it succeeds: no batch of ``name`` is written before)."""
        stored_batch = self.store.last_batch(name)
        self._batch_ids[name] = max(self._batch_ids.get(name, 0), stored_batch)
        last = self.store.last_time_s(name)
        self._stored_until[name] = last
        if last is not None:
            since = last - SERIES_LOOKBACK_S
            self._series_until[name] = (self.store.last_times_by_series(name, since), since)
            self.stats.rollup_rows += self.store.rollup(name, last + 1)
        self._owed_catch_up.discard(name)

    def _run_source(self, source: Source) -> None:
        status = self.source_status[source.name]
        if not hasattr(source, "status"):
            status.connected()   # a source that does not report its own state
        try:
            source.run(_CountingSink(self.accumulator, status), self._stop_sources)
        except Exception as exc:  # a source failing must not stop the others
            log.debug("source %s failed", source.name, exc_info=True)
            self.source_errors[source.name] = f"{type(exc).__name__}: {exc}"
            log.error("source %s stopped: %s", source.name, self.source_errors[source.name])
            if status.state != "failed":
                status.failed(self.source_errors[source.name])
        finally:
            status.stopped()

    def writer_alive(self) -> bool:
        """True while the writer thread runs."""
        return self._writer is not None and self._writer.is_alive()

    def sources_done(self) -> bool:
        """True when every source thread has finished (e.g. a simulated duration ended)."""
        return all(not t.is_alive() for t in self._threads)

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop sources, drain and flush everything into the store."""
        self._stop_sources.set()
        for thread in self._threads:
            thread.join(timeout_s)
        self._stop_writer.set()
        self.accumulator.wake()
        if self._writer is None:   # never started: nothing will run what is queued
            self._close_queue("the writer was never started")
            return
        self._writer.join(timeout_s)
        if self._writer.is_alive():
            log.error("writer did not finish within %.0f s", timeout_s)

    def _close_queue(self, reason: str) -> None:
        """Refuse every later put and task; fail the tasks still queued (their batches are
        lost with the writer)."""
        self.accumulator.close(reason)
        for item in self.accumulator.drain():
            if isinstance(item, WriterTask):
                item.fail(reason)

    # -- writer thread -----------------------------------------------------------------------
    def _run_writer(self) -> None:
        """The writer thread: any exception that escapes it is a failure the caller must see
        (``writer_error``); sources are stopped, nothing more is accepted."""
        try:
            self._write_loop()
        except BaseException as exc:
            self.writer_error = f"{type(exc).__name__}: {exc}"
            log.debug("writer thread died", exc_info=True)
            log.error("the writer stopped: %s; samples not yet written are lost",
                      self.writer_error)
            self._stop_sources.set()
            self._close_queue(self.writer_error)

    def _write_loop(self) -> None:
        next_commit = time.monotonic() + self.commit_interval_s
        while not self._stop_writer.is_set():
            self._take(self.accumulator.get(next_commit - time.monotonic()))
            if time.monotonic() >= next_commit or self._buffered() >= COMMIT_SAMPLES:
                self._commit(final=False)
                next_commit = time.monotonic() + self.commit_interval_s
        self.accumulator.close(STOPPED_CLEANLY)   # then nothing can come after the drain
        self._take_all(self.accumulator.drain())
        self._commit(final=True)
        self._drain_spool(force=True)
        if len(self.spool):
            where = self.spool.directory or "memory (lost on exit)"
            log.error("store unreachable at stop: %d batches remain in the spool at %s; the "
                      "next start writes them first", len(self.spool), where)

    def _take(self, item: QueueItem | None) -> None:
        """Run a task, or feed a batch to its reducer."""
        if isinstance(item, WriterTask):
            item.run()
        elif item is not None:
            self._ingest(item)

    def _take_all(self, items: Sequence[QueueItem]) -> None:
        """Take ``items`` in order; if one ends the writer, fail the tasks after it."""
        for at, item in enumerate(items):
            try:
                self._take(item)
            except BaseException as exc:
                for rest in items[at + 1:]:
                    if isinstance(rest, WriterTask):
                        rest.fail(f"{type(exc).__name__}: {exc}")
                raise

    def _ingest(self, batch: SampleBatch) -> None:
        profile = self.store.profiles.get(batch.measurement)
        if profile is None:
            self.stats.rejected_batches += 1
            self.stats.last_error = (f"measurement {batch.measurement!r} has no profile; "
                                     f"{len(batch)} samples rejected")
            log.warning(self.stats.last_error)
            return
        known = {f.name for f in profile.fields}
        unknown = sorted(set(batch.fields) - known)
        if unknown:
            # the bad field is reported and dropped; the good fields of the batch are kept
            self.stats.rejected_fields += 1
            self.stats.last_error = str(InputError(
                f"{batch.measurement}: unknown field {unknown[0]!r} dropped; profile "
                f"{profile.source_file} defines {', '.join(sorted(known))}"))
            log.warning(self.stats.last_error)
            fields = {k: v for k, v in batch.fields.items() if k in known}
            if not fields:
                self.stats.rejected_batches += 1
                return
            batch = SampleBatch(batch.measurement, batch.tag_sets, batch.tag_index,
                                batch.time_ns, fields)
        reducer = self._reducers.get(batch.measurement)
        if reducer is None:
            reducer = self._reducers[batch.measurement] = Reducer(
                profile, self.lateness_s, self.store.value_grid, self.dedup_window_s)
            if self._recent_files is not None:
                reducer.recall(self._recent_files.load(batch.measurement, reducer.names))
        elif reducer.profile is not profile:
            reducer.grow(profile)   # an inferred profile grew (schema on write)
        live = self.live_clock and batch.measurement not in self.own_clock
        reducer.add(self._registry.ids_for(batch), batch.time_ns, batch.fields,
                    arrived_ns=time.monotonic_ns() if live else None)
        self.live.count_samples(batch)
        for listener in self._raw_listeners:
            listener(batch)

    def _commit(self, final: bool) -> None:
        # The clock closes live series only while the writer keeps up: with batches still
        # queued, their samples could be made too late by the writer's own delay.
        now_ns = time.monotonic_ns() if self.accumulator.depth == 0 else None
        for name, reducer in list(self._reducers.items()):
            result = reducer.flush() if final else reducer.close(now_ns)
            self.stats.too_late_samples += result.too_late_samples
            self.stats.duplicates += result.duplicates
            self._pending_events.extend(result.events)
            self._write(name, result, reducer.closed_until_s)
            if self._recent_files is not None:
                self._recent_files.save(name, reducer.take_remembered())
            # what is queued is taken between the measurements' writes, in order, so a task
            # (a new measurement) waits for one write, not for the whole commit
            self._take_all(self.accumulator.drain())
        self._drain_spool()
        self.stats.spooled_batches = len(self.spool)
        self._flush_events()
        if time.monotonic() >= self._next_maintenance:
            self._maintain()
        self.live.update_sources([s.snapshot() for s in self.source_status.values()])
        self.live.update_buffered({sid: n for r in self._reducers.values()
                                   for sid, n in r.buffered_by_series().items()})
        self.live.update_writer(self.stats, self.accumulator, self._buffered())

    def _write(self, name: str, result: ReduceResult, closed_until: int | None) -> None:
        routed = name not in self._owed_catch_up
        fresh, merge = result.fresh, result.merge
        if routed:
            fresh, merge = self._route_overlap(name, fresh, merge)
        if len(fresh) or len(merge):
            ids = np.unique(np.concatenate([fresh.series_id, merge.series_id]))
            tags = {int(i): self._registry.tags[int(i)] for i in ids}
            item = PendingWrite(name, self._next_batch_id(name), fresh, merge, tags, routed)
            if len(self.spool) or not self._try_write(item):
                self.spool.put(item)   # after older spooled batches: order is kept
        self._drain_spool()
        if not len(self.spool) and name not in self._owed_catch_up:
            self._rollup(name, closed_until)

    def _next_batch_id(self, name: str) -> int:
        """A batch id above every earlier one of ``name``: the wall clock in µs (or one more
        than the last id, if that is higher). Ids need no store, so batches made while it is
        unreachable at start-up are numbered above those of earlier runs (unless the wall
        clock went back by more than the time between the runs)."""
        batch_id = max(self._batch_ids.get(name, 0) + 1, time.time_ns() // 1000)
        self._batch_ids[name] = batch_id
        return batch_id

    def _drain_spool(self, force: bool = False) -> None:
        """Write spooled batches in order; stop at the first failure and back off."""
        if not len(self.spool) or (not force and time.monotonic() < self._retry_at):
            return
        while (item := self.spool.peek()) is not None and self._try_write(item):
            self.spool.pop()

    def _try_write(self, item: PendingWrite) -> bool:
        try:
            self._registry.save_new()
            if item.measurement in self._owed_catch_up:
                self._catch_up(item.measurement)
            if not item.routed:
                fresh, merge = self._route_overlap(item.measurement, item.fresh, item.merge)
                item = PendingWrite(item.measurement, item.batch_id, fresh, merge, item.tags)
            written = self.store.write(item.fresh, item.merge, item.tags, item.batch_id)
        except Exception as exc:
            self._write_failed(item, exc)
            return False
        if written:
            self.stats.rows_written += item.rows()
            self.stats.commits += 1
            self.stats.last_write_at = time.time()
            self.live.update_rows(item.fresh, self._registry.tags)
        self._backoff_s = RETRY_MIN_S
        return True

    def _write_failed(self, item: PendingWrite, exc: Exception) -> None:
        self.stats.write_errors += 1
        self.stats.last_error = f"write to {item.measurement}: {type(exc).__name__}: {exc}"
        self._retry_at = time.monotonic() + self._backoff_s
        log.warning("write failed (%s); %d batches spooled, retrying in %.1f s",
                    self.stats.last_error, len(self.spool), self._backoff_s)
        self._backoff_s = min(self._backoff_s * 2, RETRY_MAX_S)

    def _rollup(self, name: str, closed_until: int | None) -> None:
        try:
            self.stats.rollup_rows += self.store.rollup(name, closed_until)
        except Exception as exc:
            self.stats.last_error = f"rollup of {name}: {type(exc).__name__}: {exc}"
            log.warning("rollup failed; will retry: %s", self.stats.last_error)

    def _route_overlap(self, name: str, fresh: StatsRows,
                       merge: StatsRows) -> tuple[StatsRows, StatsRows]:
        """Fresh rows at or before data stored by an earlier run are merged, not appended
        (checked for every batch: a series running behind the others reaches that data
        after they have passed it). Rows before the last second the earlier run stored for
        their series are marked as re-delivered: they never add energy to a stored second
        (``REPLAY_COLUMN``); the series' last stored second itself takes the energy of the
        new rows (a resumed series continues in it)."""
        stored = self._stored_until.get(name)
        if stored is None or not len(fresh):
            return fresh, merge
        old = fresh.time_s <= stored
        if not old.any():
            return fresh, merge
        moved = select_rows(fresh, old)
        moved.columns[REPLAY_COLUMN] = self._replayed(name, moved).astype(np.float64)
        return select_rows(fresh, ~old), concat_rows([merge, moved])

    def _replayed(self, name: str, rows: StatsRows) -> np.ndarray[Any, np.dtype[np.bool_]]:
        """Which ``rows`` lie before the last second stored for their series."""
        last, since = self._series_until.get(name, ({}, 0))
        bound = np.array([last.get(int(s), since) for s in rows.series_id], np.int64)
        return rows.time_s < bound

    def _flush_events(self) -> None:
        with self._events_lock:
            posted, self._posted_events = self._posted_events, []
        self._pending_events.extend(posted)
        if not self._pending_events:
            return
        events, self._pending_events = self._pending_events, []
        self.stats.gaps += sum(1 for e in events if e.kind == "gap")
        self.live.add_events(events)
        try:
            self.store.write_events(events)
        except Exception as exc:   # one line: a store outage is expected, not a crash
            log.debug("recording events failed", exc_info=True)
            log.warning("could not record %d events (%s: %s); will retry", len(events),
                        type(exc).__name__, exc)
            self._pending_events.extend(events)

    def _maintain(self) -> None:
        self._next_maintenance = time.monotonic() + self.maintenance_interval_s
        try:
            deleted = self.store.apply_retention(datetime.now(UTC))
            for table, count in deleted.items():
                log.info("retention: deleted %d rows from %s", count, table)
        except Exception as exc:
            log.debug("retention failed", exc_info=True)
            log.warning("retention failed (%s: %s); will retry", type(exc).__name__, exc)

    def _buffered(self) -> int:
        return sum(r.buffered for r in self._reducers.values())


class _CountingSink:
    """The accumulator as a source sees it: every batch put is counted into its status."""

    def __init__(self, sink: SampleSink, status: SourceStatus) -> None:
        self._sink = sink
        self._status = status

    def put(self, batch: SampleBatch) -> None:
        self._sink.put(batch)
        self._status.counted(batch)
