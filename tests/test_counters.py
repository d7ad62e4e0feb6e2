"""Counters never produce negative or spiking increase (invariant 4).

The rule (reducer module docstring): the increase of a sample is its difference to the previous
sample of the series, in the sample's own second. A decrease is a reset (midnight, restart,
replacement) and contributes the new value only if the field declares ``max_rate_per_s`` and
the value is within rate × max(elapsed, 1 s); otherwise nothing. With ``max_rate_per_s`` a rise
faster than the rate is a spike and contributes nothing.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from sunarchive.profiles.loader import load_profiles, parse_profile
from sunarchive.profiles.spec import Profile
from tests.support.reference import NS, Harness, RawSample, differences, reference_rows

pytestmark = pytest.mark.engine

ZONE = "Europe/Berlin"
POLL_S = 35

METER: Profile = parse_profile({
    "name": "meter",
    "tags": ["device"],
    "max_gap_s": 120,
    "fields": {
        "lifetime": {"unit": "Wh", "kind": "counter", "max_rate_per_s": 1.0},
        "lifetime_raw": {"unit": "Wh", "kind": "counter"},
    },
}, "<test>")


def local(day: date, hour: int = 0) -> int:
    return int(datetime(day.year, day.month, day.day, hour, tzinfo=ZoneInfo(ZONE)).timestamp())


def solar_w(t_s: int) -> float:
    """A clear-sky-like curve: 0 at night, up to 800 W at local 13:00."""
    here = datetime.fromtimestamp(t_s, ZoneInfo(ZONE))
    hour = here.hour + here.minute / 60 + here.second / 3600
    if not 6 <= hour <= 20:
        return 0.0
    return round(800.0 * math.sin(math.pi * (hour - 6) / 14), 1)


def dtu_day_samples(first: date, days: int) -> tuple[list[RawSample], dict[date, float]]:
    """35 s DTU polls over whole local days: today_production resets at local midnight."""
    start, end = local(first), local(first + timedelta(days=days))
    samples: list[RawSample] = []
    produced: dict[date, float] = {}
    lifetime = 1_000_000.0
    today = 0.0
    prev_t: int | None = None
    prev_p = 0.0
    for t in range(start, end, POLL_S):
        day = datetime.fromtimestamp(t, ZoneInfo(ZONE)).date()
        if prev_t is not None:
            gained = prev_p * (t - prev_t) / 3600  # what the inverter integrates
            lifetime += gained
            today += gained
            if datetime.fromtimestamp(prev_t, ZoneInfo(ZONE)).date() != day:
                today = 0.0  # the DTU resets its daily yield at local midnight
        produced[day] = today
        p = solar_w(t)
        samples.append(RawSample(0, t * NS, {"pv_power": p, "today_production": today,
                                             "total_production": lifetime,
                                             "alarm_flag": 0.0}))
        prev_t, prev_p = t, p
    return samples, produced


def test_daily_yield_resets_at_local_midnight(tmp_path: Path) -> None:
    dtu = load_profiles()["dtu"]
    first = date(2026, 6, 10)
    samples, produced = dtu_day_samples(first, 2)
    assert produced[first] > 5000  # a sunny day: "5000 → 0 → grows" at midnight
    harness = Harness(dtu, tmp_path, zones=(ZONE,))
    harness.add(samples)
    harness.close(final=True)
    try:
        seconds = harness.rows("1s", ZONE)
        for row in seconds.values():
            for col in ("today_production_increase", "total_production_increase"):
                assert row[col] is None or row[col] >= 0
        midnight = local(first + timedelta(days=1))
        times = [s.time_ns // NS for s in samples]
        after = seconds[(0, min(t for t in times if t >= midnight))]
        before = seconds[(0, max(t for t in times if t < midnight))]
        assert before["today_production_last"] == pytest.approx(produced[first])
        assert after["today_production_first"] == 0.0
        assert after["today_production_increase"] == 0.0  # not −5000, and no spike
        assert after["total_production_increase"] == 0.0  # night: nothing produced

        daily = harness.rows("daily", ZONE)
        assert {r["day"] for r in daily.values()} == {first, first + timedelta(days=1)}
        for row in daily.values():
            day = row["day"]
            assert row["today_production_increase"] == pytest.approx(produced[day], rel=1e-9)
            assert row["total_production_increase"] == pytest.approx(produced[day], rel=1e-9)
            # the counter agrees with the integral of the power it reports
            assert row["pv_power_energy_wh"] == pytest.approx(produced[day], rel=1e-9)
        for tier in ("5min", "1hour", "daily"):  # (1 s: 172 800 rows, checked above)
            expected = reference_rows(dtu, samples, tier, ZONE)
            assert differences(expected, harness.rows(tier, ZONE)) == [], tier
    finally:
        harness.close_stores()


# (values, increase with max_rate_per_s = 1 Wh/s, increase without a rate); polls 35 s apart,
# so the rate allows 35 Wh per poll.
RESTART = (  # mid-day inverter restart: via 0, and straight to a small value
    [2900, 2930, 2960, 2990, 0, 12, 40, 75, 110, 140, 12, 47, 80],
    [0, 30, 30, 30, 0, 12, 28, 35, 35, 30, 12, 35, 33],
    [0, 30, 30, 30, 0, 12, 28, 35, 35, 30, 0, 35, 33],
)
REPLACEMENT = (  # a new inverter with its own lifetime counter
    [49900, 49930, 49960, 1200, 1230, 1260],
    [0, 30, 30, 0, 30, 30],
    [0, 30, 30, 0, 30, 30],
)
GLITCH = (  # a corrupt reading: with a rate it is a spike and counts nothing
    [500, 530, 100000, 560, 590, 590],
    [0, 30, 0, 0, 30, 0],
    [0, 30, 99470, 0, 30, 0],  # without a rate the documented rule counts the rise
)
CASES = {0: RESTART, 1: REPLACEMENT, 2: GLITCH}


def test_restart_replacement_and_spike(tmp_path: Path) -> None:
    start = local(date(2026, 6, 10), 12)
    samples = [RawSample(sid, (start + k * POLL_S) * NS,
                         {"lifetime": float(v), "lifetime_raw": float(v)})
               for sid, (values, _, _) in CASES.items() for k, v in enumerate(values)]
    harness = Harness(METER, tmp_path, zones=(ZONE,), series=CASES)
    harness.add(samples)
    harness.close(final=True)
    try:
        seconds = harness.rows("1s", ZONE)
        for sid, (values, with_rate, without_rate) in CASES.items():
            for k in range(len(values)):
                row = seconds[(sid, start + k * POLL_S)]
                assert row["lifetime_increase"] == with_rate[k], (sid, k)
                assert row["lifetime_raw_increase"] == without_rate[k], (sid, k)
                assert row["lifetime_increase"] >= 0 and row["lifetime_raw_increase"] >= 0
        daily = harness.rows("daily", ZONE)
        for sid, (_, with_rate, without_rate) in CASES.items():
            (row,) = [r for (s, _), r in daily.items() if s == sid]
            assert row["lifetime_increase"] == pytest.approx(sum(with_rate))
            assert row["lifetime_raw_increase"] == pytest.approx(sum(without_rate))
            assert row["lifetime_count"] == len(with_rate)
        assert daily[(0, local(date(2026, 6, 10)))]["lifetime_last"] == 80.0
        assert daily[(1, local(date(2026, 6, 10)))]["lifetime_first"] == 49900.0
        for tier in ("5min", "1hour", "daily"):
            expected = reference_rows(METER, samples, tier, ZONE)
            assert differences(expected, harness.rows(tier, ZONE)) == [], tier
    finally:
        harness.close_stores()


def test_small_post_restart_value_counts_only_within_rate(tmp_path: Path) -> None:
    """After a restart the first reading counts if it could have been produced since the last
    one (rate × elapsed); a long outage allows more, a 1 s outage allows at least 1 × rate."""
    start = local(date(2026, 6, 10), 12)
    polls = [(0, 3000.0), (35, 3020.0), (635, 400.0),   # 600 s off → up to 600 Wh counts
             (636, 0.0), (637, 1.0), (638, 500.0)]      # 1 Wh in 1 s counts, 499 Wh no
    samples = [RawSample(0, (start + dt) * NS, {"lifetime": v, "lifetime_raw": v})
               for dt, v in polls]
    harness = Harness(METER, tmp_path, zones=(ZONE,))
    harness.add(samples)
    harness.close(final=True)
    try:
        seconds = harness.rows("1s", ZONE)
        got = [seconds[(0, start + dt)]["lifetime_increase"] for dt, _ in polls]
        assert got == [0.0, 20.0, 400.0, 0.0, 1.0, 0.0]
        raw = [seconds[(0, start + dt)]["lifetime_raw_increase"] for dt, _ in polls]
        assert raw == [0.0, 20.0, 0.0, 0.0, 1.0, 499.0]
    finally:
        harness.close_stores()
