"""A disk-backed FIFO of mirror points with a size limit.

One Arrow IPC file (LZ4-compressed) per :class:`~sunarchive.sinks.encode.Points` table, named
``<seq>_<points>.arrow`` and written to a temporary name then renamed, so a crash leaves a whole
segment or none. Segments are read back in ``seq`` order; :meth:`DiskBuffer.put_front` puts
points before everything already buffered (a stopping mirror saves what it still held in
memory, which is older). The buffer survives a restart.

At most ``max_bytes`` wait on disk (segments the sender has taken for its current batch, at
most ``batch_size`` points, are in flight and do not count). When a new segment does not fit,
the policy decides:
``drop_oldest`` deletes the oldest segments until it fits (recent data matters most),
``drop_newest`` refuses the new one. Either way the dropped points are counted and logged once
per episode (an episode ends when InfluxDB takes a buffered segment again).
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Literal

import pyarrow as pa
import pyarrow.ipc as ipc

from sunarchive.sinks.encode import Points

log = logging.getLogger(__name__)
FullPolicy = Literal["drop_oldest", "drop_newest"]
_OPTIONS = ipc.IpcWriteOptions(compression="lz4")


class DiskBuffer:
    """Ordered segments of points in ``directory``, at most ``max_bytes`` in all."""

    def __init__(self, directory: Path, max_bytes: int,
                 policy: FullPolicy = "drop_oldest") -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.policy = policy
        self.dropped_points = 0
        self._lock = threading.Lock()
        self._full_episode = False
        self._segments: dict[int, tuple[Path, int, int]] = {}
        """seq → (path, points, bytes)."""
        self._taken: set[int] = set()
        """Segments the sender has read and is sending: never dropped."""
        if directory.is_dir():
            for tmp in directory.glob("*.tmp"):
                tmp.unlink()
            for path in directory.glob("*.arrow"):
                seq, _, count = path.stem.partition("_")
                self._segments[int(seq)] = (path, int(count), path.stat().st_size)
        self._next = max(self._segments, default=0) + 1
        if self._segments:
            log.warning("InfluxDB mirror buffer %s holds %d points from an earlier run; they "
                        "are sent first", directory, self.points)

    def __len__(self) -> int:
        return len(self._segments)

    @property
    def points(self) -> int:
        """Points waiting on disk."""
        with self._lock:
            return sum(count for _, count, _ in self._segments.values())

    @property
    def bytes(self) -> int:
        with self._lock:
            return sum(size for _, _, size in self._segments.values())

    def put(self, points: Points) -> bool:
        """Append ``points`` after everything buffered; False when the policy refused them."""
        if not len(points):
            return True
        with self._lock:
            seq = self._next
            self._next += 1
        return self._store(seq, points)

    def put_front(self, items: list[Points]) -> None:
        """Put ``items`` (in their order) before everything buffered."""
        with self._lock:
            first = min(self._segments, default=self._next)
        for offset, points in enumerate(reversed([p for p in items if len(p)])):
            self._store(first - 1 - offset, points)

    def head(self) -> tuple[int, Points] | None:
        """The oldest segment (its seq and points), or None when the buffer is empty."""
        return self.next_after(None)

    def next_after(self, after: int | None) -> tuple[int, Points] | None:
        """The oldest segment after seq ``after`` (None: the oldest of all), read back."""
        while True:
            with self._lock:
                later = [s for s in self._segments if after is None or s > after]
                if not later:
                    return None
                seq = min(later)
                path = self._segments[seq][0]
                self._taken.add(seq)
            try:
                with pa.memory_map(str(path)) as source:
                    return seq, Points(ipc.open_file(source).read_all())
            except FileNotFoundError:  # dropped by the policy meanwhile
                with self._lock:
                    self._segments.pop(seq, None)
            except (OSError, pa.ArrowInvalid) as exc:
                log.error("InfluxDB mirror buffer: unreadable segment %s skipped: %s",
                          path, exc)
                self.remove(seq)

    def remove(self, seq: int) -> None:
        """Delete segment ``seq`` (sent); nothing happens when it is already gone."""
        with self._lock:
            entry = self._segments.pop(seq, None)
            self._taken.discard(seq)
        if entry is not None:
            entry[0].unlink(missing_ok=True)
        if self._full_episode:   # InfluxDB takes points again: the episode is over
            self._full_episode = False
            log.warning("InfluxDB mirror buffer %s: InfluxDB takes points again; %d points "
                        "were dropped in all", self.directory, self.dropped_points)

    def _store(self, seq: int, points: Points) -> bool:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{seq}_{len(points)}.arrow"
        tmp = path.with_suffix(".tmp")
        with pa.OSFile(str(tmp), "wb") as sink, \
                ipc.new_file(sink, points.table.schema, options=_OPTIONS) as writer:
            writer.write_table(points.table)
        size = tmp.stat().st_size
        if not self._make_room(size, len(points)):
            tmp.unlink()
            return False
        os.replace(tmp, path)
        with self._lock:
            self._segments[seq] = (path, len(points), size)
        return True

    def _waiting_bytes(self) -> int:
        """Bytes of segments not being sent (those in flight leave the buffer soon and are
        never dropped, so they do not count against the limit)."""
        with self._lock:
            return sum(size for seq, (_, _, size) in self._segments.items()
                       if seq not in self._taken)

    def _make_room(self, size: int, count: int) -> bool:
        if self._waiting_bytes() + size <= self.max_bytes:
            return True
        if not self._full_episode:
            self._full_episode = True
            what = "the oldest buffered" if self.policy == "drop_oldest" else "new"
            log.error("InfluxDB mirror buffer %s is full (limit %d bytes): dropping %s points "
                      "until InfluxDB takes them again (policy %s)", self.directory,
                      self.max_bytes, what, self.policy)
        while self.policy == "drop_oldest" and self._waiting_bytes() + size > self.max_bytes:
            with self._lock:
                droppable = [s for s in self._segments if s not in self._taken]
                if not droppable:
                    break
                path, dropped, _ = self._segments.pop(min(droppable))
            path.unlink(missing_ok=True)
            self.dropped_points += dropped
        if self._waiting_bytes() + size > self.max_bytes:
            self.dropped_points += count
            return False
        return True
