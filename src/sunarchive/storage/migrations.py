"""Numbered schema changes of the bookkeeping tables, written once for both engines.

Each step has a version; ``sunarchive_schema_changes(version, applied_at)`` records the steps a
store has had. ``setup`` (and every start of a writer) applies the missing steps in order, each
in one transaction with its record, so a crash between steps resumes at the next one. A store
that records a version above :data:`CURRENT_VERSION` was changed by a newer sunarchive: it is
not opened (:class:`StoreTooNewError`), readers included. The model is Home Assistant's recorder
(``SCHEMA_VERSION`` and ``schema_changes``), with steps as small functions.

Version 0 is a store from before numbered migrations (no ``sunarchive_schema_changes``; its
``sunarchive_meta`` said ``schema_version = 1`` whatever it held) or an empty database; version 1
is the layout of the release that introduced them. Step 1 is idempotent, so it brings either
to version 1 without changing data: it creates what is missing and records the newest stored
second for PostgreSQL stores made before ``sunarchive_newest`` existed.

Measurement tables (``<m>_<tier>``) are not versioned here: they follow the profiles, created
or grown by ``setup`` (and the TimescaleDB layout adds its hypertables, aggregates and
policies on top of the PostgreSQL steps). Step 2 renames the rollup tables the program
maintains (DuckDB, plain PostgreSQL) to ``<m>_<tier>_materialized``; ``setup`` then makes
views under the old names that add the open buckets (:mod:`sunarchive.storage.tier_views`),
and renames the tables of profiles it meets later (stored ones) the same way. Step 3 makes
the views with plain field names that profiles name (``dtu``, ``inverter``, ``port``) over
existing 1 s tables, and ``time_bucket`` on plain PostgreSQL
(:mod:`sunarchive.storage.plain_views`); ``setup`` makes them for tables it creates later.
Step 4 creates GoodWe's plan tables (:mod:`sunarchive.upstream.goodwe.tables`). Step 5 adds
PS100's own tables and views (:mod:`sunarchive.upstream.ps100`), and the view with the
document's columns of ``ps100_readings_1s`` in the upstream schema
(:mod:`sunarchive.upstream.ps100_view`); no stored row changes.
Step 6 makes the Perocube registries (:mod:`sunarchive.upstream.perocube.tables`).
Step 7 makes HOMEPOT's relations
(:mod:`sunarchive.upstream.homepot`): the ``health_checks`` view, the registries, the
document's aggregate views (replacing the named rollups the profile had) and, on plain
PostgreSQL, ``first``/``last``; ``setup`` makes them for stores whose tables come later.

A store records each step it had, and :func:`migrate` applies every step it has not recorded,
in order, so a step numbered below one a store already had still runs (two branches may have
added steps side by side).

To add a step: append ``Step(CURRENT_VERSION + 1, "what it does", function)`` to
:data:`STEPS`, write it with :class:`Schema`'s spellings so it runs on both engines, and test it
on the stores in ``tests/data`` (``tests/test_migrations.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sunarchive.errors import StoreTooNewError
from sunarchive.profiles.spec import Profile
from sunarchive.profiles.sql_names import index_name
from sunarchive.rollup import ROLLUP_TIERS, Dialect

CHANGES_TABLE = "sunarchive_schema_changes"


@dataclass(frozen=True)
class Schema:
    """What a step works with: the writer connection of either engine."""

    dialect: Dialect
    execute: Callable[[str, Sequence[Any] | None], int]
    fetch: Callable[[str, Sequence[Any] | None], list[tuple[Any, ...]]]
    transaction: Callable[[], AbstractContextManager[None]]
    profiles: Sequence[Profile]
    location: str

    @property
    def postgres(self) -> bool:
        return self.dialect.name != "duckdb"

    @property
    def text(self) -> str:
        """Column type of text."""
        return "TEXT" if self.postgres else "VARCHAR"

    @property
    def instant(self) -> str:
        """Column type of an instant (UTC ``TIMESTAMP`` on DuckDB: it buckets faster)."""
        return "TIMESTAMPTZ" if self.postgres else "TIMESTAMP"

    @property
    def p(self) -> str:
        """Parameter placeholder of the engine's driver."""
        return "%s" if self.postgres else "?"

    def has_table(self, name: str) -> bool:
        return self.table_type(name) is not None

    def table_type(self, name: str) -> str | None:
        """``BASE TABLE``, ``VIEW`` (…) of a relation of the current schema, or None."""
        rows = self.fetch("SELECT table_type FROM information_schema.tables WHERE table_name "
                          f"= {self.p} AND table_schema = current_schema()", [name])
        return str(rows[0][0]) if rows else None


@dataclass(frozen=True)
class Step:
    version: int
    description: str
    apply: Callable[[Schema], None]


def bookkeeping(s: Schema) -> list[str]:
    """The bookkeeping tables both engines have."""
    text, instant = s.text, s.instant
    return [
        f"CREATE TABLE IF NOT EXISTS sunarchive_meta (key {text} PRIMARY KEY, value {text})",
        f"""CREATE TABLE IF NOT EXISTS sunarchive_series (
            series_id INTEGER PRIMARY KEY, measurement {text} NOT NULL, tags {text} NOT NULL)""",
        f"""CREATE TABLE IF NOT EXISTS sunarchive_rollup_state (
            measurement {text} NOT NULL, tier {text} NOT NULL, horizon_s BIGINT NOT NULL)""",
        f"""CREATE TABLE IF NOT EXISTS sunarchive_dirty (
            measurement {text} NOT NULL, bucket_s BIGINT NOT NULL)""",
        f"""CREATE TABLE IF NOT EXISTS sunarchive_profiles (
            name {text} PRIMARY KEY, spec {text} NOT NULL)""",
        f"""CREATE TABLE IF NOT EXISTS sunarchive_writer_state (
            measurement {text} PRIMARY KEY, last_batch BIGINT NOT NULL)""",
        f"""CREATE TABLE IF NOT EXISTS sunarchive_state_labels (
            measurement {text} NOT NULL, field {text} NOT NULL, code INTEGER NOT NULL,
            label {text} NOT NULL, PRIMARY KEY (measurement, field, label))""",
        f"""CREATE TABLE IF NOT EXISTS sunarchive_events (
            time {instant} NOT NULL, end_time {instant}, kind {text} NOT NULL,
            measurement {text}, series_id INTEGER, message {text} NOT NULL)""",
    ]


POSTGRES_ONLY = [
    """CREATE TABLE IF NOT EXISTS sunarchive_batch_parts (
        measurement TEXT NOT NULL, batch_id BIGINT NOT NULL, part INTEGER NOT NULL,
        PRIMARY KEY (measurement, batch_id, part))""",
    """CREATE TABLE IF NOT EXISTS sunarchive_newest (
        measurement TEXT PRIMARY KEY, time_s BIGINT NOT NULL)""",
]
"""PostgreSQL keeps two more: the parts of a batch written over parallel COPY connections,
and the newest stored second (other processes read it; ``MAX(time)`` over partitions is
slow). A DuckDB file has one writing process, which keeps both in memory."""


def _v1_layout(s: Schema) -> None:
    for statement in bookkeeping(s) + (POSTGRES_ONLY if s.postgres else []):
        s.execute(statement, None)
    if s.postgres:
        _record_missing_newest(s)


def _record_missing_newest(s: Schema) -> None:
    """Stores made before ``sunarchive_newest`` existed: record the newest second once."""
    for profile in s.profiles:
        table = profile.table("1s")
        if not s.has_table(table):
            continue
        s.execute(f"INSERT INTO sunarchive_newest SELECT %s, EXTRACT(EPOCH FROM MAX(time))"
                  f"::bigint FROM {s.dialect.quote(table)} HAVING MAX(time) IS NOT NULL AND "
                  "NOT EXISTS (SELECT 1 FROM sunarchive_newest WHERE measurement = %s)",
                  [profile.name, profile.name])


MATERIALIZED_SUFFIX = "_materialized"


def materialized_table(profile: Profile, tier: str) -> str:
    """The table holding a rollup tier's complete buckets on DuckDB and plain PostgreSQL,
    e.g. ``ps100_readings_5min_materialized`` (``<m>_5min`` is the view users read)."""
    return profile.table(tier) + MATERIALIZED_SUFFIX


def stored_table(profile: Profile, tier: str) -> str:
    """The table holding a tier's rows on DuckDB and plain PostgreSQL: ``<m>_1s`` for the
    1 s tier, :func:`materialized_table` for a rollup tier."""
    return profile.table(tier) if tier not in ROLLUP_TIERS else materialized_table(profile, tier)


def rename_rollup_tables(s: Schema) -> list[str]:
    """Rename the rollup tables of the layout before step 2 (a table ``<m>_<tier>``) to
    ``<m>_<tier>_materialized``, rows untouched; idempotent. A relation ``<m>_<tier>`` that
    is a view (TimescaleDB's continuous aggregates, or done already) is left alone."""
    kinds = {str(name): str(kind) for name, kind in s.fetch(
        "SELECT table_name, table_type FROM information_schema.tables "
        "WHERE table_schema = current_schema()", None)}
    done = []
    for profile in s.profiles:
        for tier in ROLLUP_TIERS:
            old, new = profile.table(tier), materialized_table(profile, tier)
            if kinds.get(old) != "BASE TABLE" or new in kinds:
                continue
            q = s.dialect.quote
            s.execute(f"ALTER TABLE {q(old)} RENAME TO {q(new)}", None)
            if s.postgres:
                s.execute(f"ALTER INDEX IF EXISTS {q(index_name(old, '_time'))} RENAME TO "
                          f"{q(index_name(new, '_time'))}", None)
            done.append(f"renamed table {old} to {new}")
    return done


def _v2_materialized_names(s: Schema) -> None:
    rename_rollup_tables(s)


def stored_layout(s: Schema) -> str | None:
    """The PostgreSQL layout a store chose (``plain``, ``timescaledb``); None on DuckDB or
    before the first setup chose one."""
    if not s.postgres:
        return None
    rows = s.fetch("SELECT value FROM sunarchive_meta WHERE key = 'layout'", None)
    return str(rows[0][0]) if rows else None


def stored_site_zone(s: Schema) -> str | None:
    """The site zone the store's first setup recorded (``site_timezone``), or None."""
    rows = s.fetch("SELECT value FROM sunarchive_meta WHERE key = 'site_timezone'", None)
    return str(rows[0][0]) if rows else None


def _v3_plain_views(s: Schema) -> None:
    from sunarchive.storage import plain_views  # it builds on this module's Schema

    plain_views.ensure(s, stored_layout(s))


def _v4_goodwe_tables(s: Schema) -> None:
    from sunarchive.upstream.goodwe.tables import create

    create(s)


def _v5_ps100(s: Schema) -> None:
    from sunarchive.upstream import ps100, ps100_view  # the upstream layer imports this

    ps100.ensure_schema(s)
    ps100_view.ensure_view(s)


def _v6_perocube_registries(s: Schema) -> None:
    from sunarchive.upstream.perocube.tables import create

    create(s)


def _v7_homepot(s: Schema) -> None:
    from sunarchive.storage import plain_views
    from sunarchive.upstream.homepot import schema

    layout = stored_layout(s)
    plain_views.ensure(s, layout)   # health_checks, now that the profile names it
    schema.ensure(s, schema.Layout(layout, stored_site_zone(s)))


STEPS: tuple[Step, ...] = (
    Step(1, "bookkeeping tables of the first numbered layout", _v1_layout),
    Step(2, "rollup tables renamed <m>_<tier>_materialized; views under the old names add "
            "the open buckets", _v2_materialized_names),
    Step(3, "views with plain field names (dtu, inverter, port: a profile's `view`) over "
            "the 1 s tables; time_bucket on plain PostgreSQL", _v3_plain_views),
    Step(4, "GoodWe plan tables charging_sessions, system_configs, analytics_reports",
         _v4_goodwe_tables),
    Step(5, "PS100: ps100_panels, ps100_clearsky, views ps100_system_1s and ps100_events, "
            "and sunarchive_upstream.ps100_readings_1s with the document's columns",
         _v5_ps100),
    Step(6, "Perocube registries scientist, project, solar_cell_device, experiment and "
            "experiment_device", _v6_perocube_registries),
    Step(7, "HOMEPOT: health_checks (timestamp, integer device_id and site_id), devices "
            "and sites, device_metrics_hourly/_daily and site_metrics_hourly with the "
            "document's columns; first/last on plain PostgreSQL", _v7_homepot),
)
CURRENT_VERSION = STEPS[-1].version


def stored_version(s: Schema) -> int:
    """The newest step a store records (0: before numbered migrations, or empty)."""
    if not s.has_table(CHANGES_TABLE):
        return 0
    rows = s.fetch(f"SELECT MAX(version) FROM {CHANGES_TABLE}", None)
    return int(rows[0][0]) if rows and rows[0][0] is not None else 0


def check_version(s: Schema, steps: Sequence[Step] = STEPS) -> int:
    """The store's version; :class:`StoreTooNewError` if a newer sunarchive changed it."""
    version = stored_version(s)
    known = steps[-1].version
    if version > known:
        raise StoreTooNewError(
            f"{s.location}: this store is at schema version {version}, written by a newer "
            f"sunarchive; this one knows versions up to {known}. Upgrade sunarchive to open "
            "it (a store is never changed back)")
    return version


def migrate(s: Schema, steps: Sequence[Step] = STEPS) -> list[str]:
    """Apply the steps the store lacks, in order; return a description of each."""
    check_version(s, steps)
    s.execute(f"CREATE TABLE IF NOT EXISTS {CHANGES_TABLE} (version INTEGER PRIMARY KEY, "
              f"applied_at {s.instant} NOT NULL)", None)
    had = {int(r[0]) for r in s.fetch(f"SELECT version FROM {CHANGES_TABLE}", None)}
    done = []
    for step in sorted(steps, key=lambda step: step.version):
        if step.version in had:
            continue
        with s.transaction():
            step.apply(s)
            s.execute(f"INSERT INTO {CHANGES_TABLE} VALUES ({s.p}, {s.p})",
                      [step.version, _now(s)])
        done.append(f"schema version {step.version}: {step.description}")
    return done


def _now(s: Schema) -> datetime:
    now = datetime.now(UTC)
    return now if s.postgres else now.replace(tzinfo=None)   # DuckDB: a UTC TIMESTAMP
