"""TimescaleDB rollups that never freeze or vanish (issue 15, points 8–11), on a real
TimescaleDB (``SUNARCHIVE_TEST_TIMESCALE_URL``; skipped with the reason without one).

* a refresh owed after a commit survives a kill -9 and is settled at the next start;
* a refresh never materializes a bucket that is still open;
* refreshes never reach below the raw retention horizon, nor into chunks dropped by hand,
  and late rows for such ranges are refused;
* the CLI on aggregates, compression and changed policy settings.
"""

from __future__ import annotations

import dataclasses
import json
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from sunarchive.model import SeriesKey, StatsRows
from sunarchive.storage.postgres.store import PostgresStore
from tests.support.cli import cli
from tests.support.timescale_panels import PROFILES, PS100, TAGS, open_store, rows

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
HOUR = 3600


@pytest.fixture
def store(timescale_url: str) -> Iterator[PostgresStore]:
    opened = open_store(timescale_url)
    yield opened
    opened.close()


def value(store: PostgresStore, sql: str) -> object:
    return store.sql(sql).rows()[0][0]


def hour_start(days_ago: int) -> int:
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    return int((now - timedelta(days=days_ago)).replace(hour=6).timestamp())


# -- point 10: the refresh owed after a commit survives a crash --------------------------------
CRASHING_WRITER = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, {root!r})
    from tests.support.timescale_panels import open_store, rows, TAGS
    from sunarchive.model import StatsRows
    store = open_store({url!r})
    store.write(rows({start}, {seconds}), StatsRows.empty("ps100_readings"), TAGS)
    os.kill(os.getpid(), signal.SIGKILL)   # right after the commit, before any rollup
""")


def test_refresh_owed_at_a_crash_is_settled_at_start(timescale_url: str) -> None:
    old = hour_start(days_ago=4)                  # older than every policy's window
    script = CRASHING_WRITER.format(root=str(ROOT), url=timescale_url,
                                    start=old, seconds=3 * HOUR)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr
    store = open_store(timescale_url)             # the next start settles what is owed
    try:
        # a later backfill moves the watermarks past the crashed hours
        store.write(rows(hour_start(days_ago=3), HOUR), StatsRows.empty(PS100), TAGS)
        store.rollup(PS100, None)
        hours = value(store, f"SELECT COUNT(*) FROM ps100_readings_1hour WHERE time >= "
                             f"to_timestamp({old}) AND time < to_timestamp({old + 3 * HOUR})")
        assert hours == 3 * len(TAGS)             # no hole: 3 hours of both panels
        owed = value(store, "SELECT COUNT(*) FROM sunarchive_refresh_owed")
        assert owed == 0
    finally:
        store.close()


# -- point 8: a refresh never materializes a bucket that is still open -------------------------
def zone_past_eight_local() -> str:
    """A zone where today's local day started at least 8 hours ago (UTC or UTC+12)."""
    return "UTC" if datetime.now(UTC).hour >= 8 else "Etc/GMT-12"


def test_old_write_does_not_freeze_todays_daily_total(timescale_url: str) -> None:
    """The issue's repro: a backfill from now − 7 h for 1 h (older than the 5-minute
    policy's window: the writer refreshes itself), then now − 40 min for 30 min. Today's
    daily total must hold both, not the half materialized at the first refresh."""
    store = open_store(timescale_url, zone_past_eight_local())
    try:
        now = int(datetime.now(UTC).timestamp())
        store.write(rows(now - 7 * HOUR, HOUR), StatsRows.empty(PS100), TAGS)
        store.rollup(PS100, None)
        store.write(rows(now - 40 * 60, 30 * 60), StatsRows.empty(PS100), TAGS)
        store.rollup(PS100, None)
        today = store.tz.key
        raw = value(store, "SELECT SUM(energy_wh) FROM ps100_readings_1s")
        daily = value(store, f"SELECT SUM(energy_wh) FROM ps100_readings_daily WHERE day = "
                             f"(now() AT TIME ZONE '{today}')::DATE")
        assert float(str(daily)) == pytest.approx(float(str(raw)))
        day_start = value(store, f"SELECT EXTRACT(EPOCH FROM date_trunc('day', now(), "
                                 f"'{today}'))::BIGINT")
        watermark = store._materialized(PROFILES[PS100], "daily")[1]
        assert watermark is None or watermark <= int(str(day_start))
    finally:
        store.close()


# -- point 9: retention never erases rollups ---------------------------------------------------
ROLLUP_ROWS = ("SELECT (SELECT COUNT(*) FROM ps100_readings_5min WHERE time >= to_timestamp({lo}) "
               "AND time < to_timestamp({hi})), (SELECT SUM(energy_wh) FROM "
               "ps100_readings_1hour WHERE time >= to_timestamp({lo}) AND time < "
               "to_timestamp({hi})), (SELECT SUM(energy_wh) FROM ps100_readings_daily WHERE "
               "time >= to_timestamp({lo}) - INTERVAL '1 day' AND time < to_timestamp({hi}))")


def test_refresh_and_late_data_never_reach_below_raw_retention(timescale_url: str) -> None:
    store = PostgresStore(timescale_url, PROFILES, retention_days={"1s": 2.0})
    store.setup()
    for sid, tags in TAGS.items():
        store.add_series(SeriesKey(PS100, tags), sid)
    try:
        old, later = hour_start(days_ago=5), hour_start(days_ago=3)
        for start in (old, later):   # the later one moves the watermarks past the old day
            store.write(rows(start, HOUR), StatsRows.empty(PS100), TAGS)
            store.rollup(PS100, None)
        store.apply_retention(datetime.now(UTC))
        raw = f"SELECT COUNT(*) FROM ps100_readings_1s WHERE time < to_timestamp({later})"
        assert value(store, raw) == 0                     # the old day's raw chunk is gone
        query = ROLLUP_ROWS.format(lo=old, hi=old + HOUR)
        kept = store.sql(query).rows()[0]
        assert kept[0] == 12 * len(TAGS)
        # an explicit refresh over the dropped range leaves the rollups as they are
        store.refresh(PS100, old - HOUR, old + 2 * HOUR)
        assert store.sql(query).rows()[0] == kept
        # a late sample for the dropped day is refused, not made the whole 5-minute bucket
        assert store.write(rows(old + 60, 1, power_w=900.0), StatsRows.empty(PS100), TAGS)
        store.rollup(PS100, None)
        assert store.sql(query).rows()[0] == kept
        assert value(store, raw) == 0
        refused = value(store, "SELECT message FROM sunarchive_events WHERE kind = "
                               "'refused_below_retention'")
        assert "2 rows" in str(refused) and "retention" in str(refused)
        # `sunarchive refresh` refuses a range without raw data, in one line
        stamp = datetime.fromtimestamp(old, UTC).isoformat()
        done = cli("refresh", "--database-url", timescale_url, "--measurement", PS100,
                   "--start", stamp, "--end", stamp.replace("T06", "T08"), check=False)
        assert done.returncode != 0 and "Traceback" not in done.stderr
        assert "chunks were dropped (before" in done.stderr
        assert store.sql(query).rows()[0] == kept
    finally:
        store.close()


def midnight(instant_s: int) -> datetime:
    """UTC midnight starting the day of ``instant_s`` (1 s chunks are UTC days)."""
    return datetime.fromtimestamp(instant_s - instant_s % 86400, UTC)


def test_a_manual_drop_chunks_never_erases_rollups(timescale_url: str) -> None:
    """Issue 15 point 9 for drops not made by sunarchive's retention job: an operator drops a
    middle day's 1 s chunks by hand (``older_than`` and ``newer_than``). A refresh over it,
    a late sample into it and `sunarchive refresh` leave its 5min/1hour/daily rows as they
    were; the day before, which has raw data, is still refreshed; history older than anything
    stored (never written, so nothing dropped) is still taken and rolled up."""
    store = open_store(timescale_url)
    try:
        old, middle, later = (hour_start(days_ago=d) for d in (5, 4, 3))
        for start in (old, middle, later):
            store.write(rows(start, HOUR), StatsRows.empty(PS100), TAGS)
            store.rollup(PS100, None)
        day = ROLLUP_ROWS.format(lo=middle, hi=middle + HOUR)
        kept = store.sql(day).rows()[0]
        assert kept[0] == 12 * len(TAGS)
        with psycopg.connect(timescale_url, autocommit=True) as con:   # the operator
            con.execute("SELECT drop_chunks('ps100_readings_1s', older_than => %s, "
                        "newer_than => %s)", [midnight(later), midnight(middle)])
        raw = (f"SELECT COUNT(*) FROM ps100_readings_1s WHERE time >= to_timestamp({middle}) "
               f"AND time < to_timestamp({later})")
        assert value(store, raw) == 0
        # more data for the day before: its raw chunk is there, it is refreshed
        store.write(rows(old + HOUR, HOUR, power_w=50.0), StatsRows.empty(PS100), TAGS)
        store.rollup(PS100, None)
        dropped_day = (int(midnight(middle).timestamp()), int(midnight(later).timestamp()))
        store.refresh(PS100, *dropped_day)                 # the dropped day itself
        assert store.sql(day).rows()[0] == kept
        store.refresh(PS100, old, later + HOUR)            # and the days around it
        assert store.sql(day).rows()[0] == kept
        before = ROLLUP_ROWS.format(lo=old, hi=old + 2 * HOUR)
        assert store.sql(before).rows()[0][0] == 2 * 12 * len(TAGS)
        # a late sample for the dropped day is refused, with an event naming the range
        assert store.write(rows(middle + 60, 1, power_w=900.0), StatsRows.empty(PS100), TAGS)
        store.rollup(PS100, None)
        assert value(store, raw) == 0
        assert store.sql(day).rows()[0] == kept
        refused = str(value(store, "SELECT message FROM sunarchive_events WHERE kind = "
                                   "'refused_below_retention'"))
        first_row = datetime.fromtimestamp(middle, UTC).isoformat()
        assert refused.startswith("refused 2 rows") and f"from {first_row} to" in refused
        # `sunarchive refresh`: a range without raw data is refused in one line, a range
        # with some is refreshed where it has raw data, and says what it left out
        common = ["--database-url", timescale_url, "--measurement", PS100]
        stamp = datetime.fromtimestamp(middle, UTC).isoformat()
        done = cli("refresh", *common, "--start", stamp, "--end",
                   stamp.replace("T06", "T08"), check=False)
        assert done.returncode != 0 and "Traceback" not in done.stderr
        assert len(done.stderr.splitlines()) == 1 and "chunks were dropped" in done.stderr
        wide = cli("refresh", *common, "--start", datetime.fromtimestamp(old, UTC).isoformat())
        assert f"raw data from {first_row}" in wide.stdout and "kept as they are" in wide.stdout
        assert store.sql(day).rows()[0] == kept
        # backfill older than anything stored: never written there, so taken and rolled up
        history = hour_start(days_ago=10)
        store.write(rows(history, HOUR), StatsRows.empty(PS100), TAGS)
        store.rollup(PS100, None)
        assert store.sql(ROLLUP_ROWS.format(lo=history, hi=history + HOUR)).rows()[0][0] \
            == 12 * len(TAGS)
        assert store.sql(day).rows()[0] == kept
    finally:
        store.close()


# -- point 11: the CLI on aggregates, compression and changed policy settings -----------------
def test_chunks_of_an_aggregate_and_compress_twice(timescale_url: str) -> None:
    common = ["--database-url", timescale_url]
    store = open_store(timescale_url)
    try:
        store.write(rows(hour_start(days_ago=10), HOUR), StatsRows.empty(PS100), TAGS)
        store.rollup(PS100, None)
    finally:
        store.close()
    shown = cli("chunks", "ps100_readings_5min", *common, "--json", check=False)
    assert shown.returncode == 0 and "Traceback" not in shown.stderr, shown.stderr
    listed = json.loads(shown.stdout)
    assert listed and all(c["bytes"] > 0 for c in listed)
    first = cli("compress", *common, "--older-than", "7d").stdout
    assert "compressed _timescaledb_internal." in first
    again = cli("compress", *common, "--older-than", "7d").stdout
    assert "compressed _timescaledb_internal." not in again      # nothing new to compress
    assert again.splitlines()[-1].startswith("0 chunks")


def policy(url: str, proc: str, relation: str) -> dict[str, object]:
    with psycopg.connect(url) as con:
        row = con.execute("SELECT config FROM timescaledb_information.jobs WHERE proc_name = %s "
                          "AND (hypertable_name = %s OR config ->> 'measurement' = %s)",
                          [proc, relation, PS100]).fetchone()
    assert row is not None, (proc, relation)
    return dict(row[0])


def test_setup_brings_policies_to_changed_settings(timescale_url: str) -> None:
    first = PostgresStore(timescale_url, PROFILES, retention_days={"1s": 30.0})
    first.setup()
    first.close()
    profile = PROFILES[PS100]
    changed = {**PROFILES, PS100: dataclasses.replace(
        profile, extra={**profile.extra, "compress_after_days": 3})}
    second = PostgresStore(timescale_url, changed, retention_days={"1s": 10.0})
    try:
        changes = second.setup()
        assert any("ps100_readings_1s" in c and "3 days" in c for c in changes), changes
        assert any("retention" in c and "10 d" in c for c in changes), changes
        compress = policy(timescale_url, "policy_compression", "ps100_readings_1s")
        assert compress["compress_after"] == "3 days"
        kept = policy(timescale_url, "sunarchive_retention", "")
        assert kept["tiers"][0]["keep_days"] == 10.0   # type: ignore[index]
        # a refresh policy changed by hand is brought back to the settings
        with psycopg.connect(timescale_url, autocommit=True) as con:
            con.execute("SELECT remove_continuous_aggregate_policy('ps100_readings_1hour')")
            con.execute("SELECT add_continuous_aggregate_policy('ps100_readings_1hour', "
                        "INTERVAL '3 days', INTERVAL '2 hours', INTERVAL '1 hour')")
        assert any("ps100_readings_1hour" in c for c in second.setup())
        hourly = policy(timescale_url, "policy_refresh_continuous_aggregate",
                        "ps100_readings_1hour")
        assert (hourly["start_offset"], hourly["end_offset"]) == ("2 days", "01:00:00")
        assert second.setup() == []                     # and then it is up to date
    finally:
        second.close()
