"""The points of the last ``dedup_window_s`` on disk, so that a duplicate arriving after a
restart is recognised too (:class:`sunarchive.dedup.RecentPoints`).

Each commit that wrote points of a measurement adds one small Arrow file under
``<spool directory>/recent/<measurement as hex>/``, named by its newest sample time; files
wholly older than the window are deleted. The next start reads them back.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from pyarrow import ipc

from sunarchive.dedup import Points


class RecentFiles:
    """Saved recent points of every measurement under one directory."""

    def __init__(self, directory: Path, window_s: float) -> None:
        self.directory = directory / "recent"
        self.window_ns = round(window_s * 1e9)
        self._seq = 0

    def _folder(self, measurement: str) -> Path:
        return self.directory / measurement.encode().hex()

    def save(self, measurement: str, parts: list[Points]) -> None:
        """Write ``parts`` (one file) and delete the files older than the window."""
        parts = [p for p in parts if len(p)]
        if not parts or self.window_ns == 0:
            return
        folder = self._folder(measurement)
        folder.mkdir(parents=True, exist_ok=True)
        names = sorted(parts[0].values)
        data: dict[str, Any] = {"series": np.concatenate([p.series for p in parts]),
                                "time_ns": np.concatenate([p.time_ns for p in parts])}
        for n in names:
            data["f:" + n] = np.concatenate([p.values[n] for p in parts])
        table = pa.table(data)
        newest = max(int(p.time_ns.max()) for p in parts)
        self._seq += 1
        path = folder / f"{newest:020d}-{os.getpid()}-{self._seq}.arrow"
        tmp = path.with_suffix(".tmp")
        with pa.OSFile(str(tmp), "wb") as sink, ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        os.replace(tmp, path)
        self._prune(folder, newest - self.window_ns)

    @staticmethod
    def _prune(folder: Path, horizon_ns: int) -> None:
        for path in folder.glob("*.arrow"):
            if int(path.name.split("-", 1)[0]) < horizon_ns:
                path.unlink(missing_ok=True)

    def load(self, measurement: str, names: list[str]) -> list[Points]:
        """The saved points of ``measurement`` (fields not saved are absent)."""
        folder = self._folder(measurement)
        out = []
        for path in sorted(folder.glob("*.arrow")) if folder.is_dir() else []:
            with pa.memory_map(str(path)) as source:
                table = ipc.open_file(source).read_all()
            n = table.num_rows
            values = {name: (table.column("f:" + name).to_numpy()
                             if "f:" + name in table.column_names else np.full(n, np.nan))
                      for name in names}
            out.append(Points(table.column("series").to_numpy().astype(np.int32),
                              table.column("time_ns").to_numpy().astype(np.int64), values))
        return out
