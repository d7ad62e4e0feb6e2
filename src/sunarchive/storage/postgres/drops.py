"""Ranges whose chunks were dropped while the rollups keep what was computed from them
(TimescaleDB).

Dropping chunks marks their range as changed inside TimescaleDB: a refresh of that range
recomputes the aggregates reading the dropped relation from nothing and deletes their rows
(one late sample there replaced a 5-minute bucket of every panel and changed the day's total).
Two kinds of drop are known here:

* sunarchive's retention job records its horizon in ``sunarchive_retained``: everything of a
  tier relation before it;
* any other drop (an operator's ``drop_chunks`` by hand, whole or in the middle) is found in
  TimescaleDB's catalog by :func:`detect`: a range of a source relation (``<m>_1s`` for the
  5-minute aggregate, the 5-minute aggregate's materialized hypertable for the hourly and daily
  ones) that no chunk covers, where the aggregate reading it holds materialized rows: their
  source is gone. It is recorded in ``sunarchive_dropped`` from the start of the first to the
  end of the last bucket the aggregate holds in that gap, so it stays known after a later
  write makes a chunk there again. A gap where the aggregate holds nothing (never written, or
  dropped before it was materialized) is not recorded: backfill there works as before.

A refresh of a tier skips every bucket that overlaps a range dropped from that tier or from a
tier it is computed from (:func:`refreshable`); the writer refuses 1 s rows inside a range
dropped from ``<m>_1s`` (:func:`raw_dropped`). To rebuild a range after restoring its raw data,
delete its rows from ``sunarchive_dropped`` (and ``sunarchive_retained``) first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from sunarchive.model import ConfigError
from sunarchive.profiles.spec import Profile
from sunarchive.rollup import POSTGRES, TIER_SOURCE, coalesce_ranges, tier_floor, tier_next

Q = POSTGRES.quote
Con = psycopg.Connection[tuple[Any, ...]]
Range = tuple[int, int]
"""[lo, hi) in UTC epoch seconds."""
FAR_PAST_S = -(2**62)
"""The start of a retention horizon's range: everything before the horizon."""

RETAINED_TABLE = """CREATE TABLE IF NOT EXISTS sunarchive_retained (
    relation TEXT PRIMARY KEY, dropped_before TIMESTAMPTZ NOT NULL)"""
"""Per tier relation: the retention job dropped its chunks before this instant."""
DROPPED_TABLE = """CREATE TABLE IF NOT EXISTS sunarchive_dropped (
    relation TEXT NOT NULL, dropped_from TIMESTAMPTZ NOT NULL,
    dropped_to TIMESTAMPTZ NOT NULL, PRIMARY KEY (relation, dropped_from))"""
"""Per tier relation: ranges [dropped_from, dropped_to) whose chunks were dropped by something
else than the retention job while an aggregate reading them held rows (:func:`detect`);
coalesced, so ranges of one relation never overlap or touch."""

HYPERTABLE_SQL = """
    SELECT h.schema_name, h.table_name FROM _timescaledb_catalog.hypertable h
    WHERE h.id = COALESCE(
        (SELECT ca.mat_hypertable_id FROM _timescaledb_catalog.continuous_agg ca
          WHERE ca.user_view_schema = current_schema() AND ca.user_view_name = %(name)s),
        (SELECT id FROM _timescaledb_catalog.hypertable
          WHERE schema_name = current_schema() AND table_name = %(name)s))"""
"""(schema, name) of a hypertable, or of a continuous aggregate's materialized one."""
CHUNKS_NEAR_SQL = """
    WITH c AS (SELECT range_start, range_end FROM timescaledb_information.chunks
               WHERE hypertable_schema = %(schema)s AND hypertable_name = %(name)s)
    SELECT * FROM (
        SELECT * FROM c WHERE range_end > %(lo)s AND range_start < %(hi)s
        UNION ALL (SELECT * FROM c WHERE range_end <= %(lo)s ORDER BY range_end DESC LIMIT 1)
        UNION ALL (SELECT * FROM c WHERE range_start >= %(hi)s ORDER BY range_start LIMIT 1)
    ) near ORDER BY range_start"""
"""The chunks overlapping [lo, hi) and the nearest one on each side: enough to know the whole
extent of every gap between chunks that reaches into the window."""


def detect(con: Con, profile: Profile, tz: ZoneInfo, lo_s: int, hi_s: int) -> None:
    """Record the dropped ranges of ``profile``'s tier relations that reach into
    [lo_s, hi_s) (UTC epoch s), whole, for every aggregate and the relation it reads."""
    if hi_s <= lo_s:
        return
    for tier, source in TIER_SOURCE.items():
        found = _orphaned(con, profile, tier, source, tz, lo_s, hi_s)
        if found:
            _record(con, profile.table(source), found)


def _orphaned(con: Con, profile: Profile, tier: str, source: str, tz: ZoneInfo,
              lo_s: int, hi_s: int) -> list[Range]:
    """The parts of gaps in ``source``'s chunks reaching into [lo_s, hi_s) from which
    ``tier``'s aggregate holds materialized rows."""
    source_schema, source_name = _hypertable(con, profile.table(source))
    schema, name = _hypertable(con, profile.table(tier))
    pair = Pair(tier, f"{Q(schema)}.{Q(name)}", f"{Q(source_schema)}.{Q(source_name)}", tz)
    found = []
    for gap_lo, gap_hi in _gaps(con, source_schema, source_name, lo_s, hi_s):
        inner = _inner_rows(con, pair, gap_lo, gap_hi)
        if inner is not None:
            found.append(inner)
        found.extend(_orphaned_edges(con, pair, gap_lo, gap_hi))
    return found


@dataclass(frozen=True)
class Pair:
    """An aggregate's tier, its materialized hypertable and the hypertable it reads."""

    tier: str
    materialized: str
    source: str
    tz: ZoneInfo


def _inner_rows(con: Con, pair: Pair, gap_lo: int | None, gap_hi: int | None
                ) -> Range | None:
    """From the first to the end of the last bucket held wholly inside the gap (None: no
    such row). Their source was there and is gone."""
    lo = None if gap_lo is None else _bucket_from(pair, gap_lo)
    hi = None if gap_hi is None else tier_floor(pair.tier, gap_hi, pair.tz)
    if lo is not None and hi is not None and hi <= lo:
        return None
    first, last = con.execute(
        f"SELECT EXTRACT(EPOCH FROM MIN(time))::BIGINT, EXTRACT(EPOCH FROM MAX(time))::BIGINT "
        f"FROM {pair.materialized} WHERE time >= COALESCE(%s::TIMESTAMPTZ, '-infinity') "
        "AND time < COALESCE(%s::TIMESTAMPTZ, 'infinity')",
        [None if lo is None else _utc(lo), None if hi is None else _utc(hi)]).fetchall()[0]
    if first is None:
        return None
    return int(first), tier_next(pair.tier, int(last), pair.tz)


def _bucket_from(pair: Pair, instant_s: int) -> int:
    """Start of the first bucket starting at or after ``instant_s``."""
    floor = tier_floor(pair.tier, instant_s, pair.tz)
    return floor if floor == instant_s else tier_next(pair.tier, floor, pair.tz)


def _orphaned_edges(con: Con, pair: Pair, gap_lo: int | None, gap_hi: int | None
                    ) -> list[Range]:
    """The gap's part of a bucket reaching over one of its edges (a local day over a UTC
    chunk boundary), when the bucket counts more samples than its source still holds: the
    rest came from the dropped part. (Such a bucket whose dropped part had no data is not
    orphaned: the first local day of a store, before its first chunk.)"""
    starts = {tier_floor(pair.tier, edge, pair.tz) for edge in (gap_lo, gap_hi)
              if edge is not None and tier_floor(pair.tier, edge, pair.tz) != edge}
    found = []
    for start in sorted(starts):
        end = tier_next(pair.tier, start, pair.tz)
        lost = con.execute(
            f"SELECT EXISTS (SELECT 1 FROM {pair.materialized} a WHERE a.time = %(lo)s AND "
            f"a.sample_count > COALESCE((SELECT SUM(s.sample_count) FROM {pair.source} s "
            "WHERE s.series_id = a.series_id AND s.time >= %(lo)s AND s.time < %(hi)s), 0))",
            {"lo": _utc(start), "hi": _utc(end)}).fetchall()[0][0]
        if lost:
            found.append((start if gap_lo is None else max(start, gap_lo),
                          end if gap_hi is None else min(end, gap_hi)))
    return found


def _hypertable(con: Con, relation: str) -> tuple[str, str]:
    row = con.execute(HYPERTABLE_SQL, {"name": relation}).fetchone()
    if row is None:
        raise ConfigError(f"{relation} is neither a hypertable nor a continuous aggregate; "
                          "run `sunarchive create-aggregates`")
    return str(row[0]), str(row[1])


def _gaps(con: Con, schema: str, name: str, lo_s: int, hi_s: int
          ) -> list[tuple[int | None, int | None]]:
    """Whole gaps between the chunks of a hypertable that reach into [lo_s, hi_s); None for
    no end (before the first chunk, after the last one)."""
    chunks = [(int(a.timestamp()), int(b.timestamp())) for a, b in con.execute(
        CHUNKS_NEAR_SQL, {"schema": schema, "name": name, "lo": _utc(lo_s),
                          "hi": _utc(hi_s)}).fetchall()]
    edges: list[int | None] = [None]
    for start, end in chunks:
        edges.extend((start, end))
    edges.append(None)
    gaps = list(zip(edges[0::2], edges[1::2], strict=True))
    return [(a, b) for a, b in gaps
            if (a is None or b is None or a < b)
            and (a is None or a < hi_s) and (b is None or b > lo_s)]


def _record(con: Con, relation: str, found: list[Range]) -> None:
    """Add ranges to ``sunarchive_dropped`` for ``relation``, coalesced with those known."""
    with con.transaction():
        con.execute("LOCK TABLE sunarchive_dropped IN SHARE ROW EXCLUSIVE MODE")
        known = _recorded(con, relation)
        merged = coalesce_ranges(known + found)
        if merged == known:
            return
        con.execute("DELETE FROM sunarchive_dropped WHERE relation = %s", [relation])
        with con.cursor() as cur:
            cur.executemany("INSERT INTO sunarchive_dropped VALUES (%s, %s, %s)",
                            [(relation, _utc(lo), _utc(hi)) for lo, hi in merged])


def _recorded(con: Con, relation: str) -> list[Range]:
    rows = con.execute("SELECT EXTRACT(EPOCH FROM dropped_from)::BIGINT, "
                       "EXTRACT(EPOCH FROM dropped_to)::BIGINT FROM sunarchive_dropped "
                       "WHERE relation = %s", [relation]).fetchall()
    return coalesce_ranges([(int(a), int(b)) for a, b in rows])


def dropped_ranges(con: Con, relations: list[str]) -> list[Range]:
    """Everything known dropped from any of ``relations``, coalesced: the retention
    horizons (from :data:`FAR_PAST_S`) and the recorded ranges (one query)."""
    rows = con.execute("SELECT NULL::BIGINT, EXTRACT(EPOCH FROM dropped_before)::BIGINT FROM "
                       "sunarchive_retained WHERE relation = ANY(%(r)s) UNION ALL "
                       "SELECT EXTRACT(EPOCH FROM dropped_from)::BIGINT, "
                       "EXTRACT(EPOCH FROM dropped_to)::BIGINT FROM sunarchive_dropped "
                       "WHERE relation = ANY(%(r)s)", {"r": relations}).fetchall()
    return coalesce_ranges([(FAR_PAST_S if a is None else int(a), int(b)) for a, b in rows])


def has_chunks(con: Con, relation: str, lo_s: int, hi_s: int) -> bool:
    """Does a chunk of ``relation`` (hypertable or aggregate) overlap [lo_s, hi_s)?"""
    schema, name = _hypertable(con, relation)
    row = con.execute("SELECT EXISTS (SELECT 1 FROM timescaledb_information.chunks WHERE "
                      "hypertable_schema = %s AND hypertable_name = %s AND range_end > %s "
                      "AND range_start < %s)", [schema, name, _utc(lo_s), _utc(hi_s)]
                      ).fetchone()
    return row is not None and bool(row[0])


def raw_dropped(con: Con, profile: Profile, tz: ZoneInfo, lo_s: int, hi_s: int,
                look: bool = True) -> list[Range]:
    """The ranges dropped from ``<m>_1s`` that overlap [lo_s, hi_s), whole; ``look``:
    :func:`detect` drops made by hand first (a catalog query; the writer skips it for live
    rows, which no drop reaches that the 5-minute policy would not recompute anyway)."""
    if look:
        detect(con, profile, tz, lo_s, hi_s)
    return [(a, b) for a, b in dropped_ranges(con, [profile.table("1s")])
            if a < hi_s and b > lo_s]


def refreshable(con: Con, profile: Profile, tier: str, lo_s: int, hi_s: int,
                tz: ZoneInfo) -> list[Range]:
    """The parts of [lo_s, hi_s) (bucket-aligned) that a refresh of ``tier`` may cover: every
    bucket overlapping a range dropped from the tier or any tier it is computed from is left
    out (its rows would be recomputed from nothing)."""
    chain = [tier]
    while chain[-1] in TIER_SOURCE:
        chain.append(TIER_SOURCE[chain[-1]])
    kept_out = []
    for a, b in dropped_ranges(con, [profile.table(t) for t in chain]):
        a, b = max(a, lo_s), min(b, hi_s)
        if a < b:
            kept_out.append((tier_floor(tier, a, tz),
                             tier_next(tier, tier_floor(tier, b - 1, tz), tz)))
    return outside(lo_s, hi_s, coalesce_ranges(kept_out))


def outside(lo_s: int, hi_s: int, ranges: list[Range]) -> list[Range]:
    """[lo_s, hi_s) without ``ranges`` (sorted, not overlapping)."""
    parts, at = [], lo_s
    for a, b in ranges:
        if a > at:
            parts.append((at, min(a, hi_s)))
        at = max(at, b)
    if at < hi_s:
        parts.append((at, hi_s))
    return [(a, b) for a, b in parts if a < b]


def describe(ranges: list[Range]) -> str:
    """'before X', 'from X to Y', joined with commas (ISO 8601 UTC)."""
    return ", ".join(f"before {_iso(b)}" if a == FAR_PAST_S else f"from {_iso(a)} to {_iso(b)}"
                     for a, b in ranges)


def _iso(seconds: int) -> str:
    return _utc(seconds).isoformat()


def _utc(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)
