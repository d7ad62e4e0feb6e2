"""Numbered migrations (sunarchive.storage.migrations) on stores made by the release before them.

``tests/data/store_v1_duckdb_demo.duckdb.gz``: ``sunarchive demo --speed 0 --duration 600
--panels 2 --start 2026-06-21T10:00:00+02:00 --timezone Europe/Berlin`` run by the code of
commit e0fa3f3 (the last without numbered migrations). ``store_v1_postgres_plain.sql.gz``: the
same demo into plain PostgreSQL, dumped with ``pg_dump --inserts --no-owner --no-privileges``.
Each migrates forward to the current version with every row it held unchanged (step 2 moves
the rollup tables' rows to ``<m>_<tier>_materialized``, unchanged, and puts views under the old
names that add the open buckets; step 5 adds PS100's tables and views, and the view of
``ps100_readings_1s`` with the document's columns in the upstream schema).
"""

from __future__ import annotations

import contextlib
import gzip
import shutil
import time
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path
from typing import Any

import psycopg
import pytest

from sunarchive.errors import StoreTooNewError
from sunarchive.profiles import load_profiles
from sunarchive.rollup import ROLLUP_TIERS, named_rollup_select
from sunarchive.storage import migrations, plain_views, upstream_schema
from sunarchive.storage.open import SqlStore, StoreOptions, open_store
from sunarchive.storage.tier_views import VIEW_META_PREFIX
from sunarchive.upstream import ps100, ps100_view
from sunarchive.upstream.homepot import functions as homepot_functions
from sunarchive.upstream.homepot import registry as homepot_registry
from sunarchive.upstream.homepot import schema as homepot_schema
from tests.support.cli import cli
from tests.support.tier_rows import assert_same_rows

pytestmark = pytest.mark.integration

DATA = Path(__file__).parent / "data"
ZONE = "Europe/Berlin"
Snapshot = dict[str, list[tuple[Any, ...]]]


def _options() -> StoreOptions:
    return StoreOptions(profiles=load_profiles(), timezone=ZONE)


def _old_duckdb(tmp_path: Path) -> Path:
    db = tmp_path / "old.duckdb"
    with gzip.open(DATA / "store_v1_duckdb_demo.duckdb.gz") as src, db.open("wb") as out:
        shutil.copyfileobj(src, out)
    return db


@contextlib.contextmanager
def _opened(url: str, read_only: bool = False) -> Iterator[SqlStore]:
    store = open_store(url, _options(), read_only=read_only)
    try:
        yield store
    finally:
        store.close()


def _snapshot(store: SqlStore) -> Snapshot:
    """Every row of every base table, sorted (the migration's own table left out)."""
    p = "?" if store.engine == "duckdb" else "%s"
    names = [r[0] for r in store._fetch(
        "SELECT table_name FROM information_schema.tables WHERE table_type = "
        f"{p} AND table_schema = current_schema()", ["BASE TABLE"])]
    out = {}
    for name in sorted(names):
        if name != migrations.CHANGES_TABLE:
            rows = store._fetch(f"SELECT * FROM {store.dialect.quote(name)}")
            out[name] = sorted(rows, key=repr)
    return out


RENAMED = {p.table(tier): migrations.materialized_table(p, tier)
           for p in load_profiles().values() for tier in ROLLUP_TIERS}
"""Rollup tables of the old layout → where step 2 puts their rows."""


def _same_rows(before: Snapshot, after: Snapshot) -> None:
    assert sum(len(rows) for rows in before.values()) > 1200
    for name, rows in before.items():
        now = after.get(RENAMED.get(name, name))
        if name == "sunarchive_meta":   # plus a digest of each view's (and function's) SQL
            now = [r for r in now or [] if not str(r[0]).startswith(
                (VIEW_META_PREFIX, plain_views.META_PREFIX, ps100_view.META_KEY,
                 homepot_schema.VIEW_PREFIX, homepot_schema.FUNCTIONS_KEY,
                 homepot_registry.META_KEY))]
        assert now == rows, f"{name} changed"


def _tiers_read_alike(store: SqlStore, before: Snapshot) -> None:
    """Each PS100 tier view holds the old table's rows before the horizon, unchanged, plus
    the open buckets after it: the rows the program's own reads give."""
    profile = store.profiles["ps100_readings"]
    for tier in ROLLUP_TIERS:
        view = store.read_sql(f"SELECT * FROM {profile.table(tier)} ORDER BY time, "
                              "panel_id").table
        own = store.query_tier(profile.name, tier, 0, 2**33, {}, None)
        assert_same_rows(_epochs(view.drop(["series_id"])), _epochs(own))
        horizon = store.horizon(profile.name, tier)
        assert horizon is not None
        closed = [r for r in store._fetch(f"SELECT * FROM {profile.table(tier)}")
                  if _epoch(r[0]) < horizon]
        old = [(_aware(r[0]), *r[1:]) for r in before[profile.table(tier)]]
        assert sorted(closed, key=repr) == sorted(old, key=repr), tier
        newest = store.last_time_s(profile.name)
        assert newest is not None
        if newest >= horizon:   # the demo ended 10:10 local: this hour and today are open
            assert view.num_rows > len(closed), f"{tier}: no open bucket"


def _epochs(table: Any) -> list[dict[str, Any]]:
    """Rows with ``time`` as epoch seconds (DuckDB's views say TIMESTAMPTZ, its tables hold
    naive UTC TIMESTAMPs)."""
    return [{**row, "time": _epoch(row["time"])} for row in table.to_pylist()]


def _epoch(value: Any) -> int:
    return int(_aware(value).timestamp())


def _aware(value: Any) -> Any:
    """A stored time as an aware datetime (DuckDB tables hold naive UTC ones)."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _has_the_ps100_step(store: SqlStore) -> None:
    """Step 5 gave the old store PS100's tables and views, and the upstream schema's view
    with the document's columns (the table's rows are checked unchanged by
    :func:`_same_rows`)."""
    s = store._schema()
    assert [s.table_type(n) for n in (ps100.PANELS, ps100.CLEARSKY, ps100.SYSTEM, ps100.EVENTS)] \
        == ["BASE TABLE", "BASE TABLE", "VIEW", "VIEW"]
    columns = {str(r[0]) for r in s.fetch(
        "SELECT column_name FROM information_schema.columns WHERE table_name = "
        f"{s.p} AND table_schema = {s.p}", [ps100.READINGS, upstream_schema.DEFAULT])}
    assert {"power_peak", "efficiency_percent", "conditions_estimate", "alerts",
            "sample_count"} <= columns


def _versions(store: SqlStore) -> list[int]:
    return [int(r[0]) for r in store._fetch(
        f"SELECT version FROM {migrations.CHANGES_TABLE} ORDER BY version")]


def test_the_duckdb_store_of_the_last_release_migrates_without_a_data_change(
        tmp_path: Path) -> None:
    db = _old_duckdb(tmp_path)
    with _opened(f"duckdb:///{db}", read_only=True) as reader:
        assert reader.schema_version() == 0
        before = _snapshot(reader)
        hourly = _epochs(reader.query_tier("ps100_readings", "1hour", 0, 2**33, {}, None))
    with _opened(f"duckdb:///{db}") as store:
        assert store.schema_version() == migrations.CURRENT_VERSION
        assert _versions(store) == [step.version for step in migrations.STEPS]
        _same_rows(before, _snapshot(store))
        _has_the_ps100_step(store)
        _tiers_read_alike(store, before)
        assert _epochs(store.query_tier("ps100_readings", "1hour", 0, 2**33, {}, None)) == \
            hourly   # a reader of the store before step 2 read the same
    with _opened(f"duckdb:///{db}") as again:   # nothing left to apply
        assert again.migrate() == []
        assert _versions(again) == [step.version for step in migrations.STEPS]
    out = cli("sql", "SELECT COUNT(*) AS n FROM ps100_readings_1s", "--db", str(db),
              "--format", "csv").stdout
    assert out.split() == ["n", "1200"]


def test_profiles_met_after_step_2_get_their_rollup_tables_renamed_too(
        tmp_path: Path) -> None:
    """Step 2 renames the tables of the profiles configured when it runs; setup renames those
    of profiles it meets later (stored ones, a profile configured again) the same way."""
    db = _old_duckdb(tmp_path)
    every = load_profiles()
    health = every["health_checks"]
    only_ps100 = StoreOptions(profiles={"ps100_readings": every["ps100_readings"]},
                              timezone=ZONE)
    open_store(f"duckdb:///{db}", only_ps100).close()
    with _opened(f"duckdb:///{db}", read_only=True) as reader:
        assert reader.schema_version() == migrations.CURRENT_VERSION
        assert reader._schema().table_type(health.table("5min")) == "BASE TABLE"
        assert reader.query_tier(health.name, "5min", 0, 2**33, {}, None).num_rows == 0
    with _opened(f"duckdb:///{db}") as store:
        for tier in ROLLUP_TIERS:
            assert store._schema().table_type(health.table(tier)) == "VIEW"
            assert store.has_table(migrations.materialized_table(health, tier))
        assert store.read_sql("SELECT COUNT(*) AS n FROM device_metrics_hourly").rows() == \
            [(0,)]


def test_a_store_written_by_a_newer_sunarchive_is_refused(tmp_path: Path) -> None:
    db = _old_duckdb(tmp_path)
    newer = migrations.CURRENT_VERSION + 1
    with _opened(f"duckdb:///{db}") as store:
        store._execute(f"INSERT INTO {migrations.CHANGES_TABLE} VALUES (?, NOW())", [newer])
    for read_only in (False, True):
        with pytest.raises(StoreTooNewError, match=f"schema version {newer}.*newer sunarchive"):
            open_store(f"duckdb:///{db}", _options(), read_only=read_only)
    result = cli("status", "--db", str(db), check=False)
    assert result.returncode == 2
    assert f"schema version {newer}" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_steps_apply_in_order_each_with_its_record_and_resume_after_a_failure(
        tmp_path: Path) -> None:
    db = _old_duckdb(tmp_path)
    with _opened(f"duckdb:///{db}") as store:
        schema = store._schema()
        seen: list[int] = []

        def note(version: int, fail: bool = False) -> migrations.Step:
            def apply(s: migrations.Schema) -> None:
                s.execute("CREATE TABLE IF NOT EXISTS seen (version INTEGER)", None)
                s.execute("INSERT INTO seen VALUES (?)", [version])
                seen.append(version)
                if fail:
                    raise RuntimeError(f"step {version} failed")
            return migrations.Step(version, f"note {version}", apply)

        base = migrations.CURRENT_VERSION
        failing = (*migrations.STEPS, note(base + 2), note(base + 1), note(base + 3, fail=True))
        with pytest.raises(RuntimeError):
            migrations.migrate(schema, failing)
        assert seen == [base + 1, base + 2, base + 3]
        assert _versions(store)[-1] == base + 2     # step 3 rolled back with its record
        assert [r[0] for r in store._fetch("SELECT version FROM seen")] == [base + 1, base + 2]
        fixed = (*migrations.STEPS, note(base + 1), note(base + 2), note(base + 3))
        assert migrations.migrate(schema, fixed) == [f"schema version {base + 3}: note "
                                                     f"{base + 3}"]
        assert _versions(store)[-3:] == [base + 1, base + 2, base + 3]


def _restore_plain(url: str) -> None:
    script = gzip.decompress((DATA / "store_v1_postgres_plain.sql.gz").read_bytes()).decode()
    with psycopg.connect(url, autocommit=True) as con:
        con.execute(script.encode())


def test_the_plain_postgres_layout_of_the_last_release_migrates_without_a_data_change(
        pg_url: str) -> None:
    _restore_plain(pg_url)
    with _opened(pg_url, read_only=True) as reader:
        assert reader.schema_version() == 0
        before = _snapshot(reader)
    with psycopg.connect(pg_url, autocommit=True) as con:   # as stores older than it were
        con.execute("DROP TABLE sunarchive_newest")
    with _opened(pg_url) as store:
        assert store.schema_version() == migrations.CURRENT_VERSION
        assert _versions(store) == [step.version for step in migrations.STEPS]
        after = _snapshot(store)
        _same_rows(before, after)     # sunarchive_newest included: recorded again, the same
        _has_the_ps100_step(store)
        assert after["sunarchive_newest"]
        _tiers_read_alike(store, before)
    with _opened(pg_url, read_only=True) as reader:
        assert reader.last_time_s("ps100_readings") == before["sunarchive_newest"][0][1]


PLAIN_VIEWS = tuple(str(p.view) for p in load_profiles().values() if p.view)
"""dtu, inverter, port (step 3) and the lab rig's mpp_measurement, temperature_measurement,
irradiance_measurement (made by setup, as every plain view of a profile)."""


def _back_to_version_2(store: SqlStore) -> None:
    """A store as the release with two steps left it: no plain views, no time_bucket."""
    for name in PLAIN_VIEWS:
        store._execute(f"DROP VIEW {name}")
    store._execute(f"DELETE FROM sunarchive_meta WHERE starts_with(key, "
                   f"'{plain_views.META_PREFIX}')")
    store._execute(f"DELETE FROM {migrations.CHANGES_TABLE} WHERE version >= 3")
    if store.engine != "duckdb":
        store._execute("DROP FUNCTION time_bucket(interval, timestamptz)")
        store._execute("DROP FUNCTION time_bucket(interval, timestamp)")


def _step_3_makes_the_plain_views(store: SqlStore) -> None:
    _back_to_version_2(store)
    assert all(store._schema().table_type(name) is None for name in PLAIN_VIEWS)
    done = store.migrate()
    assert done == [f"schema version {step.version}: {step.description}"
                    for step in migrations.STEPS[2:]]   # later steps again: idempotent
    for name in PLAIN_VIEWS:
        assert store._schema().table_type(name) == "VIEW"
    rows = store.read_sql("SELECT time_bucket(INTERVAL '1 hour', time) AS hour, "
                          "AVG(pv_power) AS w FROM dtu GROUP BY hour").rows()
    assert rows == []   # the demo wrote PS100 only; the relation and the function are there


def test_step_3_makes_the_plain_views_of_an_existing_duckdb_store(tmp_path: Path) -> None:
    with _opened(f"duckdb:///{_old_duckdb(tmp_path)}") as store:
        _step_3_makes_the_plain_views(store)


def test_step_3_makes_the_plain_views_and_time_bucket_on_plain_postgres(pg_url: str) -> None:
    _restore_plain(pg_url)
    with _opened(pg_url) as store:
        _step_3_makes_the_plain_views(store)


HOMEPOT_VIEWS = ("device_metrics_hourly", "device_metrics_daily", "site_metrics_hourly")
OLD_NAMED_ROLLUPS = (("device_metrics_hourly", "1hour", None),
                     ("device_metrics_daily", "daily", None),
                     ("site_metrics_hourly", "1hour", ("site_id",)))
"""The named rollups the ``health_checks`` profile had up to step 4."""


def _back_to_version_4(store: SqlStore) -> None:
    """A store as the release with four steps left it: ``health_checks_1s`` but no
    ``health_checks``, registries or first/last, and the profile's named rollups under the
    HOMEPOT names (columns ``cpu_percent_avg`` …) as that release made them."""
    for name in (*HOMEPOT_VIEWS, "health_checks"):
        store._execute(f"DROP VIEW {name}")
    for name in ("devices", "sites"):
        store._execute(f"DROP TABLE {name}")
    store._execute("DELETE FROM sunarchive_meta WHERE starts_with(key, 'homepot_') OR key = "
                   f"'{plain_views.META_PREFIX}health_checks'")
    store._execute(f"DELETE FROM {migrations.CHANGES_TABLE} WHERE version >= 5")
    if store.engine != "duckdb":
        for short in homepot_functions.VALUE_TYPES:   # and the functions on them
            store._execute(f"DROP TYPE {homepot_functions.STATE_PREFIX}{short} CASCADE")
    profile = store.profiles["health_checks"]
    for name, tier, group in OLD_NAMED_ROLLUPS:
        store._execute(f"CREATE VIEW {name} AS "
                       f"{named_rollup_select(profile, tier, group, store.dialect)}")


def _step_7_makes_homepots_relations(store: SqlStore) -> None:
    _back_to_version_4(store)
    assert "avg_cpu" not in store.read_sql("SELECT * FROM device_metrics_hourly").columns
    done = store.migrate()
    assert done == [f"schema version {step.version}: {step.description}"
                    for step in migrations.STEPS if step.version > 4]
    rows = store.read_sql("SELECT hour, device_id, avg_cpu, checks FROM "
                          "device_metrics_hourly WHERE device_id = 123 ORDER BY hour").rows()
    own = store.query_tier("health_checks", "1hour", 0, 2**33, {}, None).to_pylist()
    assert [(r[1], r[2], r[3]) for r in rows] == [
        (123, pytest.approx(o["cpu_percent_avg"], rel=1e-9), o["sample_count"]) for o in own]
    assert len(rows) == 3   # 3, 2 and 1 checks
    checks = store.read_sql("SELECT COUNT(*) FROM health_checks WHERE device_id = 123").rows()
    assert checks == [(6,)]
    assert store.read_sql("SELECT id, site_id FROM devices").rows() == [(123, 1)]  # series
    if store.engine != "duckdb":
        assert store.read_sql("SELECT first(cpu_percent, timestamp), last(cpu_percent, "
                              "timestamp) FROM health_checks").rows() == [(10.0, 60.0)]
    assert store.migrate() == []


def _health_lines(path: Path) -> Path:
    """Six checks of device 123 over the three whole hours before this one (cpu 10 … 60 %;
    recent: the profile keeps its 1 s rows 90 days)."""
    start = (int(time.time()) // 3600 - 3) * 3600
    path.write_text("".join(
        f"health_checks,device_id=123,site_id=1 cpu_percent={10.0 * (i + 1)},"
        f"memory_percent=50.0,disk_percent=40.0,transactions={5.0 * i},errors=0.0,"
        f"latency_ms=9.0,is_healthy=true {start + i * 1500}\n" for i in range(6)))
    return path


def test_step_7_makes_homepots_relations_in_a_duckdb_store_of_step_4(tmp_path: Path) -> None:
    db = _old_duckdb(tmp_path)
    cli("import", "--db", str(db), str(_health_lines(tmp_path / "h.lp")), "--precision", "s")
    with _opened(f"duckdb:///{db}") as store:
        _step_7_makes_homepots_relations(store)


def test_step_7_makes_homepots_relations_on_plain_postgres_of_step_4(
        pg_url: str, tmp_path: Path) -> None:
    _restore_plain(pg_url)
    cli("import", "--database-url", pg_url, str(_health_lines(tmp_path / "h.lp")),
        "--precision", "s")
    with _opened(pg_url) as store:
        _step_7_makes_homepots_relations(store)
