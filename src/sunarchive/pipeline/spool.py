"""A disk-backed FIFO of write batches the store could not take yet.

When the store is unreachable (a PostgreSQL restart, a network cut), the writer keeps reducing
and puts each batch here; once the store answers again the batches are written in the order
they were made. Every batch carries an id that the store records in the same transaction as
its rows, so a batch whose commit was in flight when the connection died is recognised on
replay and not written twice.

One Arrow IPC file per batch (``<seq>.arrow``), written to a temporary name and renamed, so a
crash leaves either the whole batch or none of it. Batches survive a restart of sunarchive.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc

from sunarchive.model import StatsRows

log = logging.getLogger(__name__)


@dataclass
class PendingWrite:
    """One writer batch of one measurement: rows to append, rows to merge, their series."""

    measurement: str
    batch_id: int
    fresh: StatsRows
    merge: StatsRows
    tags: dict[int, tuple[str, ...]]
    routed: bool = True
    """False: made before the store's state was known (unreachable at start); rows at or
    before the stored data are moved to ``merge`` when it is written."""

    def rows(self) -> int:
        return len(self.fresh) + len(self.merge)


class Spool:
    """FIFO of :class:`PendingWrite`; on disk when given a directory, else in memory."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory
        self._memory: list[PendingWrite] = []
        self._files: list[Path] = []
        if directory is not None and directory.is_dir():
            self._files = sorted(directory.glob("*.arrow"))
            if self._files:
                log.warning("spool %s holds %d batches from an earlier run; they will be "
                            "written first", directory, len(self._files))
        self._next_seq = 1 + max((int(f.stem) for f in self._files), default=0)

    def __len__(self) -> int:
        return len(self._files) if self.directory is not None else len(self._memory)

    def bytes(self) -> int:
        return sum(f.stat().st_size for f in self._files if f.exists())

    def put(self, item: PendingWrite) -> None:
        if self.directory is None:
            self._memory.append(item)
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{self._next_seq:012d}.arrow"
        self._next_seq += 1
        tmp = path.with_suffix(".tmp")
        table = _to_arrow(item)
        with pa.OSFile(str(tmp), "wb") as sink, ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        os.replace(tmp, path)
        self._files.append(path)

    def peek(self) -> PendingWrite | None:
        if self.directory is None:
            return self._memory[0] if self._memory else None
        if not self._files:
            return None
        with pa.memory_map(str(self._files[0])) as source:
            return _from_arrow(ipc.open_file(source).read_all())

    def pop(self) -> None:
        if self.directory is None:
            self._memory.pop(0)
            return
        self._files.pop(0).unlink()

    def last_time_s(self, measurement: str) -> int | None:
        """The newest second spooled for ``measurement`` (None: nothing spooled)."""
        times = [int(rows.time_s.max()) for item in self.pending()
                 if item.measurement == measurement
                 for rows in (item.fresh, item.merge) if len(rows)]
        return max(times) if times else None

    def pending(self) -> list[PendingWrite]:
        """Everything spooled, oldest first (reads the files)."""
        if self.directory is None:
            return list(self._memory)
        out = []
        for path in self._files:
            with pa.memory_map(str(path)) as source:
                out.append(_from_arrow(ipc.open_file(source).read_all()))
        return out


def _to_arrow(item: PendingWrite) -> pa.Table:
    n_fresh, n_merge = len(item.fresh), len(item.merge)
    names = sorted(set(item.fresh.columns) | set(item.merge.columns))
    data: dict[str, Any] = {
        "time_s": np.concatenate([item.fresh.time_s, item.merge.time_s]).astype(np.int64),
        "series_id": np.concatenate([item.fresh.series_id, item.merge.series_id]
                                    ).astype(np.int32),
        "is_merge": np.concatenate([np.zeros(n_fresh, bool), np.ones(n_merge, bool)]),
    }
    for name in names:
        data["c:" + name] = np.concatenate([
            rows.columns.get(name, np.full(len(rows), np.nan)).astype(np.float64)
            for rows in (item.fresh, item.merge)])
    meta = {"measurement": item.measurement, "batch_id": str(item.batch_id),
            "routed": "1" if item.routed else "0",
            "tags": json.dumps({str(k): list(v) for k, v in item.tags.items()})}
    return pa.table(data).replace_schema_metadata(meta)


def _from_arrow(table: pa.Table) -> PendingWrite:
    meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
    measurement = meta["measurement"]
    is_merge = table.column("is_merge").to_numpy()
    time_s = table.column("time_s").to_numpy()
    series = table.column("series_id").to_numpy().astype(np.int32)
    cols = {name[2:]: table.column(name).to_numpy() for name in table.column_names
            if name.startswith("c:")}

    def part(mask: np.ndarray[Any, np.dtype[np.bool_]]) -> StatsRows:
        return StatsRows(measurement, time_s[mask], series[mask],
                         {k: v[mask] for k, v in cols.items()})

    tags = {int(k): tuple(v) for k, v in json.loads(meta["tags"]).items()}
    return PendingWrite(measurement, int(meta["batch_id"]), part(~is_merge), part(is_merge),
                        tags, meta.get("routed", "1") == "1")
