"""Energy is the time integral of power (invariant 3) and missing is not zero (invariant 5).

Right for 10 Hz samples and 35 s polls alike: each sample holds until the next one, split
across second / 5-minute / hour boundaries; a hold longer than ``max_gap_s`` contributes
nothing and is reported as a ``gap`` event; gaps get no invented rows, and a gauge without
values in a bucket is NULL, not 0.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sunarchive.profiles.loader import load_profiles
from sunarchive.profiles.spec import Profile
from tests.support.reference import (
    NS,
    Harness,
    RawSample,
    differences,
    exact_variant,
    reference_rows,
    resolution_tolerances,
)

pytestmark = pytest.mark.engine

PROFILES = load_profiles()
PS100: Profile = PROFILES["ps100_readings"]  # 10 Hz panel, max_gap_s 5, energy_wh
DTU: Profile = PROFILES["dtu"]               # 35 s polls, max_gap_s 120, pv_power_energy_wh
HOUR = int(datetime(2026, 6, 10, 11, tzinfo=UTC).timestamp())  # an hour boundary, UTC
WATTS = 87.5

# The shipped ps100 profile declares sensor resolution, so its stored 1 s rows are rounded
# (energy to µWh per row): checked within that resolution. Its exact variant must match to 1e-9.
variants = pytest.mark.parametrize("exact", [True, False], ids=["exact", "shipped"])


def ps100(exact: bool) -> Profile:
    return exact_variant(PS100) if exact else PS100


def energy_tol(profile: Profile, tier: str) -> float:
    return resolution_tolerances(profile, tier).get("energy_wh", 0.0)


def panel(t_ns: int, power: float | None = WATTS, voltage: float | None = 20.0) -> RawSample:
    return RawSample(0, t_ns, {"voltage": voltage, "current": None if power is None else 4.375,
                               "power": power, "temperature": None})


def feed_in_chunks(harness: Harness, samples: list[RawSample], chunk_s: int) -> None:
    """Feed in time order, closing every ``chunk_s`` seconds of data, then flush."""
    chunk: list[RawSample] = []
    boundary = samples[0].time_ns + chunk_s * NS
    for s in samples:
        if s.time_ns >= boundary:
            harness.add(chunk)
            harness.close()
            chunk, boundary = [], boundary + chunk_s * NS
        chunk.append(s)
    harness.add(chunk)
    harness.close(final=True)


@variants
def test_10hz_constant_power_for_an_hour(exact: bool, tmp_path: Path) -> None:
    profile = ps100(exact)
    rng = random.Random(1)
    times = [HOUR * NS + k * NS // 10 + (rng.randint(-30, 30) * 1_000_000 if 0 < k < 36000
                                         else 0) for k in range(36001)]
    samples = [panel(t) for t in times]
    harness = Harness(profile, tmp_path)
    feed_in_chunks(harness, samples, 60)
    try:
        hourly = harness.rows("1hour")
        assert hourly[(0, HOUR)]["energy_wh"] == pytest.approx(
            WATTS, rel=1e-9, abs=energy_tol(profile, "1hour"))
        assert hourly[(0, HOUR)]["power_avg"] == pytest.approx(WATTS, rel=1e-12)
        assert hourly[(0, HOUR)]["sample_count"] == 36000
        assert hourly[(0, HOUR)]["covered_s"] == 3600
        assert hourly[(0, HOUR + 3600)]["energy_wh"] == 0.0  # the last sample holds nothing
        five = harness.rows("5min")
        for k in range(12):
            assert five[(0, HOUR + 300 * k)]["energy_wh"] == pytest.approx(
                WATTS / 12, rel=1e-9, abs=energy_tol(profile, "5min"))
        seconds = harness.rows("1s")
        assert len([k for k in seconds if HOUR <= k[1] < HOUR + 3600]) == 3600
        for (_, t), row in seconds.items():
            if t < HOUR + 3600:
                assert row["energy_wh"] == pytest.approx(WATTS / 3600, rel=1e-9,
                                                         abs=energy_tol(profile, "1s"))
        assert not [e for e in harness.events if e.kind == "gap"]
        for tier in ("5min", "1hour"):
            assert differences(reference_rows(profile, samples, tier), harness.rows(tier),
                               col_abs=resolution_tolerances(profile, tier)) == []
    finally:
        harness.close_stores()


def test_35s_polls_split_across_second_and_5min_boundaries(tmp_path: Path) -> None:
    """Polls 35 s apart, off the second grid: the hour still gets exactly P Wh, every 5-min
    bucket P/12 (in the 5-min tier and summed over its 1 s rows), a polled second P/3600; the
    rest of each hold lands in energy-only rows, one after the poll's second and one at each
    5-minute boundary the hold crosses (issue 15 point 7: not one row per second)."""
    first = HOUR * NS - 17_300_000_000  # 17.3 s before the hour: holds straddle everything
    times = [first + k * 35 * NS for k in range(107)]
    samples = [RawSample(0, t, {"pv_power": WATTS, "today_production": None,
                                "total_production": None, "alarm_flag": 0.0}) for t in times]
    harness = Harness(DTU, tmp_path)
    feed_in_chunks(harness, samples, 300)
    try:
        hourly = harness.rows("1hour")
        assert hourly[(0, HOUR)]["pv_power_energy_wh"] == pytest.approx(WATTS, rel=1e-9)
        five = harness.rows("5min")
        for k in range(12):
            row = five[(0, HOUR + 300 * k)]
            assert row["pv_power_energy_wh"] == pytest.approx(WATTS / 12, rel=1e-9)
            assert row["sample_count"] in (8, 9)  # 300 / 35 polls per bucket
        seconds = {k: r for k, r in harness.rows("1s").items() if HOUR <= k[1] < HOUR + 3600}
        polled = [r for r in seconds.values() if r["sample_count"] > 0]
        energy_only = [r for r in seconds.values() if r["sample_count"] == 0]
        assert len(polled) == sum(1 for t in times if HOUR <= t // NS < HOUR + 3600)
        # one row after each poll's second, one at each of the hour's 12 boundaries (the
        # polls' seconds, .7 s into a second, never fall on a boundary or on each other)
        assert len(energy_only) == len(polled) + 12
        for row in polled:
            assert row["pv_power_energy_wh"] == pytest.approx(WATTS / 3600, rel=1e-9)
        for k in range(12):
            bucket = [r["pv_power_energy_wh"] for (_, t), r in seconds.items()
                      if HOUR + 300 * k <= t < HOUR + 300 * (k + 1)]
            assert sum(bucket) == pytest.approx(WATTS / 12, rel=1e-9)
        for row in energy_only:  # statistics are NULL there, counts 0, never invented zeros
            assert row["pv_power_avg"] is None and row["pv_power_min"] is None
            assert row["pv_power_stddev"] is None and row["pv_power_count"] == 0
            assert row["today_production_increase"] is None
            assert row["alarm_flag_any"] is None and row["covered_s"] == 0
        for tier in ("1s", "5min", "1hour", "daily"):
            assert differences(reference_rows(DTU, samples, tier), harness.rows(tier)) == []
    finally:
        harness.close_stores()


@variants
def test_gap_longer_than_limit_contributes_nothing_and_is_reported(exact: bool,
                                                                   tmp_path: Path) -> None:
    profile = ps100(exact)
    start = HOUR * NS + 60 * NS
    tenth = NS // 10
    times = ([start + k * tenth for k in range(600)]                 # [0, 59.9]
             + [start + 80 * NS + k * tenth for k in range(600)]     # [80, 139.9]; 20.1 s gap
             + [start + 144_900_000_000]                             # hold of exactly 5.0 s
             + [start + 150 * NS + k * tenth for k in range(101)])   # 5.1 s hold: a gap
    samples = [panel(t) for t in times]
    harness = Harness(profile, tmp_path)
    feed_in_chunks(harness, samples, 7)
    try:
        counted_s = 59.9 + 59.9 + 5.0 + 10.0
        energies = [r["energy_wh"] for r in harness.rows("1s").values()
                    if r["energy_wh"] is not None]
        tol = len(energies) * energy_tol(profile, "1s")
        assert sum(energies) == pytest.approx(WATTS * counted_s / 3600, rel=1e-9, abs=tol)
        hourly = harness.rows("1hour")[(0, HOUR)]
        assert hourly["energy_wh"] == pytest.approx(WATTS * counted_s / 3600, rel=1e-9, abs=tol)

        gaps = sorted((e.time_s, e.end_s) for e in harness.events if e.kind == "gap")
        assert gaps == [pytest.approx(((start + 59_900_000_000) / NS, (start + 80 * NS) / NS)),
                        pytest.approx(((start + 144_900_000_000) / NS, (start + 150 * NS) / NS))]
        assert all(e.series_id == 0 for e in harness.events if e.kind == "gap")
        stored = harness.stores["UTC"].sql(
            "SELECT count(*) FROM sunarchive_events WHERE kind = 'gap'").rows()
        assert stored == [(2,)]

        seconds = harness.rows("1s")
        s0 = start // NS
        assert not [t for (_, t) in seconds if s0 + 60 <= t < s0 + 80]  # no invented rows
        one = energy_tol(profile, "1s") + 1e-12
        assert seconds[(0, s0 + 59)]["energy_wh"] == pytest.approx(WATTS * 0.9 / 3600, abs=one)
        # the 5.0 s hold [139.9, 144.9): 0.1 s in its first second (139), [144, 144.9) in
        # the second of its end, and [140, 144) in one energy-only row at 140 (one row per
        # 5-minute bucket, not one per second)
        assert seconds[(0, s0 + 140)]["energy_wh"] == pytest.approx(WATTS * 4 / 3600, abs=one)
        assert seconds[(0, s0 + 140)]["sample_count"] == 0
        assert not [t for (_, t) in seconds if s0 + 141 <= t < s0 + 144]
        # [144, 144.9) from the 5.0 s hold; the 5.1 s hold after 144.9 is a gap
        assert seconds[(0, s0 + 144)]["energy_wh"] == pytest.approx(WATTS * 0.9 / 3600, abs=one)
        assert seconds[(0, s0 + 144)]["sample_count"] == 1
        assert not [t for (_, t) in seconds if s0 + 145 <= t < s0 + 150]
        for tier in ("1s", "5min", "1hour"):
            assert differences(reference_rows(profile, samples, tier), harness.rows(tier),
                               col_abs=resolution_tolerances(profile, tier)) == []
    finally:
        harness.close_stores()


@variants
def test_missing_values_stay_null(exact: bool, tmp_path: Path) -> None:
    """1 Hz panel data: voltage absent for a whole 5-min bucket, temperature never sent, and
    no samples at all for ten minutes."""
    def at(minute: int, second: int) -> int:
        return (HOUR + minute * 60 + second) * NS

    samples = ([panel(at(0, s)) for s in range(300)]
               + [panel(at(5, s), voltage=None) for s in range(300)]
               + [panel(at(20, s), voltage=19.0 + (s % 3)) for s in range(300)])
    profile = ps100(exact)
    harness = Harness(profile, tmp_path)
    feed_in_chunks(harness, samples, 60)
    try:
        five = harness.rows("5min")
        assert set(five) == {(0, HOUR), (0, HOUR + 300), (0, HOUR + 1200)}  # none for the gap
        blank = five[(0, HOUR + 300)]
        for col in ("voltage_avg", "voltage_min", "voltage_max", "voltage_stddev"):
            assert blank[col] is None
        assert blank["voltage_count"] == 0
        assert blank["power_count"] == 300 and blank["sample_count"] == 300
        for row in five.values():
            assert row["temperature_avg"] is None and row["temperature_count"] == 0
            assert row["temperature_min"] is None and row["temperature_stddev"] is None
        hourly = harness.rows("1hour")[(0, HOUR)]
        assert hourly["voltage_count"] == 600
        assert hourly["voltage_avg"] == pytest.approx((300 * 20.0 + 100 * (19 + 20 + 21)) / 600)
        assert hourly["voltage_min"] == 19.0 and hourly["voltage_max"] == 21.0
        assert hourly["covered_s"] == 900
        # energy: [0, 599 s) and [1200, 1499 s); the 10-minute hold is a gap
        assert hourly["energy_wh"] == pytest.approx(WATTS * (599 + 299) / 3600, rel=1e-9,
                                                    abs=energy_tol(profile, "1hour"))
        seconds = harness.rows("1s")
        assert seconds[(0, HOUR + 400)]["voltage_avg"] is None
        assert not [t for (_, t) in seconds if HOUR + 600 <= t < HOUR + 1200]
        for tier in ("1s", "5min", "1hour", "daily"):
            assert differences(reference_rows(profile, samples, tier), harness.rows(tier),
                               col_abs=resolution_tolerances(profile, tier)) == []
    finally:
        harness.close_stores()
