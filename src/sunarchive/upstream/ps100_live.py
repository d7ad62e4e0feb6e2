"""The live console's clear-sky expectation of each PS100 panel: the same expected power as
the ``expected_power_w`` column of ``ps100_readings_1s`` (rules in
:mod:`sunarchive.upstream.ps100_conditions`), for the newest second of each panel.

The collector never loads pvlib and the live state never queries the store. The PS100 upkeep
(:class:`sunarchive.upstream.ps100_clearsky.Background`), after each of its runs, reads on the
writer the registry's rating of each panel and the stored clear-sky grid of the hours around
the newest reading (:data:`BEFORE_S` before, :data:`AFTER_S` after) into an
:class:`Expectations`; :meth:`Expectations.annotate` then adds ``expected_power_w`` and
``rated_power_w`` to a panel's latest row in the live snapshot. A second whose minute has no
grid yet (the first upkeep of a new day, a minute to compute) gets neither: the console says
it is waiting instead of guessing.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

from sunarchive.storage.migrations import Schema
from sunarchive.upstream import ps100
from sunarchive.upstream.ps100_conditions import clearsky_at, expected_power_w

BEFORE_S = 3600
AFTER_S = 3 * 3600
"""The grid kept: an hour before the newest reading's hour to three hours after (the
upkeep runs every maintenance interval, a minute by default)."""
PANEL_TAG = "panel_id"


class Expectations:
    """Ratings and clear-sky grid minutes per panel; thread-safe (filled on the writer, read
    by the live snapshot)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ratings: dict[str, tuple[float, float]] = {}
        """panel → (rated power W, temperature coefficient %/°C)."""
        self._grid: dict[str, dict[int, float]] = {}
        """panel → minute (UTC epoch s) → clear-sky POA W/m²."""

    def refresh(self, s: Schema) -> None:
        """Read the registry and the grid near the newest reading (runs on the writer)."""
        panels = ps100.read_panels(s)
        ratings = {pid: (float(p.values["rated_power_w"]),
                         float(p.values["temp_coefficient_pct_per_c"]))
                   for pid, p in panels.items()}
        grid = _grid_near_newest(s)
        with self._lock:
            self._ratings, self._grid = ratings, grid

    def expected(self, panel_id: str, time_s: int,
                 temperature_c: float | None) -> tuple[float, float] | None:
        """(expected power W, rated power W) of a panel's second; None without a grid."""
        with self._lock:
            rating = self._ratings.get(panel_id)
            minutes = self._grid.get(panel_id)
        if rating is None or minutes is None:
            return None
        minute = time_s - time_s % 60
        first = minutes.get(minute)
        if first is None:
            return None
        poa = clearsky_at(first, minutes.get(minute + 60), time_s - minute)
        watts = expected_power_w(rating[0], rating[1], poa, temperature_c)
        return None if watts is None else (watts, rating[0])

    def annotate(self, entry: dict[str, Any], tag_names: tuple[str, ...]) -> dict[str, Any]:
        """A latest-row entry of the live snapshot, with ``expected_power_w`` and
        ``rated_power_w`` when its panel and minute are known."""
        if entry.get("measurement") != ps100.MEASUREMENT or PANEL_TAG not in tag_names:
            return entry
        tags = entry.get("tags") or []
        index = tag_names.index(PANEL_TAG)
        if index >= len(tags):
            return entry
        temperature = entry.get("values", {}).get("temperature_avg")
        found = self.expected(str(tags[index]), int(entry["time_s"]), temperature)
        if found is None:
            return entry
        return dict(entry, expected_power_w=found[0], rated_power_w=found[1])


def _grid_near_newest(s: Schema) -> dict[str, dict[int, float]]:
    if not s.has_table(ps100.CLEARSKY) or s.table_type(ps100.READINGS) != "BASE TABLE":
        return {}
    hourly = s.dialect.quote(ps100.MEASUREMENT + "_1hour")
    newest = s.fetch(f"SELECT MAX(time) FROM {hourly}", None)
    if not newest or newest[0][0] is None:
        return {}
    hour = _epoch(newest[0][0])
    rows = s.fetch(f"SELECT panel_id, time, poa_w_m2 FROM {ps100.CLEARSKY} WHERE time >= "
                   f"{s.dialect.timestamp(hour - BEFORE_S)} AND time <= "
                   f"{s.dialect.timestamp(hour + AFTER_S)}", None)
    grid: dict[str, dict[int, float]] = {}
    for panel_id, time, poa in rows:
        grid.setdefault(str(panel_id), {})[_epoch(time)] = float(poa)
    return grid


def _epoch(value: datetime) -> int:
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return int(aware.timestamp())
