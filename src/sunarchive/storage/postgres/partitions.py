"""Plain PostgreSQL layout: ``<m>_1s`` range-partitioned by time, rollup tables beside it
(``<m>_<tier>_materialized``, read through the views of :mod:`sunarchive.storage.tier_views`).

Partitions are aligned to the profile's chunk interval (counted from the Unix epoch, UTC),
named ``<table>_pYYYYMMDDHHMM`` after their start, created ahead of the data, and retention
drops whole partitions — the same unit TimescaleDB drops (a chunk).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import psycopg

from sunarchive.model import ConfigError
from sunarchive.profiles.spec import Profile
from sunarchive.profiles.sql_names import index_name
from sunarchive.rollup import POSTGRES, ROLLUP_TIERS
from sunarchive.storage.migrations import materialized_table
from sunarchive.storage.postgres.schema import add_missing_columns, column_defs, relation_kind

Q = POSTGRES.quote
UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 604800}
AHEAD = 2
"""Partitions kept ready beyond the current one."""
BRIN_PAGES_PER_RANGE = 32
"""Heap pages one BRIN summary covers (≈ 1 000 PS100 rows): a read of the newest ten minutes
scans a few ranges, not the day. ``autosummarize`` lets autovacuum summarize each range as
soon as the next one starts; pages not yet summarized are always read."""
Con = psycopg.Connection[tuple[object, ...]]


def interval_seconds(text: str) -> int:
    """Seconds of an interval written like ``1 day``, ``7 days`` or ``1 week``."""
    match = re.fullmatch(r"\s*(\d+)\s*(second|minute|hour|day|week)s?\s*", text)
    if not match:
        raise ConfigError(f"chunk_interval {text!r}: write e.g. '1 day' or '1 week'")
    return int(match.group(1)) * UNIT_SECONDS[match.group(2)]


def partition_name(table: str, start_s: int) -> str:
    return f"{table}_p{datetime.fromtimestamp(start_s, UTC):%Y%m%d%H%M}"


def create_plain_layout(con: Con, profile: Profile) -> list[str]:
    """Create or upgrade the partitioned 1 s table and the rollup tables of one profile."""
    changes: list[str] = []
    raw = profile.table("1s")
    kind = relation_kind(con, raw)
    if kind is None:
        con.execute(f"CREATE TABLE {Q(raw)} ({column_defs(profile, '1s')}) "
                    "PARTITION BY RANGE (time)")
        brin = index_name(raw, "_time_brin")
        con.execute(f"CREATE INDEX {Q(brin)} ON {Q(raw)} USING brin (time) "
                    f"WITH (pages_per_range = {BRIN_PAGES_PER_RANGE}, autosummarize = on)")
        changes.append(f"created partitioned table {raw}")
    elif kind != "p":
        raise ConfigError(f"table {raw} exists but is not partitioned; it was not made by "
                          "sunarchive's plain PostgreSQL layout")
    else:
        changes.extend(add_missing_columns(con, profile, "1s"))
    for tier in ROLLUP_TIERS:
        table = materialized_table(profile, tier)
        if relation_kind(con, table) is None:
            con.execute(f"CREATE TABLE {Q(table)} ({column_defs(profile, tier)})")
            con.execute(f"CREATE INDEX {Q(index_name(table, '_time'))} ON {Q(table)} "
                        "(time, series_id)")
            changes.append(f"created table {table}")
        else:
            changes.extend(add_missing_columns(con, profile, tier, table))
    return changes


def table_bytes(con: Con, name: str) -> int:
    """Bytes on disk of a tier: a table with its partitions, or a table on its own."""
    row = con.execute("SELECT COALESCE((SELECT SUM(pg_total_relation_size(relid)) FROM "
                      "pg_partition_tree(%s::regclass)), pg_total_relation_size(%s::regclass))",
                      [Q(name), Q(name)]).fetchone()
    return 0 if row is None or row[0] is None else int(str(row[0]))


class Partitions:
    """Knows which partitions of each 1 s table exist; creates and drops them."""

    def __init__(self) -> None:
        self._known: dict[str, set[int]] = {}

    def load(self, con: Con, profile: Profile) -> None:
        table = profile.table("1s")
        # the store's own schema: another store of the same profiles in another schema of
        # the database has tables of the same names (and partitions of the same days)
        rows = con.execute("SELECT c.relname FROM pg_inherits i JOIN pg_class c "
                           "ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent "
                           "WHERE p.relname = %s AND p.relnamespace = "
                           "current_schema()::regnamespace", [table]).fetchall()
        starts = set()
        for (name,) in rows:
            stamp = str(name)[len(table) + 2:]
            if str(name).startswith(table + "_p") and stamp.isdigit():
                starts.add(int(datetime.strptime(stamp, "%Y%m%d%H%M")
                               .replace(tzinfo=UTC).timestamp()))
        self._known[table] = starts

    def forget(self) -> None:
        """What the server holds is unknown now (a transaction that created partitions was
        rolled back, a connection was lost): each table's list is read again when needed."""
        self._known.clear()

    def _starts(self, con: Con, profile: Profile) -> set[int]:
        table = profile.table("1s")
        if table not in self._known:
            self.load(con, profile)
        return self._known[table]

    def ensure(self, con: Con, profile: Profile, first_s: int, last_s: int) -> list[str]:
        """Partitions covering [first_s, last_s] exist afterwards; returns the ones created."""
        table = profile.table("1s")
        step = interval_seconds(profile.chunk_interval)
        known = self._starts(con, profile)
        created = []
        start = first_s - first_s % step
        while start <= last_s:
            if start not in known:
                name = partition_name(table, start)
                con.execute(f"CREATE TABLE IF NOT EXISTS {Q(name)} PARTITION OF {Q(table)} "
                            f"FOR VALUES FROM ({POSTGRES.timestamp(start)}) "
                            f"TO ({POSTGRES.timestamp(start + step)})")
                known.add(start)
                created.append(name)
            start += step
        return created

    def ensure_ahead(self, con: Con, profile: Profile, now_s: int) -> list[str]:
        step = interval_seconds(profile.chunk_interval)
        return self.ensure(con, profile, now_s, now_s + AHEAD * step)

    def drop_before(self, con: Con, profile: Profile, cutoff_s: int) -> int:
        """Drop partitions that end at or before ``cutoff_s``; returns the rows they held."""
        table = profile.table("1s")
        step = interval_seconds(profile.chunk_interval)
        known = self._starts(con, profile)
        dropped = 0
        for start in sorted(s for s in known if s + step <= cutoff_s):
            name = partition_name(table, start)
            row = con.execute(f"SELECT COUNT(*) FROM {Q(name)}").fetchone()
            dropped += int(str(row[0])) if row else 0
            con.execute(f"DROP TABLE {Q(name)}")
            known.discard(start)
        return dropped

    def listing(self, con: Con, profile: Profile) -> list[dict[str, object]]:
        """Partitions of the 1 s table with their range and size, oldest first."""
        table = profile.table("1s")
        step = interval_seconds(profile.chunk_interval)
        out: list[dict[str, object]] = []
        for start in sorted(self._starts(con, profile)):
            name = partition_name(table, start)
            row = con.execute("SELECT pg_total_relation_size(%s::regclass)", [Q(name)]
                              ).fetchone()
            out.append({"chunk": name, "range_start": datetime.fromtimestamp(start, UTC),
                        "range_end": datetime.fromtimestamp(start + step, UTC),
                        "bytes": int(str(row[0])) if row else 0, "compressed": False})
        return out
