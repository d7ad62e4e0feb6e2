"""Measurements under their own name with plain field names, as InfluxDB 3's SQL shows them.

A profile that names a ``view`` (the Hoymiles profiles: ``dtu``, ``inverter``, ``port``) gets a
view over its 1 s table with one row per second that has samples (``sample_count > 0``: the
1 s rows that only carry the energy integrated between two samples are left out), so a
point written is a row read: ``time`` (``TIMESTAMPTZ``), each tag under the tag's name, and
each field under the field's name, holding the value that second stands for:

* gauge and power: ``<field>_avg`` (the mean of the second's samples; a DTU polled every
  35 s has one sample in the seconds it has any);
* counter and state: ``<field>_last`` (the last value of the second);
* flag: ``<field>_any``.

A field whose line-protocol type is ``int`` or ``uint`` comes as ``BIGINT`` (rounded), as the
upstream system wrote it. Nothing is stored twice: the view reads ``<m>_1s`` (on TimescaleDB
the hypertable), so the 1 s tier's retention is the view's.

On TimescaleDB a profile with ``view_hypertable`` gets a hypertable under that name instead,
derived from the 1 s tier (:mod:`sunarchive.storage.postgres.view_tables`).

Names: the view is ours only when ``sunarchive_meta`` records it (``plain_view:<name>``). A
relation of that name that sunarchive did not make (a table the user made, a named rollup of
a profile, a measurement's table) is left alone and wins; setup says so. A profile that
replaces the built-in ``dtu`` (profile directory) gives the view its own fields.

On plain PostgreSQL, ``time_bucket(interval, timestamptz)`` and ``time_bucket(interval,
timestamp)`` are created as TimescaleDB defines them for intervals without months (buckets
aligned to 2000-01-03 00:00 UTC, which is every hour and day boundary in UTC), so the
upstream queries' ``time_bucket(INTERVAL '1 hour', time)`` runs there too. DuckDB has its
own ``time_bucket`` with the same alignment; TimescaleDB is left with its own.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable

from sunarchive.model import FieldKind
from sunarchive.profiles.spec import FieldSpec, Profile
from sunarchive.rollup import Dialect
from sunarchive.storage.migrations import Schema

log = logging.getLogger(__name__)

META_PREFIX = "plain_view:"
"""``sunarchive_meta`` keys (``plain_view:<view>``) holding a digest of each view's SQL: the
record that the view is sunarchive's, and whether its SQL changed since."""

INTEGER_TYPES = ("int", "uint")


def field_value(spec: FieldSpec, dialect: Dialect) -> str:
    """SQL of the one value a 1 s row holds for ``spec``."""
    q = dialect.quote
    if spec.kind in (FieldKind.GAUGE, FieldKind.POWER):
        expr = q(f"{spec.stem}_avg")
    elif spec.kind in (FieldKind.COUNTER, FieldKind.STATE):
        expr = q(f"{spec.stem}_last")
    else:
        return q(f"{spec.stem}_any")
    if spec.value_type in INTEGER_TYPES and spec.kind is not FieldKind.STATE:
        return f"CAST(ROUND({expr}) AS BIGINT)"
    return expr


def integer_tag(column: str, dialect: Dialect) -> str:
    """SQL of a text tag column read as ``BIGINT``: NULL where it is not an integer of at
    most 18 digits (a query over the view never fails on one odd tag value)."""
    if dialect.name == "duckdb":
        return f"TRY_CAST({column} AS BIGINT)"
    return f"CASE WHEN {column} ~ '^[+-]?[0-9]{{1,18}}$' THEN CAST({column} AS BIGINT) END"


def tag_value(profile: Profile, tag: str, dialect: Dialect) -> str:
    """SQL of ``tag`` as the profile's view types it (``tag_types``)."""
    column = dialect.quote(profile.tag_column(tag))
    return integer_tag(column, dialect) if profile.tag_type(tag) == "int" else column


def json_object(pairs: list[tuple[str, str]], dialect: Dialect) -> str:
    """SQL of a JSON object (``JSONB`` on PostgreSQL) of (key, SQL value) pairs."""
    args = ", ".join(f"'{key}', {value}" for key, value in pairs)
    return f"json_object({args})" if dialect.name == "duckdb" else f"jsonb_build_object({args})"


def view_select(profile: Profile, dialect: Dialect) -> str:
    """The view's query: the time (``view_time``), the tags and the fields under their
    plain names, and the fields as one JSON object where the profile names ``view_json``."""
    q = dialect.quote
    alias = "time" if profile.view_time == "time" else q(profile.view_time)  # SQL as before
    cols = [f"{dialect.instant('time')} AS {alias}"]
    names = {profile.view_time.casefold(), str(profile.view_json).casefold()}
    for tag in profile.tags:
        cols.append(f"{tag_value(profile, tag, dialect)} AS {q(tag)}")
        names.add(tag.casefold())
    values = []
    for spec in profile.fields:
        if spec.name.casefold() in names:   # a tag of that name wins (InfluxDB refuses both)
            continue
        names.add(spec.name.casefold())
        values.append((spec.name, field_value(spec, dialect)))
        cols.append(f"{values[-1][1]} AS {q(spec.name)}")
    if profile.view_json is not None:
        cols.append(f"{json_object(values, dialect)} AS {q(profile.view_json)}")
    return f"SELECT {', '.join(cols)} FROM {q(profile.table('1s'))} WHERE sample_count > 0"


def create_sql(profile: Profile, dialect: Dialect) -> str:
    assert profile.view is not None
    return f"CREATE VIEW {dialect.quote(profile.view)} AS {view_select(profile, dialect)}"


def digest(sql: str) -> str:
    return hashlib.sha256(sql.encode()).hexdigest()[:32]


TIME_BUCKET_FUNCTIONS = [
    f"""CREATE OR REPLACE FUNCTION time_bucket(bucket_width INTERVAL, ts {kind})
        RETURNS {kind} LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
        $$ SELECT date_bin(bucket_width, ts, {origin}) $$"""
    for kind, origin in (("TIMESTAMPTZ", "TIMESTAMPTZ '2000-01-03 00:00:00+00'"),
                         ("TIMESTAMP", "TIMESTAMP '2000-01-03 00:00:00'"))]
"""TimescaleDB's ``time_bucket`` for intervals without months, on plain PostgreSQL."""


def claimed_names(profiles: Iterable[Profile]) -> dict[str, str]:
    """Relation names (case-folded) the profiles' own tables and named rollups take, with
    what takes them: these win over a plain view of the same name."""
    out: dict[str, str] = {}
    for p in profiles:
        for tier in ("1s", "5min", "1hour", "daily"):
            out[p.table(tier).casefold()] = f"a table of measurement {p.name!r}"
        for rollup in p.rollups:
            out[rollup.name.casefold()] = f"the named rollup of measurement {p.name!r}"
    return out


def ensure(s: Schema, layout: str | None) -> list[str]:
    """Create the plain views of ``s.profiles`` whose 1 s table exists, replace those whose
    SQL changed, leave other relations of those names alone; on the plain PostgreSQL layout
    create ``time_bucket``. ``layout``: ``plain``, ``timescaledb`` or None (DuckDB, or a
    PostgreSQL store that has not chosen yet: no functions). Idempotent; returns what
    changed."""
    changes: list[str] = []
    if s.postgres and layout == "plain":
        exists = s.fetch("SELECT to_regprocedure('time_bucket(interval, timestamptz)') "
                         "IS NOT NULL", None)
        for statement in TIME_BUCKET_FUNCTIONS:
            s.execute(statement, None)
        if not exists[0][0]:
            changes.append("created function time_bucket(interval, timestamptz) (plain "
                           "PostgreSQL)")
    wanted = [p for p in s.profiles if p.view is not None
              and not (p.view_hypertable and layout == "timescaledb")]   # view_tables
    if not wanted:
        return changes
    claimed = claimed_names(s.profiles)
    kinds = {str(name).casefold(): str(kind) for name, kind in s.fetch(
        "SELECT table_name, table_type FROM information_schema.tables "
        "WHERE table_schema = current_schema()", None)}
    p = s.p
    recorded = {str(k): str(v) for k, v in s.fetch(
        f"SELECT key, value FROM sunarchive_meta WHERE starts_with(key, {p})", [META_PREFIX])}
    for profile in wanted:
        name = str(profile.view)
        folded = name.casefold()
        key = META_PREFIX + name
        if profile.table("1s").casefold() not in kinds:
            continue   # no tables yet (a migration step before setup made them)
        if folded in claimed:
            _skip(changes, name, claimed[folded])
            continue
        ours = key in recorded
        if folded in kinds and not ours:
            _skip(changes, name, f"a {kinds[folded].lower()} sunarchive did not make")
            continue
        sql = create_sql(profile, s.dialect)
        if ours and folded in kinds and recorded[key] == digest(sql):
            continue
        if folded in kinds:
            s.execute(f"DROP VIEW {s.dialect.quote(name)}", None)
        s.execute(sql, None)
        s.execute(f"DELETE FROM sunarchive_meta WHERE key = {p}", [key])
        s.execute(f"INSERT INTO sunarchive_meta VALUES ({p}, {p})", [key, digest(sql)])
        what = "replaced" if folded in kinds else "created"
        changes.append(f"{what} view {name} ({profile.table('1s')} with plain field names)")
    return changes


def _skip(changes: list[str], name: str, holder: str) -> None:
    note = f"left {name} alone: the name is {holder}; no plain view {name}"
    log.warning(note)
    changes.append(note)
