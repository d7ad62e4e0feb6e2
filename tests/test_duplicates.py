"""Issue 15 points 5 and 6 (invariant 9, "a point is a point"): an exact duplicate replaces
the earlier value, and data delivered again for stored seconds never adds energy."""

from __future__ import annotations

import itertools
import json
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sunarchive.reducer import Reducer
from tests.support.cli import cli
from tests.support.importing import T0
from tests.support.reference import Harness, RawSample, differences, reference_rows
from tests.support.scenarios import Scenario, make_profile, scenario_samples, scenarios
from tests.support.serving import Served, serve, stop
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

HEADER = "time,panel_id,voltage,current,power,temperature"


def _csv(path: Path, start_s: int, end_s: int, offset_ms: int, power_w: float) -> Path:
    """10 Hz samples of panel p1 in [start_s, end_s) after T0, shifted by ``offset_ms``."""
    lines = [HEADER]
    for k in range(start_s * 10, end_s * 10):
        t = T0 + k / 10 + offset_ms / 1000
        lines.append(f"{t:.3f},p1,20,{power_w / 20},{power_w},30")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _overlapping_imports(tmp_path: Path, target: list[str]) -> dict[int, tuple[Any, ...]]:
    """Import 60 s at 500 W, then 60 s at 517 W overlapping its last 30 s; the 1 s rows by
    second after T0: (power_avg, power_count, energy_wh, covered_s)."""
    for name, start, offset_ms, watts in (("a", 0, 0, 500.0), ("b", 30, 50, 517.0)):
        csv = _csv(tmp_path / f"{name}.csv", start, start + 60, offset_ms, watts)
        result = cli("import", *target, str(csv), "--json")
        assert json.loads(result.stdout.strip().splitlines()[-1])["imported"] == 600
    out = cli("sql", *target, "--format", "json",
              "SELECT time, power_avg, power_count, energy_wh, covered_s "
              "FROM ps100_readings_1s ORDER BY time").stdout
    return {int(datetime.fromisoformat(r["time"]).replace(tzinfo=UTC).timestamp()) - T0:
            (r["power_avg"], r["power_count"], r["energy_wh"], r["covered_s"])
            for r in json.loads(out)}


@pytest.mark.parametrize("engine", ["duckdb", "postgresql"])
def test_overlapping_import_never_adds_energy(tmp_path: Path, engine: str,
                                              request: pytest.FixtureRequest) -> None:
    """The issue's repro: a second import whose samples fall in stored seconds gave a second
    with an average of 258.5 W and 0.1436 Wh (= 517 W). Its energy must stay the covered time
    × the merged average power."""
    target = (["--db", str(tmp_path / "o.duckdb")] if engine == "duckdb"
              else ["--database-url", request.getfixturevalue("pg_url")])
    by_second = _overlapping_imports(tmp_path, target)
    assert len(by_second) == 90
    for second in range(31, 59):   # stored by the first import, fully covered by its holds
        avg, count, energy, covered = by_second[second]
        assert count == 20 and covered == 1
        assert avg == pytest.approx(508.5)
        assert energy * 3600 == pytest.approx(avg * 1.0, rel=1e-3), second
    for second in range(61, 89):   # new seconds: only the second import
        avg, count, energy, _ = by_second[second]
        assert (avg, count) == (517.0, 10)
        assert energy * 3600 == pytest.approx(517.0, rel=1e-3)


# -- the reducer and a real DuckDB store against the naive reference -----------------------

def _point(sample: RawSample) -> dict[str, float | None]:
    return {k: v for k, v in sample.values.items() if v is not None}


def _deduplicated(stream: list[RawSample]) -> list[RawSample]:
    """The naive rule: per (series, time_ns) the fields merge, the last present value wins."""
    merged: dict[tuple[int, int], dict[str, float | None]] = {}
    for s in stream:
        merged.setdefault((s.series, s.time_ns), {}).update(_point(s))
    return [RawSample(sid, t, values) for (sid, t), values in sorted(merged.items())]


@dataclass(frozen=True)
class DupScenario:
    base: Scenario
    share: float      # fraction of points delivered again
    changed: float    # fraction of the early copies (same or later body) with other values


dup_scenarios = st.builds(DupScenario, base=scenarios, share=st.sampled_from([0.1, 0.5, 1.0]),
                          changed=st.sampled_from([0.0, 0.5, 1.0]))


def _copy(rng: random.Random, sample: RawSample, change: bool) -> RawSample:
    """Another delivery of ``sample``: some fields left out, others changed when ``change``."""
    values: dict[str, float | None] = {}
    for name, value in sample.values.items():
        if rng.random() < 0.3:
            continue
        values[name] = _other_value(rng, name) if change else value
    return RawSample(sample.series, sample.time_ns, values)


def _other_value(rng: random.Random, name: str) -> float:
    """A changed value valid for the field of :func:`make_profile`."""
    if name == "mode":
        return float(rng.randint(0, 3))
    if name == "alarm":
        return float(rng.random() < 0.5)
    if name in ("today", "lifetime"):
        return round(rng.uniform(0, 1e5), 3)
    return round(rng.uniform(-100, 2000), 3)


def _deliveries(sc: DupScenario, samples: list[RawSample]
                ) -> list[tuple[list[RawSample], list[RawSample]]]:
    """Chunks of (first add, second add) in time order; each chunk is followed by a close.
    A re-delivered point comes again in the same add, in the next add before the close or up
    to three closes later, possibly changed."""
    rng = random.Random(sc.base.seed ^ 0xD0B)
    cuts = sorted(rng.randint(0, len(samples)) for _ in range(sc.base.chunks - 1))
    bounds = [0, *cuts, len(samples)]
    chunks: list[tuple[list[RawSample], list[RawSample]]] = []
    for lo, hi in itertools.pairwise(bounds):
        part = samples[lo:hi]
        split = rng.randint(0, len(part))
        chunks.append((list(part[:split]), list(part[split:])))
    late: list[tuple[int, RawSample]] = []
    for index, (first, _) in enumerate(chunks):
        for sample in list(first):
            if rng.random() >= sc.share:
                continue
            where = rng.choice(["same", "later", "after"])
            if where == "after":
                late.append((index + rng.randint(1, 3), sample))
                continue
            copy = _copy(rng, sample, rng.random() < sc.changed)
            (first if where == "same" else chunks[index][1]).append(copy)
    return _with_late_copies(rng, chunks, late, sc.changed)


def _with_late_copies(rng: random.Random, chunks: list[tuple[list[RawSample], list[RawSample]]],
                      late: list[tuple[int, RawSample]], changed: float
                      ) -> list[tuple[list[RawSample], list[RawSample]]]:
    """Copies of points (as merged by then) delivered in later chunks — typically after
    their second was written — with other values in a share ``changed`` of them."""
    final = {(s.series, s.time_ns): s for s in _deduplicated(
        [s for a, b in chunks for s in (*a, *b)])}
    while late and max(i for i, _ in late) >= len(chunks):
        chunks.append(([], []))
    for index, sample in late:
        chunks[index][rng.randint(0, 1)].append(
            _copy(rng, final[(sample.series, sample.time_ns)], change=rng.random() < changed))
    return chunks


@settings(max_examples=25, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(sc=dup_scenarios)
def test_duplicates_give_the_rows_of_the_deduplicated_stream(
        sc: DupScenario, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Exact duplicates in the same body, a later body and after their second was written,
    changed or not, give the same stored rows as the de-duplicated stream (last value wins),
    and never count as samples nor as too late."""
    profile = make_profile(sc.base.max_gap_s)
    samples = scenario_samples(sc.base)
    harness = Harness(profile, tmp_path_factory.mktemp("dups"),
                      series=range(len(sc.base.modes)))
    harness.reducer = Reducer(profile, lateness_s=2.0, dedup_window_s=3600)
    chunks = _deliveries(sc, samples)
    try:
        for first, second in chunks:
            harness.add(first)
            harness.add(second)
            harness.close()
        harness.close(final=True)
        assert harness.too_late_samples == 0
        stream = [s for a, b in chunks for s in (*a, *b)]
        expected_samples = _deduplicated(stream)
        for tier in ("1s", "5min"):
            expected = reference_rows(profile, expected_samples, tier)
            assert differences(expected, harness.rows(tier)) == [], tier
        assert sum(r.duplicates for r in harness.results) >= len(stream) - len(
            expected_samples) - sum(1 for s in stream if not _point(s))
    finally:
        harness.close_stores()


# -- over HTTP: a client retrying one body ---------------------------------------------------

@pytest.fixture
def server(tmp_path: Path) -> Iterator[Served]:
    served = serve(tmp_path / "retry.duckdb")
    yield served
    if served.process.poll() is None:
        stop(served)


def _stored(served: Served, panel: str) -> list[dict[str, Any]]:
    body = httpx.get(served.url + "/api/v1/measurements/ps100_readings",
                     params={"tier": "1s", "tag": f"panel_id={panel}"}, timeout=10).json()
    return [dict(zip(body["columns"], row, strict=True)) for row in body["rows"]]


def _complete(stored: list[dict[str, Any]], samples: int) -> list[dict[str, Any]] | None:
    return stored if sum(r["power_count"] for r in stored) == samples else None


def _post(served: Served, body: str) -> None:
    answer = httpx.post(served.url + "/api/v2/write", params={"bucket": "b"}, content=body)
    assert answer.status_code == 204, answer.text


def test_a_retried_body_is_stored_once(server: Served) -> None:
    """Home Assistant's client retries a body 3 times after a timeout: the retries come after
    the points were written, and no count or statistic moves. A later body with another value
    for the same point (before its second closed) replaces it, as InfluxDB does."""
    now_ns = time.time_ns()
    body = "\n".join(f"ps100_readings,panel_id=retry power={40 + k},voltage=20 "
                     f"{now_ns + k * 100_000_000}" for k in range(20))
    _post(server, body)
    first = wait_until(lambda: _complete(_stored(server, "retry"), 20), "the body's rows",
                       poll_s=0.2)
    for _ in range(3):
        _post(server, body)
    _post(server, f"ps100_readings,panel_id=replace power=1,voltage=20 {now_ns}\n"
                  f"ps100_readings,panel_id=replace voltage=21 {now_ns}")
    _post(server, f"ps100_readings,panel_id=replace power=2 {now_ns}")
    replaced = wait_until(lambda: _stored(server, "replace"), "the replaced point", poll_s=0.2)
    counters = wait_until(lambda: (
        c if (c := httpx.get(server.url + "/api/v1/status", timeout=10).json()["counters"]
              ).get("duplicates") == 3 * 20 + 2 else None), "the duplicates counted", poll_s=0.2)
    assert counters["too_late_samples"] == 0
    assert _stored(server, "retry") == first
    assert [(r["power_avg"], r["power_count"], r["voltage_avg"], r["sample_count"])
            for r in replaced] == [(2.0, 1, 21.0, 1)]


def test_a_retry_after_a_restart_within_the_window_changes_nothing(tmp_path: Path) -> None:
    """The points of the dedup window survive a kill -9: a client retrying after the server
    came back stores nothing twice."""
    db = tmp_path / "restart.duckdb"
    served = serve(db)
    now_ns = time.time_ns()
    body = "\n".join(f"ps100_readings,panel_id=again power={60 + k},voltage=20 "
                     f"{now_ns + k * 100_000_000}" for k in range(20))
    try:
        _post(served, body)
        first = wait_until(lambda: _complete(_stored(served, "again"), 20), "the body's rows",
                           poll_s=0.2)
        wait_until(lambda: httpx.get(
            served.url + "/api/v1/status", timeout=10).json()["counters"].get(
            "rows_written", 0) >= len(first), "the commit's end", poll_s=0.2)
    finally:
        served.process.kill()
        served.process.wait(30)
    again = serve(db)
    try:
        _post(again, body)
        wait_until(lambda: httpx.get(
            again.url + "/api/v1/status", timeout=10).json()["counters"].get(
            "duplicates") == 20, "the retry counted as duplicates", poll_s=0.2)
        assert _stored(again, "again") == first
    finally:
        stop(again)


def _ten_hz(panel: str, start_ns: int, watts: list[float]) -> str:
    return "\n".join(f"ps100_readings,panel_id={panel} power={w},voltage=20 "
                     f"{start_ns + k * 100_000_000}" for k, w in enumerate(watts))


def _corrected(watts: list[float], index: int, value: float) -> list[float]:
    return [value if k == index else w for k, w in enumerate(watts)]


def _check_replaced(stored: list[dict[str, Any]], watts: list[float]) -> None:
    """One sample per point, the statistics and energy of ``watts`` (the last point's hold
    is still open: its energy is not counted yet)."""
    assert sum(r["power_count"] for r in stored) == len(watts)
    assert sum(r["sample_count"] for r in stored) == len(watts)
    assert max(r["power_max"] for r in stored if r["power_count"]) == max(watts)
    total_w = sum((r["power_avg"] or 0) * r["power_count"] for r in stored)
    assert total_w == pytest.approx(sum(watts), abs=0.01 * len(watts))  # avg is rounded
    energy_wh = sum(r["energy_wh"] or 0 for r in stored)
    assert energy_wh == pytest.approx(sum(watts[:-1]) * 0.1 / 3600,
                                      abs=1e-6 * len(stored))  # rounded to µWh per row


def _corrected_rows(served: Served, panel: str, watts: list[float]
                    ) -> list[dict[str, Any]] | None:
    stored = _stored(served, panel)
    peaks = [r["power_max"] for r in stored if r["power_count"]]
    return stored if peaks and max(peaks) == max(watts) else None


def test_a_corrected_point_replaces_the_stored_one(server: Served) -> None:
    """A point written again with another value after its second was written replaces it:
    the seconds it touches are recomputed, no count moves, the energy is the new value's."""
    now_ns = time.time_ns()
    watts = [40.0 + k for k in range(20)]
    _post(server, _ten_hz("fix", now_ns, watts))
    wait_until(lambda: _complete(_stored(server, "fix"), 20), "the body's rows")
    fixed = _corrected(watts, 3, 500.0)
    _post(server, f"ps100_readings,panel_id=fix power=500 {now_ns + 3 * 100_000_000}")
    _check_replaced(wait_until(lambda: _corrected_rows(server, "fix", fixed),
                               "the corrected row"), fixed)
    counters = httpx.get(server.url + "/api/v1/status", timeout=10).json()["counters"]
    assert counters["too_late_samples"] == 0
    assert counters["duplicates"] == 1


def test_a_corrected_point_after_a_restart_replaces_the_stored_one(tmp_path: Path) -> None:
    """The same after a kill -9, within the dedup window: the remembered points come back
    from disk and the correction replaces the point written by the earlier run."""
    db = tmp_path / "restart-fix.duckdb"
    served = serve(db)
    now_ns = time.time_ns()
    watts = [60.0 + k for k in range(20)]
    try:
        _post(served, _ten_hz("again", now_ns, watts))
        first = wait_until(lambda: _complete(_stored(served, "again"), 20), "the body's rows")
        wait_until(lambda: httpx.get(
            served.url + "/api/v1/status", timeout=10).json()["counters"].get(
            "rows_written", 0) >= len(first), "the commit's end")
    finally:
        served.process.kill()
        served.process.wait(30)
    again = serve(db)
    try:
        fixed = _corrected(watts, 12, 700.0)
        _post(again, f"ps100_readings,panel_id=again power=700 {now_ns + 12 * 100_000_000}")
        _check_replaced(wait_until(lambda: _corrected_rows(again, "again", fixed),
                                   "the corrected row"), fixed)
    finally:
        stop(again)
