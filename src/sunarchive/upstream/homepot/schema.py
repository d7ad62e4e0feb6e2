"""Making and keeping HOMEPOT's relations: schema step 7 and every ``setup`` after it.

What is sunarchive's is recorded in ``sunarchive_meta`` (``homepot_view:<name>`` with a
digest of the view's SQL, ``homepot_functions`` with one of the functions'), so a view or
the functions are replaced only when their SQL changed, and a relation of the same name
that sunarchive did not make is left alone (setup says so). One exception: the views
``device_metrics_hourly`` … of stores before step 7 were the profile's named rollups (columns
``cpu_percent_avg`` …); those are sunarchive's and are replaced.
"""

from __future__ import annotations

import hashlib
import logging

from sunarchive.storage.migrations import Schema
from sunarchive.upstream.homepot import functions, metrics, registry

log = logging.getLogger(__name__)

MEASUREMENT = "health_checks"
VIEW_PREFIX = "homepot_view:"
FUNCTIONS_KEY = "homepot_functions"
OLD_ROLLUP_COLUMN = "cpu_percent_avg"
"""A column the named rollups of the old profile had and the document's views do not."""


def digest(sql: str) -> str:
    return hashlib.sha256(sql.encode()).hexdigest()[:32]


def ensure(s: Schema, layout: str | None) -> list[str]:
    """Registries, views (once the tables of ``health_checks`` exist) and, on the plain
    PostgreSQL layout, ``first``/``last``. Idempotent; returns what changed."""
    changes = registry.create(s)
    if s.postgres and layout == "plain":
        changes += _functions(s)
    profile = next((p for p in s.profiles if p.name == MEASUREMENT), None)
    if profile is None or not metrics.usable(profile):
        return changes
    if not s.has_table(profile.table("1hour")) or not s.has_table(profile.table("daily")):
        return changes   # tables not made yet: setup makes them, then calls this again
    for name in metrics.VIEWS:
        changes += _view(s, name, metrics.view_sql(name, profile, s.dialect))
    return changes


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


def _view(s: Schema, name: str, select: str) -> list[str]:
    key = VIEW_PREFIX + name
    kind = s.table_type(name)
    recorded = _recorded(s, key)
    if kind is not None and recorded is None and not _old_rollup(s, name, kind):
        note = f"left {name} alone: a {kind.lower()} sunarchive did not make; no HOMEPOT view"
        log.warning(note)
        return [note]
    if kind is not None and recorded == digest(select):
        return []
    if kind is not None:
        s.execute(f"DROP VIEW {s.dialect.quote(name)}", None)
    s.execute(f"CREATE VIEW {s.dialect.quote(name)} AS {select}", None)
    _record(s, key, digest(select))
    return [f"{'replaced' if kind else 'created'} view {name} (HOMEPOT's columns, merged from "
            f"{MEASUREMENT}'s rollups)"]


def _old_rollup(s: Schema, name: str, kind: str) -> bool:
    """Is ``name`` the named-rollup view the ``health_checks`` profile had before step 7?"""
    if kind != "VIEW":
        return False
    rows = s.fetch("SELECT 1 FROM information_schema.columns WHERE table_name = "
                   f"{s.p} AND column_name = {s.p} AND table_schema = current_schema()",
                   [name, OLD_ROLLUP_COLUMN])
    return bool(rows)
