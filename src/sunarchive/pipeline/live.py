"""Live state for the console and other processes: latest 1 s values and counters.

The writer updates it after each commit; :meth:`LiveState.snapshot` gives a JSON-ready dict
and, when a path is set, the snapshot is also written atomically to a file so that
``sunarchive monitor`` in another process can show it.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sunarchive.model import Event, SampleBatch, StatsRows

if TYPE_CHECKING:
    from sunarchive.pipeline.accumulator import Accumulator
    from sunarchive.pipeline.agent import WriterStats

LATEST_SUFFIX = "_avg"


class LiveState:
    """Thread-safe latest values per series plus pipeline counters."""

    def __init__(self, path: Path | None = None, targets_hz: dict[str, float] | None = None,
                 write_every_s: float = 1.0) -> None:
        self.path = path
        self.targets_hz = targets_hz or {}
        self.write_every_s = write_every_s
        self._lock = threading.Lock()
        self._latest: dict[str, dict[str, Any]] = {}
        self._buffered: dict[int, int] = {}
        self._events: deque[dict[str, Any]] = deque(maxlen=50)
        self._counters: dict[str, Any] = {}
        self._sources: list[dict[str, Any]] = []
        self._samples: dict[str, int] = {}
        self._rate: dict[str, float] = {}
        self._rate_mark = (time.monotonic(), 0)
        self._started = time.time()
        self._last_write = 0.0
        self._listeners: list[Callable[[StatsRows, dict[int, tuple[str, ...]]], None]] = []
        self.http_url: str | None = None
        """Where the running instance serves its API (for CLI commands in other processes)."""
        self.mirror_status: Callable[[], dict[str, Any]] | None = None
        """State of the InfluxDB mirror, when one runs (``Mirror.status``)."""
        self.annotate: Callable[[dict[str, Any]], dict[str, Any]] | None = None
        """Adds derived figures to a latest-row entry of the snapshot (the PS100 panels'
        clear-sky expectation, :mod:`sunarchive.upstream.ps100_live`)."""

    def count_samples(self, batch: SampleBatch) -> None:
        with self._lock:
            self._samples[batch.measurement] = self._samples.get(batch.measurement, 0) + len(
                batch)

    def add_listener(self, listener: Callable[[StatsRows, dict[int, tuple[str, ...]]], None]
                     ) -> None:
        """Call ``listener`` (on the writer thread; it must not block) with every new row."""
        self._listeners.append(listener)

    def update_rows(self, rows: StatsRows, tags: dict[int, tuple[str, ...]]) -> None:
        """Remember the newest row of each series in ``rows`` and tell the listeners."""
        if not len(rows):
            return
        for listener in self._listeners:
            listener(rows, tags)
        order = np.lexsort((rows.time_s, rows.series_id))
        sid = rows.series_id[order]
        last = order[np.append(sid[1:] != sid[:-1], True)]
        with self._lock:
            for i in last:
                series = int(rows.series_id[i])
                values = {k: _plain(v[i]) for k, v in rows.columns.items()}
                self._latest[f"{rows.measurement}/{series}"] = {
                    "measurement": rows.measurement, "series_id": series,
                    "tags": list(tags.get(series, ())), "time_s": int(rows.time_s[i]),
                    "values": values}

    def update_buffered(self, per_series: dict[int, int]) -> None:
        """Samples per series waiting in the reducer for their second to close."""
        with self._lock:
            self._buffered = dict(per_series)

    def update_sources(self, sources: list[dict[str, Any]]) -> None:
        """State and counters of each source (see ``SourceStatus.snapshot``)."""
        with self._lock:
            self._sources = sources

    def add_events(self, events: list[Event]) -> None:
        with self._lock:
            for e in events:
                self._events.append({"time_s": e.time_s, "kind": e.kind,
                                     "measurement": e.measurement, "message": e.message})

    def update_writer(self, stats: WriterStats, accumulator: Accumulator,
                      buffered: int) -> None:
        now = time.monotonic()
        with self._lock:
            total = sum(self._samples.values())
            mark_t, mark_n = self._rate_mark
            if now - mark_t >= 1.0:
                self._rate["samples_per_s"] = (total - mark_n) / (now - mark_t)
                self._rate_mark = (now, total)
            self._counters = {
                "rows_written": stats.rows_written, "rollup_rows": stats.rollup_rows,
                "commits": stats.commits, "too_late_samples": stats.too_late_samples,
                "duplicates": stats.duplicates,
                "rejected_batches": stats.rejected_batches,
                "rejected_fields": stats.rejected_fields, "write_errors": stats.write_errors,
                "gaps": stats.gaps, "last_error": stats.last_error,
                "spooled_batches": stats.spooled_batches,
                "last_write_at": stats.last_write_at, "queue_depth": accumulator.depth,
                "samples_buffered": buffered, "samples_in": accumulator.stats.samples_in,
                "values_in": accumulator.stats.values_in,
                "samples_dropped": accumulator.stats.samples_dropped,
            }
        if self.path is not None and time.time() - self._last_write >= self.write_every_s:
            self.write_file()

    def snapshot(self) -> dict[str, Any]:
        mirror = self.mirror_status() if self.mirror_status is not None else None
        annotate = self.annotate or (lambda entry: entry)
        with self._lock:
            return {"pid": os.getpid(), "updated_at": time.time(), "started_at": self._started,
                    "http_url": self.http_url, "mirror": mirror,
                    "uptime_s": time.time() - self._started,
                    "samples_per_s": self._rate.get("samples_per_s", 0.0),
                    "samples_by_measurement": dict(self._samples),
                    "targets_hz": dict(self.targets_hz), "counters": dict(self._counters),
                    "sources": list(self._sources),
                    "latest": [annotate(dict(e, buffered=self._buffered.get(e["series_id"],
                                                                            0)))
                               for e in self._latest.values()],
                    "events": list(self._events)}

    def write_file(self) -> None:
        """Write the snapshot atomically (temp file + rename)."""
        if self.path is None:
            return
        self._last_write = time.time()
        tmp = self.path.with_suffix(".tmp")
        tmp.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(self.snapshot()), encoding="utf-8")
        os.replace(tmp, self.path)

    def remove_file(self) -> None:
        if self.path is not None and self.path.exists():
            self.path.unlink()


def _plain(value: Any) -> float | None:
    number = float(value)
    return None if np.isnan(number) else number


def read_live_file(path: Path) -> dict[str, Any] | None:
    """The snapshot a running instance wrote, or None when there is none."""
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data
