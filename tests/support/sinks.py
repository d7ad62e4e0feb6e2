"""``ListSink``: the sink a source under test hands its batches to, read back by the test."""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from sunarchive.model import SampleBatch
from sunarchive.profiles.spec import Profile


class ListSink:
    """Collects the batches a source hands over; safe to read while the source's thread puts.

    ``profiles`` names the tags of each measurement for :meth:`rows`."""

    def __init__(self, profiles: Mapping[str, Profile] | None = None) -> None:
        self.batches: list[SampleBatch] = []
        self.lock = threading.Lock()
        self.profiles = profiles

    def put(self, batch: SampleBatch) -> None:
        with self.lock:
            self.batches.append(batch)

    def of(self, measurement: str) -> list[SampleBatch]:
        """The batches of one measurement, in the order they arrived."""
        with self.lock:
            return [b for b in self.batches if b.measurement == measurement]

    def samples(self, panel: str) -> dict[str, npt.NDArray[Any]]:
        """time_ns, voltage, current, power of one panel (a one-tag series) over all batches."""
        with self.lock:
            parts = [(b, b.tag_index == b.tag_sets.index((panel,))) for b in self.batches
                     if (panel,) in b.tag_sets]
        return {key: np.concatenate([(b.time_ns if key == "time_ns" else b.fields[key])[m]
                                     for b, m in parts]) if parts else np.empty(0)
                for key in ("time_ns", "voltage", "current", "power")}

    def rows(self) -> list[dict[str, Any]]:
        """Every sample as {tags..., time_ns, field: value} (NaN fields left out)."""
        assert self.profiles is not None, "ListSink(profiles) names the tags of rows()"
        out: list[dict[str, Any]] = []
        with self.lock:
            for b in self.batches:
                tags = self.profiles[b.measurement].tags
                for i in range(len(b)):
                    row: dict[str, Any] = dict(zip(tags, b.tag_sets[int(b.tag_index[i])],
                                                   strict=True))
                    row["time_ns"] = int(b.time_ns[i])
                    row.update({k: float(v[i]) for k, v in b.fields.items()
                                if not math.isnan(v[i])})
                    out.append(row)
        return out
