"""Making and keeping HOMEPOT's relations: schema step 7 and every ``setup`` after it.

On DuckDB and plain PostgreSQL ``device_metrics_hourly``, ``device_metrics_daily`` and
``site_metrics_hourly`` are views over the tiers' views; on TimescaleDB they are continuous
aggregates (real-time) on the tiers' continuous aggregates ``health_checks_1hour`` and
``health_checks_daily``, with the document's refresh policies (hourly; every 6 hours for the
daily one), never materializing an open bucket; sunarchive's own refreshes of the tiers
refresh them too (:func:`sunarchive.storage.postgres.timescale.refresh`).

What is sunarchive's is recorded in ``sunarchive_meta`` (``homepot_view:<name>`` with a
digest of the relation's SQL, ``homepot_functions`` with one of the functions'), so a
relation or the functions are replaced only when their SQL changed, and a relation of the
same name that sunarchive did not make is left alone (setup says so). One exception: the
views ``device_metrics_hourly`` … of stores before step 7 were the profile's named rollups
(columns ``cpu_percent_avg`` …); those are sunarchive's and are replaced.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from sunarchive.storage.migrations import Schema
from sunarchive.upstream.homepot import functions, metrics, registry

log = logging.getLogger(__name__)

MEASUREMENT = "health_checks"
VIEW_PREFIX = "homepot_view:"
FUNCTIONS_KEY = "homepot_functions"
OLD_ROLLUP_COLUMN = "cpu_percent_avg"
"""A column the named rollups of the old profile had and the document's views do not."""
POLICIES = {  # aggregate: (start_offset, end_offset, schedule_interval), as the document says
    "device_metrics_hourly": ("3 days", "1 hour", "1 hour"),
    "device_metrics_daily": ("8 days", "1 day", "6 hours"),
    "site_metrics_hourly": ("3 days", "1 hour", "1 hour"),
}


@dataclass(frozen=True)
class Layout:
    """Where the relations go: ``layout`` ``plain``, ``timescaledb`` or None (DuckDB, or a
    PostgreSQL store before it chose); ``zone``: the site's IANA zone (daily buckets; None
    when unknown: TimescaleDB's aggregates wait for setup, which knows it)."""

    layout: str | None
    zone: str | None = None
    policies: bool = True

    @property
    def timescale(self) -> bool:
        return self.layout == "timescaledb"


def digest(sql: str) -> str:
    return hashlib.sha256(sql.encode()).hexdigest()[:32]


def ensure(s: Schema, where: Layout) -> list[str]:
    """Registries, the three relations (once the tables of ``health_checks`` exist) and, on
    the plain PostgreSQL layout, ``first``/``last``. Idempotent; returns what changed."""
    changes = registry.create(s)
    if s.postgres and where.layout == "plain":
        changes += _functions(s)
    profile = next((p for p in s.profiles if p.name == MEASUREMENT), None)
    if profile is None or not metrics.usable(profile):
        return changes
    if not s.has_table(profile.table("1hour")) or not s.has_table(profile.table("daily")):
        return changes   # tables not made yet: setup makes them, then calls this again
    if where.timescale and where.zone is None:
        return changes
    for name, tier in metrics.VIEWS.items():
        select = metrics.view_sql(name, profile, s.dialect, _bucket(tier, where))
        changes += _relation(s, name, select, where)
    return changes


def _bucket(tier: str, where: Layout) -> str:
    """SQL of a row's bucket: the tier row's own time, or (a continuous aggregate) the
    tier's bucket of it."""
    if not where.timescale:
        return "time"
    if tier == "daily":
        zone = str(where.zone).replace("'", "''")
        return f"time_bucket(INTERVAL '1 day', time, '{zone}')"
    return "time_bucket(INTERVAL '1 hour', time)"


def _recorded(s: Schema, key: str) -> str | None:
    rows = s.fetch(f"SELECT value FROM sunarchive_meta WHERE key = {s.p}", [key])
    return str(rows[0][0]) if rows else None


def _record(s: Schema, key: str, value: str) -> None:
    s.execute(f"DELETE FROM sunarchive_meta WHERE key = {s.p}", [key])
    s.execute(f"INSERT INTO sunarchive_meta VALUES ({s.p}, {s.p})", [key, value])


def _functions(s: Schema) -> list[str]:
    statements = functions.statements()
    sql_digest = digest(";".join(statements))
    if _recorded(s, FUNCTIONS_KEY) == sql_digest:
        return []
    for statement in statements:
        s.execute(statement, None)
    _record(s, FUNCTIONS_KEY, sql_digest)
    return ["created aggregates first(value, time) and last(value, time) (plain PostgreSQL)"]


def _relation(s: Schema, name: str, select: str, where: Layout) -> list[str]:
    """Create or replace one relation, unless the name is someone else's."""
    key = VIEW_PREFIX + name
    kind = s.table_type(name)
    policy = POLICIES[name] if where.timescale and where.policies else None
    wanted = digest(f"{select};{where.timescale};{policy}")
    recorded = _recorded(s, key)
    if kind is not None and recorded is None and not _old_rollup(s, name, kind):
        note = f"left {name} alone: a {kind.lower()} sunarchive did not make; no HOMEPOT view"
        log.warning(note)
        return [note]
    if kind is not None and recorded == wanted:
        return []
    if kind is not None:
        s.execute(f"DROP {_kind_word(s, name)} {s.dialect.quote(name)}", None)
    what = _create(s, name, select, where.timescale, policy)
    _record(s, key, wanted)
    return [f"{'replaced' if kind else 'created'} {what} {name} (HOMEPOT's columns, merged "
            f"from {MEASUREMENT}'s rollups)"]


def _create(s: Schema, name: str, select: str, timescale: bool,
            policy: tuple[str, str, str] | None) -> str:
    q = s.dialect.quote(name)
    if not timescale:
        s.execute(f"CREATE VIEW {q} AS {select}", None)
        return "view"
    s.execute(f"CREATE MATERIALIZED VIEW {q} WITH (timescaledb.continuous, "
              f"timescaledb.materialized_only = false) AS {select} WITH NO DATA", None)
    if policy is not None:
        s.execute("SELECT add_continuous_aggregate_policy(%s::regclass, start_offset => "
                  "%s::INTERVAL, end_offset => %s::INTERVAL, schedule_interval => "
                  "%s::INTERVAL)", [q, *policy])
    return "continuous aggregate"


def _kind_word(s: Schema, name: str) -> str:
    """``MATERIALIZED VIEW`` for a continuous aggregate, else ``VIEW``."""
    if not s.postgres or not s.fetch("SELECT 1 FROM pg_extension WHERE extname = "
                                     "'timescaledb'", None):
        return "VIEW"
    rows = s.fetch("SELECT 1 FROM timescaledb_information.continuous_aggregates "
                   "WHERE view_name = %s AND view_schema = current_schema()", [name])
    return "MATERIALIZED VIEW" if rows else "VIEW"


def _old_rollup(s: Schema, name: str, kind: str) -> bool:
    """Is ``name`` the named-rollup view the ``health_checks`` profile had before step 7?"""
    if kind != "VIEW":
        return False
    rows = s.fetch("SELECT 1 FROM information_schema.columns WHERE table_name = "
                   f"{s.p} AND column_name = {s.p} AND table_schema = current_schema()",
                   [name, OLD_ROLLUP_COLUMN])
    return bool(rows)


def aggregate_names() -> tuple[str, ...]:
    """The relations that are continuous aggregates on TimescaleDB."""
    return tuple(metrics.VIEWS)
