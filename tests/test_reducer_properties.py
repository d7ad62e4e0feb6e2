"""Property tests: reducer + DuckDB rollups agree with the naive reference at every tier.

Invariant 1 (exact at every tier, no average of averages), 3 (energy is the integral of power,
gaps contribute nothing), 4 (counters never go negative or spike), 5 (missing is not zero) and
7 (incremental rollups after every commit give the same as computing from raw samples).
"""

from __future__ import annotations

import itertools
import math
import random
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from sunarchive.profiles.spec import Profile
from sunarchive.reducer import Reducer
from tests.support.reference import NS, Harness, RawSample, differences, gap_holds, reference_rows
from tests.support.scenarios import (
    LATENESS_S,
    ZONES,
    Scenario,
    feed,
    make_profile,
    scenario_samples,
    scenarios,
    utc,
)

pytestmark = pytest.mark.engine


def _run(sc: Scenario, folder: Path) -> tuple[Profile, list[RawSample], Harness]:
    profile = make_profile(sc.max_gap_s)
    samples = scenario_samples(sc)
    harness = Harness(profile, folder, zones=ZONES, series=range(len(sc.modes)),
                      lateness_s=LATENESS_S)
    feed(harness, samples, sc)
    return profile, samples, harness


@settings(max_examples=35, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(sc=scenarios)
def test_every_tier_matches_reference(sc: Scenario, tmp_path_factory: pytest.TempPathFactory
                                      ) -> None:
    profile, samples, harness = _run(sc, tmp_path_factory.mktemp("prop"))
    try:
        assert harness.too_late_samples == 0  # every delay was inside the allowance
        expected = reference_rows(profile, samples, "1s")
        assert differences(expected, harness.rows("1s")) == []
        for tier in ("5min", "1hour"):
            expected = reference_rows(profile, samples, tier)
            for zone in ZONES:
                assert differences(expected, harness.rows(tier, zone)) == [], (tier, zone)
        for zone in ZONES:
            expected = reference_rows(profile, samples, "daily", zone)
            assert differences(expected, harness.rows("daily", zone)) == [], ("daily", zone)
    finally:
        harness.close_stores()

    # Gaps are reported once each, exactly where the reference finds them.
    want = sorted((sid, a, b) for sid, found in gap_holds(profile, samples, "watts").items()
                  for a, b in found)
    got = sorted((e.series_id, e.time_s, e.end_s) for e in harness.events if e.kind == "gap")
    assert len(got) == len(want)
    for (ws, wa, wb), (gs, ga, gb) in zip(want, got, strict=True):
        assert ws == gs
        assert gb is not None
        assert math.isclose(wa / NS, ga, abs_tol=1e-6)
        assert math.isclose(wb / NS, gb, abs_tol=1e-6)


@settings(max_examples=25, deadline=None, derandomize=True, database=None)
@given(sc=scenarios)
def test_counter_increase_never_negative_nor_spiking(sc: Scenario) -> None:
    """Invariant 4 on the reducer's own rows: increase ≥ 0; with max_rate_per_s a second's
    increase never exceeds rate × Σ max(elapsed, 1 s) of its samples."""
    profile = make_profile(sc.max_gap_s)
    samples = scenario_samples(sc)
    rate = profile.field("lifetime").max_rate_per_s
    assert rate is not None
    bound: dict[tuple[int, int], float] = {}
    for sid in range(len(sc.modes)):
        mine = [s for s in samples if s.series == sid and s.get("lifetime") is not None]
        for prev, cur in itertools.pairwise(mine):
            key = (sid, cur.time_ns // NS)
            elapsed = (cur.time_ns - prev.time_ns) / NS
            bound[key] = bound.get(key, 0.0) + rate * max(elapsed, 1.0)
    reducer = Reducer(profile, lateness_s=LATENESS_S)
    names = [f.name for f in profile.fields]
    reducer.add(np.array([s.series for s in samples], np.int32),
                np.array([s.time_ns for s in samples], np.int64),
                {n: np.array([np.nan if s.get(n) is None else s.get(n) for s in samples])
                 for n in names})
    rows = reducer.flush().fresh
    assert len(rows) > 0
    today = rows.columns["today_increase"]
    lifetime = rows.columns["lifetime_increase"]
    for i in range(len(rows)):
        key = (int(rows.series_id[i]), int(rows.time_s[i]))
        assert np.isnan(today[i]) or today[i] >= 0
        if not np.isnan(lifetime[i]):
            assert 0 <= lifetime[i] <= bound.get(key, 0.0) * (1 + 1e-12), key


# -- too-late samples --------------------------------------------------------------------------
def test_too_late_samples_merge_exact_gauge_stats(tmp_path_factory: pytest.TempPathFactory
                                                  ) -> None:
    profile = make_profile(5.0)
    base = utc(2026, 5, 4, 12, 0) * NS - 20 * NS  # 11:59:40 UTC, 30 s of 10 Hz data
    rng = random.Random(7)

    def sample(t: int, volts: float, watts: float) -> RawSample:
        return RawSample(0, t, {"volts": volts, "watts": watts, "today": None,
                                "lifetime": None, "mode": None, "alarm": None})

    on_time = [sample(base + k * NS // 10, round(rng.uniform(220, 240), 2),
                      round(rng.uniform(0, 900), 1)) for k in range(300)]
    harness = Harness(profile, tmp_path_factory.mktemp("late"), lateness_s=LATENESS_S)
    try:
        for second in range(30):
            harness.add(on_time[second * 10:(second + 1) * 10])
            harness.close()
        closed = harness.reducer.closed_until_s
        assert closed is not None and closed >= base // NS + 25
        # the 11:55 five-minute bucket (and the 11:00 hour) are materialized already
        assert harness.stores["UTC"].horizon(profile.name, "5min") == base // NS + 20
        energy_before = {k: r["watts_energy_wh"] for k, r in harness.rows("1s").items()}
        # Three samples for seconds long closed (beyond the 2 s allowance), off the grid.
        late = [sample(base + 5 * NS + 33_000_000, 999.0, 5000.0),
                sample(base + 5 * NS + 77_000_000, 1.5, 0.0),
                sample(base + 12 * NS + 530_000_000, 235.0, 100.0)]
        harness.add(late)
        result = harness.close()
        assert result.too_late_samples == 3
        assert harness.reducer.too_late_total == 3
        assert any(e.kind == "late_samples" for e in result.events)
        harness.close(final=True)

        every = on_time + late
        stored = harness.rows("1s")
        want_all = reference_rows(profile, every, "1s")
        want_on_time = reference_rows(profile, on_time, "1s")
        assert set(stored) == set(want_all)
        gauge_cols = [c for c in want_all[next(iter(want_all))]
                      if c.startswith(("volts_", "watts_")) and c != "watts_energy_wh"]
        for key, row in want_all.items():
            for col in [*gauge_cols, "sample_count", "covered_s"]:
                assert math.isclose(stored[key][col], row[col], rel_tol=1e-9, abs_tol=1e-9), (
                    key, col, stored[key][col], row[col])
            # energy is not revised by late samples
            assert stored[key]["watts_energy_wh"] == pytest.approx(
                want_on_time[key]["watts_energy_wh"], rel=1e-9, abs=1e-9)
            if key in energy_before:
                assert stored[key]["watts_energy_wh"] == pytest.approx(energy_before[key],
                                                                       rel=1e-12, abs=1e-12)
        row5 = stored[(0, base // NS + 5)]
        assert row5["sample_count"] == 12 and row5["volts_count"] == 12
        assert row5["volts_max"] == 999.0 and row5["volts_min"] == 1.5

        # The rollups were re-materialized with the merged rows (no average of averages).
        for tier in ("5min", "1hour", "daily"):
            want = reference_rows(profile, every, tier)
            got = harness.rows(tier)
            on_time_tier = reference_rows(profile, on_time, tier)
            for key, row in want.items():
                row["watts_energy_wh"] = on_time_tier[key]["watts_energy_wh"]
            assert differences(want, got) == [], tier
    finally:
        harness.close_stores()
