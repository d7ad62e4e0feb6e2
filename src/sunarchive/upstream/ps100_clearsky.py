"""Upkeep of what the PS100 view reads besides the readings: the panel registry and the
clear-sky grid.

* Panels seen in the data but not in ``ps100_panels`` are registered with PS100-class
  defaults at the configured site (``origin = auto``).
* ``ps100_clearsky`` gets pvlib's clear-sky plane-of-array irradiance, a row a minute, for
  every (panel, UTC day) that has readings — computed in a short-lived child process, so the
  collector never loads pvlib and the writer never waits for it: the writer only answers what
  is missing and inserts the finished grid (two short tasks).

When: at every writer start for all stored days, every ``maintenance_interval_s`` while
collecting for the days near the newest reading, after an import for the imported days, and
on demand (``sunarchive panels clearsky``). Until a day's grid is in, the view reads NULL in
its clear-sky columns for that day.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import numpy as np

from sunarchive.sources.clearsky import DAY_S, STEP_S, Site, poa_minutes, poa_minutes_isolated
from sunarchive.storage.migrations import Schema
from sunarchive.upstream import ps100, ps100_view
from sunarchive.upstream.ps100_live import Expectations

log = logging.getLogger(__name__)

T = TypeVar("T")
OnWriter = Callable[[Callable[[Schema], T]], T]
"""Runs a function of the store's schema where writes belong (the writer thread of a running
instance, or the store's lock and one transaction in a command)."""
Grids = Callable[[Site, list[int]], dict[int, Any]]
Missing = dict[Site, tuple[list[str], list[int]]]
"""Site → (panels there lacking a grid, UTC epoch days they lack)."""
RECENT_S = 2 * DAY_S
"""While collecting, the days looked at: those of the last two days before the newest."""


def default_grids(site: Site, days: list[int]) -> dict[int, Any]:
    """pvlib in this process if it is loaded already (a simulator runs here), else in a
    child process that exits afterwards."""
    if "pvlib" in sys.modules:
        return poa_minutes(site, days)
    return poa_minutes_isolated(site, days)


def direct(store: Any) -> OnWriter[Any]:
    """Run on a store this thread owns: its lock, one transaction."""
    def run(fn: Callable[[Schema], T]) -> T:
        with store._lock, store._transaction():
            return fn(store._schema())
    return run


def prepare(store: Any, config: ps100.Ps100Settings | None) -> list[str]:
    """A writing store's PS100 relations made, the configured panels in the registry, and
    the view made again if that changed its sensors; what changed."""
    if ps100.MEASUREMENT not in store.profiles:
        return []

    def work(s: Schema) -> list[str]:
        changes = ps100.ensure_schema(s)
        if config is not None:
            changes += ps100.apply_config(s, config)
        return changes + ps100_view.ensure_view(s)
    return list(direct(store)(work))


def upkeep(on_writer: OnWriter[Any], config: ps100.Ps100Settings | None,
           recent_only: bool = False, grids: Grids = default_grids) -> list[str]:
    """Register new panels and fill the clear-sky grid where readings lack one."""
    settings = config or ps100.Ps100Settings()
    missing: Missing
    changes, missing = on_writer(lambda s: find_missing(s, settings, recent_only))
    for site, (ids, days) in missing.items():
        computed = grids(site, days)
        on_writer(lambda s, c=computed, i=ids: insert_grids(s, i, c))   # type: ignore[misc]
        changes.append(f"{ps100.CLEARSKY}: {len(days)} day(s) of clear-sky irradiance for "
                       f"{', '.join(ids)}")
    return list(changes)


def find_missing(s: Schema, config: ps100.Ps100Settings,
                 recent_only: bool) -> tuple[list[str], Missing]:
    """Panels registered now, and the grids readings lack (read on the writer)."""
    if s.table_type(ps100.READINGS) != "BASE TABLE" or not s.has_table(ps100.CLEARSKY):
        return [], {}
    seen = _days_with_readings(s, recent_only)
    changes = _register(s, config, set(seen))
    panels = ps100.read_panels(s)
    have = _days_with_grids(s, min((d for days in seen.values() for d in days), default=0))
    if changes:
        changes += ps100_view.ensure_view(s)
    missing: Missing = {}
    for panel_id, days in sorted(seen.items()):
        lacking = sorted(days - have.get(panel_id, set()))
        if not lacking or panel_id not in panels:
            continue
        ids, wanted = missing.setdefault(Site(*panels[panel_id].site()), ([], []))
        ids.append(panel_id)
        wanted[:] = sorted(set(wanted) | set(lacking))
    return changes, missing


def _days_with_readings(s: Schema, recent_only: bool) -> dict[str, set[int]]:
    """UTC epoch days with readings, per panel (from the hourly relation: a row an hour)."""
    hourly = s.dialect.quote(ps100.MEASUREMENT + "_1hour")
    where = ""
    if recent_only:
        newest = s.fetch(f"SELECT MAX(time) FROM {hourly}", None)
        if not newest or newest[0][0] is None:
            return {}
        where = f"WHERE time >= {s.dialect.timestamp(_epoch(newest[0][0]) - RECENT_S)}"
    out: dict[str, set[int]] = {}
    for panel_id, hour in s.fetch(f"SELECT DISTINCT panel_id, time FROM {hourly} {where}",
                                  None):
        if panel_id:
            out.setdefault(str(panel_id), set()).add(_epoch(hour) // DAY_S)
    return out


def _days_with_grids(s: Schema, since_day: int) -> dict[str, set[int]]:
    rows = s.fetch(f"SELECT DISTINCT panel_id, {s.dialect.bucket(DAY_S)} FROM "
                   f"{ps100.CLEARSKY} WHERE time >= {s.dialect.timestamp(since_day * DAY_S)}",
                   None)
    out: dict[str, set[int]] = {}
    for panel_id, day in rows:
        out.setdefault(str(panel_id), set()).add(_epoch(day) // DAY_S)
    return out


def _register(s: Schema, config: ps100.Ps100Settings, seen: set[str]) -> list[str]:
    known = ps100.read_panels(s)
    changes = []
    for panel_id in sorted(seen - set(known)):
        row = ps100.panel_row(ps100.PanelSettings(panel_id=panel_id), config, "auto")
        ps100.upsert(s, row)
        changes.append(f"{ps100.PANELS}: registered {panel_id} (seen in the data, PS100-class "
                       "defaults; `sunarchive panels set` edits it)")
    return changes


def insert_grids(s: Schema, panel_ids: list[str], grids: dict[int, Any]) -> None:
    for day, grid in grids.items():
        seconds = [day * DAY_S + i * STEP_S for i in range(len(grid))]
        values = [float(v) for v in np.asarray(grid, dtype=np.float64)]
        for panel_id in panel_ids:
            insert_grid(s, panel_id, seconds, values)


def insert_grid(s: Schema, panel_id: str, seconds: list[int], values: list[float]) -> None:
    if s.postgres:
        s.execute(f"INSERT INTO {ps100.CLEARSKY} SELECT %s, to_timestamp(t), v FROM "
                  "unnest(%s::BIGINT[], %s::FLOAT8[]) AS u(t, v) ON CONFLICT DO NOTHING",
                  [panel_id, seconds, values])
    else:
        s.execute(f"INSERT OR IGNORE INTO {ps100.CLEARSKY} SELECT ?, make_timestamp(t * "
                  "1000000), v FROM (SELECT unnest(?::BIGINT[]) AS t, unnest(?::DOUBLE[]) "
                  "AS v)", [panel_id, seconds, values])


def forget_panel(s: Schema, panel_id: str) -> None:
    """Drop a panel's grid (its place or orientation changed): the next upkeep computes it
    again for every day it has readings."""
    s.execute(f"DELETE FROM {ps100.CLEARSKY} WHERE panel_id = {s.p}", [panel_id])


def _epoch(value: datetime) -> int:
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return int(aware.timestamp())


class Background:
    """The upkeep of a running instance: at once for every stored day, then every
    ``interval_s`` for the recent days; a failure is a warning and tried again."""

    def __init__(self, on_writer: OnWriter[Any], config: ps100.Ps100Settings | None,
                 interval_s: float, expectations: Expectations | None = None) -> None:
        self.on_writer = on_writer
        self.config = config
        self.interval_s = interval_s
        self.expectations = expectations
        """Refreshed after each run, for the live console (:mod:`.ps100_live`)."""
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ps100-upkeep", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        recent_only = False
        while not self._stopping.is_set():
            once(self.on_writer, self.config, recent_only)
            if self.expectations is not None:
                refresh_expectations(self.on_writer, self.expectations)
            recent_only = True
            self._stopping.wait(self.interval_s)


def refresh_expectations(on_writer: OnWriter[Any], expectations: Expectations) -> None:
    """Read the console's clear-sky expectations on the writer; a failure is one warning."""
    try:
        on_writer(expectations.refresh)
    except Exception as exc:
        log.debug("PS100 live expectations failed", exc_info=True)
        log.warning("PS100 console expectations (clear-sky grid) not read: %s: %s",
                    type(exc).__name__, str(exc).strip().splitlines()[0] if str(exc) else "")


def once(on_writer: OnWriter[Any], config: ps100.Ps100Settings | None,
         recent_only: bool = False) -> list[str]:
    """:func:`upkeep`, a failure logged as one warning line (the readings are stored; only
    the view's clear-sky columns wait for the next try)."""
    try:
        changes = upkeep(on_writer, config, recent_only)
    except Exception as exc:
        log.debug("PS100 upkeep failed", exc_info=True)
        log.warning("PS100 upkeep (panel registry, clear-sky grid) failed: %s: %s; will "
                    "retry", type(exc).__name__, str(exc).strip().splitlines()[0] if str(exc)
                    else "")
        return []
    for change in changes:
        log.info("%s", change)
    return changes
