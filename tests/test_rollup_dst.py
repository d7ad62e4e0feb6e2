"""Daily tier = the site's local calendar day (invariant 2): DST days have 23 or 25 hours.

Constant 100 W for a whole local day must give what the user's meter shows: 2.3 kWh on the
Berlin spring-forward day, 2.5 kWh on the fall-back day and 2.4 kWh in a UTC+10 zone without DST;
daily rows are labelled by the local midnight.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from sunarchive.profiles.loader import parse_profile
from sunarchive.profiles.spec import Profile
from sunarchive.storage.migrations import materialized_table
from tests.support.reference import NS, Harness, RawSample, differences, reference_rows, utc_seconds

pytestmark = pytest.mark.engine

POLL_S = 30
WATTS = 100.0

PROFILE: Profile = parse_profile({
    "name": "site_load",
    "tags": ["site"],
    "max_gap_s": 120,
    "fields": {
        "load": {"unit": "W", "kind": "power", "energy_column": "energy_wh"},
        "grid_voltage": {"unit": "V", "kind": "gauge"},
    },
}, "<test>")


def midnight(day: date, zone: str) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(zone)).timestamp())


def constant_power(start_s: int, end_s: int) -> list[RawSample]:
    """A poll every 30 s from ``start_s`` up to and including ``end_s`` (the last one holds
    nothing, so the energy covers exactly [start_s, end_s))."""
    return [RawSample(0, t * NS, {"load": WATTS, "grid_voltage": 230.0})
            for t in range(start_s, end_s + 1, POLL_S)]


def run(zone: str, samples: list[RawSample], folder: Path) -> Harness:
    harness = Harness(PROFILE, folder, zones=(zone,))
    harness.add(samples)
    harness.close(final=True)
    return harness


@pytest.mark.parametrize(("zone", "day", "hours"), [
    ("Europe/Berlin", date(2026, 3, 29), 23),
    ("Europe/Berlin", date(2026, 10, 25), 25),
    ("Australia/Brisbane", date(2026, 3, 29), 24),
    ("Australia/Brisbane", date(2026, 10, 25), 24),
])
def test_constant_power_for_one_local_day(zone: str, day: date, hours: int,
                                          tmp_path: Path) -> None:
    begin = midnight(day, zone)
    end = midnight(day + timedelta(days=1), zone)
    assert end - begin == hours * 3600  # the zone database agrees with the calendar
    samples = constant_power(begin, end)
    harness = run(zone, samples, tmp_path)
    store = harness.stores[zone]
    try:
        # Daily: served rows (materialized, since the day is complete) …
        daily = harness.rows("daily", zone)
        row = daily[(0, begin)]
        assert row["day"] == day
        assert row["energy_wh"] == pytest.approx(WATTS * hours, rel=1e-12)
        assert row["load_count"] == hours * 3600 // POLL_S
        assert row["sample_count"] == hours * 3600 // POLL_S
        assert row["covered_s"] == hours * 3600 // POLL_S
        assert row["load_avg"] == pytest.approx(WATTS) and row["load_stddev"] == pytest.approx(0)
        # … the next day holds only the final sample (which holds nothing): energy 0, not more.
        assert daily[(0, end)]["energy_wh"] == 0.0
        assert daily[(0, end)]["day"] == day + timedelta(days=1)
        assert set(daily) == {(0, begin), (0, end)}

        # … and the materialized table has the same row, labelled by the local midnight.
        assert store.horizon(PROFILE.name, "daily") == end
        stored = store.sql(f'SELECT time, day, energy_wh FROM '
                           f'"{materialized_table(PROFILE, "daily")}" ORDER BY time').rows()
        assert stored[0][0] == datetime.fromtimestamp(begin, UTC).replace(tzinfo=None)
        assert utc_seconds(stored[0][0]) == begin
        assert stored[0][1] == day
        assert stored[0][2] == pytest.approx(WATTS * hours, rel=1e-12)

        # Hourly buckets: 23 / 24 / 25 of them in the local day, 100 Wh each.
        hourly = {k: r for k, r in harness.rows("1hour", zone).items() if begin <= k[1] < end}
        assert len(hourly) == hours
        assert all(r["energy_wh"] == pytest.approx(WATTS, rel=1e-12) for r in hourly.values())
        assert sum(r["energy_wh"] for r in hourly.values()) == pytest.approx(WATTS * hours)

        # And every tier agrees with the naive reference.
        for tier in ("5min", "1hour", "daily"):
            expected = reference_rows(PROFILE, samples, tier, zone)
            assert differences(expected, harness.rows(tier, zone)) == [], tier
    finally:
        harness.close_stores()


def test_several_days_across_spring_forward(tmp_path: Path) -> None:
    """Constant power 2026-03-27 … 2026-03-30 in Berlin: 2.4, 2.4, 2.3, 2.4 kWh."""
    zone = "Europe/Berlin"
    first, last = date(2026, 3, 27), date(2026, 3, 31)
    samples = constant_power(midnight(first, zone), midnight(last, zone))
    harness = run(zone, samples, tmp_path)
    try:
        daily = harness.rows("daily", zone)
        got = {r["day"]: r["energy_wh"] for r in daily.values()}
        assert got == {
            date(2026, 3, 27): pytest.approx(2400.0, rel=1e-12),
            date(2026, 3, 28): pytest.approx(2400.0, rel=1e-12),
            date(2026, 3, 29): pytest.approx(2300.0, rel=1e-12),
            date(2026, 3, 30): pytest.approx(2400.0, rel=1e-12),
            date(2026, 3, 31): 0.0,
        }
        for (_, start), row in daily.items():
            assert start == midnight(row["day"], zone)
        assert differences(reference_rows(PROFILE, samples, "daily", zone), daily) == []
    finally:
        harness.close_stores()


def test_same_data_in_utc_store_uses_utc_days(tmp_path: Path) -> None:
    """The Berlin spring-forward day seen by a UTC site: split at UTC midnight (1 h + 22 h)."""
    begin, end = midnight(date(2026, 3, 29), "Europe/Berlin"), midnight(date(2026, 3, 30),
                                                                           "Europe/Berlin")
    samples = constant_power(begin, end)
    harness = run("UTC", samples, tmp_path)
    try:
        daily = harness.rows("daily", "UTC")
        got = {r["day"]: r["energy_wh"] for r in daily.values()}
        assert got == {date(2026, 3, 28): pytest.approx(100.0, rel=1e-12),
                       date(2026, 3, 29): pytest.approx(2200.0, rel=1e-12)}
    finally:
        harness.close_stores()
