"""Upstream tables that are hypertables on TimescaleDB: a profile's plain view kept as a table.

HOMEPOT's ``health_checks`` and Perocube's ``mpp_measurement``, ``temperature_measurement`` and
``irradiance_measurement`` are hypertables in their documents: their users look them up in
``timescaledb_information.hypertables`` and ``.chunks``, and run ``show_chunks`` and
``sunarchive chunks health_checks`` on them. A view (:mod:`sunarchive.storage.plain_views`) is
in neither. So a profile with ``view_hypertable: true`` gets, on the TimescaleDB layout, a
hypertable under its view's name instead of the view: the same columns
(:func:`~sunarchive.storage.plain_views.view_select`: ``timestamp``, integer ``device_id``,
``cpu_percent`` …, ``response_data``), one row per stored second that has samples, partitioned
by its own time column with the profile's chunk interval.

It is derived from the 1 s tier, which stays the store's record (rollups, reads, replacement
and retention work on it as for every profile), and it follows the 1 s tier exactly:

* **every write** re-derives the table's rows in the seconds it touched (appended, merged late
  or re-delivered, replaced), in the write's own transaction (the layout's ``after_write``): a
  committed write is in both or in neither, and a replayed batch changes nothing;
* **retention** drops its chunks with those of the 1 s tier, with the same cutoff (an item of
  the retention job's config: :func:`retention_item`);
* **compression**: as the 1 s tier's, after ``compress_after_days`` (7 by default, as HOMEPOT's
  document has it), segmented by the first tag (``device_id``), ordered by time
  (:func:`sunarchive.storage.postgres.timescale.view_hypertables`); ``sunarchive compress``
  compresses it with the 1 s tiers;
* **setup** creates it, filled from the 1 s tier, in one transaction; in a store from before it
  replaces the view of that name (``plain_view:<name>`` in ``sunarchive_meta``); when the
  profile's columns changed it gains the new ones and is derived again. A relation of that name
  that sunarchive did not make is left alone, as with views.

The cost is that these profiles' rows are stored twice on TimescaleDB (a check every minute
or so per device: small beside a 10 Hz panel's 1 s tier).
Writing into it with your own SQL is not a way in: the next write over those seconds derives
them again from the 1 s tier (sunarchive's write paths and ``sunarchive import`` are).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import numpy as np
import psycopg

from sunarchive.model import ConfigError
from sunarchive.profiles.spec import Profile
from sunarchive.profiles.sql_names import index_name
from sunarchive.rollup import POSTGRES
from sunarchive.storage.plain_views import META_PREFIX as VIEW_META_PREFIX
from sunarchive.storage.plain_views import digest, view_select
from sunarchive.storage.postgres.partitions import interval_seconds
from sunarchive.storage.postgres.schema import existing_columns, relation_kind

log = logging.getLogger(__name__)
Q = POSTGRES.quote
Con = psycopg.Connection[tuple[Any, ...]]
META_PREFIX = "view_table:"
"""``sunarchive_meta`` keys (``view_table:<name>``) holding a digest of the query the table is
derived with: the record that the table is sunarchive's, and whether its columns changed."""
RUN_GAP_S = 3600
"""Written seconds closer than this are re-derived as one range (one DELETE and one INSERT)."""
LAYOUT = "timescaledb"


def kept(profile: Profile, layout: str | None) -> bool:
    """Is ``profile``'s view a hypertable of its own in a store of ``layout``?"""
    return profile.view_hypertable and profile.view is not None and layout == LAYOUT


def is_ours(con: Con, profile: Profile) -> bool:
    """Is the relation under ``profile``'s view name the table this module keeps?"""
    name = str(profile.view)
    return relation_kind(con, name) == "r" and _meta(con, META_PREFIX + name) is not None


def tables(con: Con, profiles: Iterable[Profile]) -> list[str]:
    """The view hypertables of ``profiles`` that this module keeps in the store."""
    return [str(p.view) for p in profiles if kept(p, LAYOUT) and is_ours(con, p)]


def ensure(con: Con, profile: Profile) -> list[str]:
    """Create, or bring up to date, the hypertable of ``profile``'s view (idempotent; in the
    caller's transaction). What changed."""
    name = str(profile.view)
    if relation_kind(con, profile.table("1s")) is None:
        return []   # the 1 s tier first
    select = view_select(profile, POSTGRES)
    recorded = _meta(con, META_PREFIX + name)
    kind = relation_kind(con, name)
    if kind is not None and recorded is None:
        if kind != "v" or _meta(con, VIEW_META_PREFIX + name) is None:
            note = (f"left {name} alone: a relation sunarchive did not make has that name; "
                    f"no hypertable {name}")
            log.warning(note)
            return [note]
        _drop_old_view(con, name)
        kind = None
    if kind is None:
        return _create(con, profile, select)
    if recorded == digest(select):
        return []
    added = _add_columns(con, name, select)
    _derive(con, profile, None)
    _record(con, name, select)
    return [*added, f"derived {name} again from {profile.table('1s')} (its columns changed)"]


def _create(con: Con, profile: Profile, select: str) -> list[str]:
    name, time_column = str(profile.view), profile.view_time
    con.execute(f"CREATE TABLE {Q(name)} AS {select} WITH NO DATA")
    con.execute(f"ALTER TABLE {Q(name)} ALTER COLUMN {Q(time_column)} SET NOT NULL")
    con.execute("SELECT create_hypertable(%s::regclass, %s::name, chunk_time_interval => "
                "make_interval(secs => %s))",
                [Q(name), time_column, interval_seconds(profile.chunk_interval)])
    if profile.tags:
        first = profile.tags[0]
        index = index_name(name, f"_{first}_time")
        con.execute(f"CREATE INDEX IF NOT EXISTS {Q(index)} ON {Q(name)} "
                    f"({Q(first)}, {Q(time_column)} DESC)")
    rows = _derive(con, profile, None)
    _record(con, name, select)
    return [f"created hypertable {name} ({profile.table('1s')} with plain field names, "
            f"{rows} rows)"]


def _drop_old_view(con: Con, name: str) -> None:
    """Drop the view a store from before has under the table's name (its rows are the 1 s
    tier's: nothing is lost); a view of the user's that reads it stops the change."""
    try:
        with con.transaction():
            con.execute(f"DROP VIEW {Q(name)}")
    except psycopg.errors.DependentObjectsStillExist as exc:
        detail = (exc.diag.message_detail or "").replace("\n", "; ")
        raise ConfigError(f"cannot make {name} a hypertable: other objects use the view "
                          f"{name} ({detail}); drop them, run setup, and make them again"
                          ) from None
    con.execute("DELETE FROM sunarchive_meta WHERE key = %s", [VIEW_META_PREFIX + name])


def _add_columns(con: Con, name: str, select: str) -> list[str]:
    """Columns the derivation query has and the table lacks, added with the query's types."""
    have = set(existing_columns(con, name))
    con.execute(f"CREATE TEMP TABLE _sunarchive_view_columns AS {select} WITH NO DATA")
    wanted = con.execute(
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute WHERE "
        "attrelid = '_sunarchive_view_columns'::regclass AND attnum > 0 AND NOT attisdropped "
        "ORDER BY attnum").fetchall()
    con.execute("DROP TABLE _sunarchive_view_columns")
    added = []
    for column, sql_type in wanted:
        if column not in have:
            con.execute(f"ALTER TABLE {Q(name)} ADD COLUMN {Q(str(column))} {sql_type}")
            added.append(f"added column {name}.{column}")
    return added


def _record(con: Con, name: str, select: str) -> None:
    key = META_PREFIX + name
    con.execute("DELETE FROM sunarchive_meta WHERE key = %s", [key])
    con.execute("INSERT INTO sunarchive_meta VALUES (%s, %s)", [key, digest(select)])


def _meta(con: Con, key: str) -> str | None:
    row = con.execute("SELECT value FROM sunarchive_meta WHERE key = %s", [key]).fetchone()
    return None if row is None else str(row[0])


def sync(con: Con, profile: Profile, times_s: list[np.ndarray[Any, Any]]) -> None:
    """Derive the table's rows again in the seconds (UTC epoch s) a write touched, in the
    write's transaction."""
    for lo, hi in runs(times_s):
        _derive(con, profile, (lo, hi))


def runs(times_s: list[np.ndarray[Any, Any]], gap_s: int = RUN_GAP_S) -> list[tuple[int, int]]:
    """The [start, end) ranges (s) covering ``times_s``, split where two written seconds are
    more than ``gap_s`` apart (a late row of last week does not re-derive the whole week)."""
    parts = [np.asarray(t, dtype=np.int64) for t in times_s if len(t)]
    if not parts:
        return []
    stamps = np.unique(np.concatenate(parts))
    breaks = np.nonzero(np.diff(stamps) > gap_s)[0]
    starts = np.concatenate([stamps[:1], stamps[breaks + 1]])
    ends = np.concatenate([stamps[breaks], stamps[-1:]]) + 1
    return [(int(a), int(b)) for a, b in zip(starts, ends, strict=True)]


def _derive(con: Con, profile: Profile, span: tuple[int, int] | None) -> int:
    """Replace the table's rows in ``span`` ([start, end) s; None: all) by those the 1 s
    tier gives; the number of rows written."""
    name, time_column = Q(str(profile.view)), Q(profile.view_time)
    select = view_select(profile, POSTGRES)
    if span is None:
        con.execute(f"DELETE FROM {name}")
        cursor = con.execute(f"INSERT INTO {name} {select}")
        return max(cursor.rowcount, 0)
    lo, hi = span
    con.execute(f"DELETE FROM {name} WHERE {time_column} >= to_timestamp({int(lo)}) AND "
                f"{time_column} < to_timestamp({int(hi)})")
    cursor = con.execute(f"INSERT INTO {name} {select} AND time >= to_timestamp({int(lo)}) "
                         f"AND time < to_timestamp({int(hi)})")
    return max(cursor.rowcount, 0)


def retention_item(profile: Profile, one_second: dict[str, Any]) -> dict[str, Any]:
    """The retention job's config item for the table: the 1 s tier's ``one_second`` item
    (days kept and the guards that keep unmaterialized data) under the table's name, so both
    are cut at the same instant; skipped while the table is not a hypertable."""
    return {**one_second, "relation": str(profile.view), "if_hypertable": True}
