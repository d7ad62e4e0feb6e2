"""Tests for the PS100 / INA226 panel simulator."""

from __future__ import annotations

import itertools
import math
import threading
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from sunarchive.model import NS_PER_S, InputError, SampleBatch
from sunarchive.sources.simulator import (
    BUS_VOLTAGE_LSB_V,
    CURRENT_LSB_A,
    POWER_LSB_W,
    TEMPERATURE_LSB_C,
    PanelSimulator,
    SimulatorConfig,
    SimulatorSource,
)
from tests.support.sinks import ListSink

pytestmark = pytest.mark.integration   # each simulated day runs pvlib in a subprocess

MIN_NS = 60 * NS_PER_S
HOUR_NS = 3600 * NS_PER_S
SOLSTICE_NOON = datetime(2024, 6, 21, 11, 0, tzinfo=UTC)  # solar noon in Berlin ≈ 11:08 UTC
CLEAR_SEED = 10      # 2024-06-21 is a clear day for this seed
CLOUDY_SEED = 42     # ... and a broken-cloud day for this one


def ns(value: datetime) -> int:
    return int(value.timestamp()) * NS_PER_S


def panel(batch: SampleBatch, index: int) -> np.ndarray:
    return np.asarray(batch.tag_index == index)


def assert_batches_equal(a: SampleBatch, b: SampleBatch) -> None:
    assert a.measurement == b.measurement
    assert a.tag_sets == b.tag_sets
    np.testing.assert_array_equal(a.time_ns, b.time_ns)
    np.testing.assert_array_equal(a.tag_index, b.tag_index)
    assert a.fields.keys() == b.fields.keys()
    for name in a.fields:
        np.testing.assert_array_equal(a.fields[name], b.fields[name])


def concat(parts: list[SampleBatch]) -> SampleBatch:
    return SampleBatch(
        measurement=parts[0].measurement,
        tag_sets=parts[0].tag_sets,
        tag_index=np.concatenate([p.tag_index for p in parts]),
        time_ns=np.concatenate([p.time_ns for p in parts]),
        fields={k: np.concatenate([p.fields[k] for p in parts]) for k in parts[0].fields},
    )


def test_batch_shape_and_tags() -> None:
    sim = PanelSimulator(SimulatorConfig(panels=3))
    t0 = ns(SOLSTICE_NOON)
    batch = sim.generate(t0, t0 + 10 * NS_PER_S)
    assert batch.measurement == "ps100_readings"
    assert batch.tag_sets == [("panel_1",), ("panel_2",), ("panel_3",)]
    assert set(batch.fields) == {"voltage", "current", "power", "temperature"}
    assert batch.time_ns.dtype == np.int64
    assert batch.tag_index.dtype == np.int32
    assert all(v.dtype == np.float64 for v in batch.fields.values())
    assert not any(np.isnan(v).any() for v in batch.fields.values())
    assert (batch.time_ns >= t0).all() and (batch.time_ns < t0 + 10 * NS_PER_S).all()
    assert (np.diff(batch.time_ns) >= 0).all()
    assert len(sim.generate(t0, t0)) == 0
    assert len(sim.generate(t0, t0 - NS_PER_S)) == 0


def test_deterministic_for_seed() -> None:
    t0 = ns(SOLSTICE_NOON)
    a = PanelSimulator(SimulatorConfig(seed=7)).generate(t0, t0 + MIN_NS)
    b = PanelSimulator(SimulatorConfig(seed=7)).generate(t0, t0 + MIN_NS)
    assert_batches_equal(a, b)
    c = PanelSimulator(SimulatorConfig(seed=8)).generate(t0, t0 + MIN_NS)
    assert len(a.time_ns) != len(c.time_ns) or not np.array_equal(a.time_ns, c.time_ns)
    n = min(len(a), len(c))
    assert not np.array_equal(a.fields["voltage"][:n], c.fields["voltage"][:n])


def test_chunk_independent() -> None:
    t0 = ns(SOLSTICE_NOON) + 30 * MIN_NS
    whole = PanelSimulator(SimulatorConfig(seed=CLOUDY_SEED)).generate(t0, t0 + 2 * MIN_NS)
    sim = PanelSimulator(SimulatorConfig(seed=CLOUDY_SEED))
    halves = concat([sim.generate(t0, t0 + MIN_NS), sim.generate(t0 + MIN_NS, t0 + 2 * MIN_NS)])
    np.testing.assert_array_equal(whole.time_ns, halves.time_ns)
    np.testing.assert_array_equal(whole.tag_index, halves.tag_index)
    lsb = {"voltage": BUS_VOLTAGE_LSB_V, "current": CURRENT_LSB_A, "power": POWER_LSB_W,
           "temperature": TEMPERATURE_LSB_C}
    for name, step in lsb.items():
        assert np.abs(whole.fields[name] - halves.fields[name]).max() <= step * 1.0001


def test_chunk_independent_across_hour_and_odd_splits() -> None:
    t0 = ns(SOLSTICE_NOON) - 90 * NS_PER_S   # spans the 11:00 UTC block boundary
    span = 3 * MIN_NS
    whole = PanelSimulator(SimulatorConfig(seed=CLOUDY_SEED)).generate(t0, t0 + span)
    sim = PanelSimulator(SimulatorConfig(seed=CLOUDY_SEED))
    cuts = [t0, t0 + 1, t0 + 12_345_678, t0 + 90 * NS_PER_S, t0 + 100 * NS_PER_S + 3, t0 + span]
    assert_batches_equal(whole, concat([sim.generate(a, b) for a, b in itertools.pairwise(cuts)]))


def test_rate_jitter_and_rare_drops() -> None:
    cfg = SimulatorConfig(panels=4, seed=1)
    t0 = ns(SOLSTICE_NOON)
    batch = PanelSimulator(cfg).generate(t0, t0 + 10 * MIN_NS)
    expected = 4 * 600 * 10
    dropped = expected - len(batch)
    assert 5 <= dropped <= 60         # p = 0.001 of 24 000 samples → about 24
    for p in range(4):
        t = batch.time_ns[panel(batch, p)]
        step = np.diff(t)
        assert (step > 0).all()
        # on the 100 ms grid plus a few ms of read latency (gaps are dropped samples)
        offset = (t - t0) % (100 * 1_000_000)
        assert offset.max() < 10_000_000
        assert np.median(step) == pytest.approx(100e6, rel=0.03)
        gaps = np.rint(step / 100e6).astype(int)
        assert set(np.unique(gaps)) <= {1, 2, 3}


def test_drop_probability_respected() -> None:
    t0 = ns(SOLSTICE_NOON)
    none = PanelSimulator(SimulatorConfig(panels=2, drop_probability=0.0)).generate(
        t0, t0 + MIN_NS)
    assert len(none) == 2 * 600
    many = PanelSimulator(SimulatorConfig(panels=2, drop_probability=0.2)).generate(
        t0, t0 + 10 * MIN_NS)
    assert len(many) == pytest.approx(2 * 6000 * 0.8, rel=0.05)


def test_values_quantized_to_sensor_lsb() -> None:
    t0 = ns(SOLSTICE_NOON)
    batch = PanelSimulator(SimulatorConfig(seed=CLOUDY_SEED)).generate(t0, t0 + MIN_NS)
    for name, step in (("voltage", BUS_VOLTAGE_LSB_V), ("current", CURRENT_LSB_A),
                       ("power", POWER_LSB_W), ("temperature", TEMPERATURE_LSB_C)):
        ratio = batch.fields[name] / step
        assert np.abs(ratio - np.rint(ratio)).max() < 1e-6, name
    v, i, p = batch.fields["voltage"], batch.fields["current"], batch.fields["power"]
    assert (i >= 0).all() and (p >= 0).all() and (v >= 0).all()
    # INA226 power register: floor(current_reg * bus_reg / 20000) in 25 × current LSB
    expected = np.floor(np.rint(i / CURRENT_LSB_A) * np.rint(v / BUS_VOLTAGE_LSB_V) / 20000)
    np.testing.assert_allclose(p / POWER_LSB_W, expected, atol=1e-6)


def test_clear_sky_solstice_noon_peak() -> None:
    t0 = ns(SOLSTICE_NOON)
    batch = PanelSimulator(SimulatorConfig(seed=CLEAR_SEED)).generate(t0, t0 + 20 * MIN_NS)
    for p in range(4):
        m = panel(batch, p)
        power = batch.fields["power"][m]
        k = int(np.argmax(power))
        assert 75.0 < power[k] < 92.0
        assert 22.5 < batch.fields["voltage"][m][k] < 25.0
        assert 45.0 < batch.fields["temperature"][m][k] < 58.0
        assert batch.fields["current"][m][k] == pytest.approx(
            power[k] / batch.fields["voltage"][m][k], rel=0.01)
        # clear day: power steady within a few percent over the 20 minutes
        assert power.min() > 0.93 * power.max()


def test_peak_over_cloudy_hour_plausible() -> None:
    t0 = ns(SOLSTICE_NOON)
    batch = PanelSimulator(SimulatorConfig(seed=CLOUDY_SEED)).generate(t0, t0 + HOUR_NS)
    assert 70.0 < batch.fields["power"].max() < 95.0


def test_night_is_zero() -> None:
    t0 = ns(datetime(2024, 6, 21, 23, 0, tzinfo=UTC))
    batch = PanelSimulator(SimulatorConfig()).generate(t0, t0 + MIN_NS)
    assert len(batch) > 0
    assert (batch.fields["power"] == 0).all()
    assert (batch.fields["current"] == 0).all()
    assert batch.fields["voltage"].max() < 0.05
    assert (batch.fields["voltage"] >= 0).all()
    assert -10.0 < batch.fields["temperature"].mean() < 30.0


def test_cloud_swings_fast_and_shared() -> None:
    t0 = ns(SOLSTICE_NOON)
    batch = PanelSimulator(SimulatorConfig(seed=CLOUDY_SEED)).generate(t0, t0 + HOUR_NS)
    under_cloud = []
    for p in range(4):
        m = panel(batch, p)
        power = batch.fields["power"][m]
        # drop of > 30 % within 5 s (50 samples) somewhere
        window = 50
        later_min = np.minimum.reduce([power[k:len(power) - window + k]
                                       for k in range(window)])
        assert (later_min < 0.7 * power[: len(power) - window]).any()
        under_cloud.append(np.mean(power < 0.6 * power.max()))
        # temperature lags: no sample-to-sample jumps
        assert np.abs(np.diff(batch.fields["temperature"][m])).max() < 0.3
    # shared clouds: similar covered fraction on all panels
    assert max(under_cloud) - min(under_cloud) < 0.1
    assert min(under_cloud) > 0.05


def test_panels_mismatch_small() -> None:
    t0 = ns(SOLSTICE_NOON)
    batch = PanelSimulator(SimulatorConfig(seed=CLEAR_SEED)).generate(t0, t0 + MIN_NS)
    means = [batch.fields["power"][panel(batch, p)].mean() for p in range(4)]
    assert max(means) / min(means) < 1.06
    assert max(means) != min(means)


def test_generate_across_hour_blocks() -> None:
    """A span touching two cached hour blocks yields every sample (speed: bench/ingest.py)."""
    sim = PanelSimulator(SimulatorConfig(panels=8))
    t0 = ns(SOLSTICE_NOON)
    batch = sim.generate(t0 + HOUR_NS // 2, t0 + 3 * HOUR_NS // 2)
    assert len(batch) > 287_000


def test_source_fast_delivers_all_samples() -> None:
    cfg = SimulatorConfig(panels=2, seed=3)
    sink = ListSink()
    source = SimulatorSource(cfg, start=SOLSTICE_NOON, speed=math.inf, duration_s=300)
    source.run(sink, threading.Event())
    got = concat(sink.batches)
    expected = PanelSimulator(cfg).generate(ns(SOLSTICE_NOON), ns(SOLSTICE_NOON) + 5 * MIN_NS)
    assert_batches_equal(got, expected)
    assert len(got) == pytest.approx(2 * 3000, abs=20)
    assert all(len(b) <= 2 * 600 for b in sink.batches)      # at most 60 s per batch
    assert isinstance(source.name, str) and source.name


def test_source_paced_catches_up_with_bigger_chunks() -> None:
    cfg = SimulatorConfig(panels=1, seed=3, drop_probability=0.0)
    sink = ListSink()
    start = SOLSTICE_NOON + timedelta(milliseconds=250)
    source = SimulatorSource(cfg, start=start, speed=200.0, chunk_s=1.0, duration_s=20)
    began = time.monotonic()
    source.run(sink, threading.Event())
    elapsed = time.monotonic() - began
    assert 0.08 < elapsed < 10.0         # paced: 20 s at 200× is ≥ 0.1 s of wall time
    got = concat(sink.batches)
    assert len(got) == 200
    assert got.time_ns[0] >= ns(SOLSTICE_NOON) + 250_000_000
    assert got.time_ns[-1] < ns(SOLSTICE_NOON) + 20_250_000_000


def test_source_stops_on_event() -> None:
    sink = ListSink()
    stop = threading.Event()
    source = SimulatorSource(SimulatorConfig(panels=1), speed=1.0, chunk_s=0.1)
    thread = threading.Thread(target=source.run, args=(sink, stop))
    thread.start()
    time.sleep(0.35)
    stop.set()
    thread.join(timeout=2.0)
    assert not thread.is_alive()
    assert 1 <= len(sink.batches) <= 5
    now = time.time_ns()
    assert all(b.time_ns.max() < now for b in sink.batches)   # never ahead of the wall clock


def test_naive_start_rejected() -> None:
    with pytest.raises(InputError):
        SimulatorSource(SimulatorConfig(), start=datetime(2024, 6, 21, 12, 0))


def test_faiman_matches_pvlib() -> None:
    import pvlib

    from sunarchive.sources.clearsky import faiman_cell_temperature

    poa = np.array([0.0, 200.0, 800.0, 1050.0])
    air = np.array([5.0, 12.0, 25.0, 31.0])
    expected = np.asarray(pvlib.temperature.faiman(poa, air, 2.0))
    np.testing.assert_allclose(faiman_cell_temperature(poa, air, 2.0), expected, rtol=1e-12)


def test_isolated_clear_sky_equals_in_process() -> None:
    from sunarchive.sources.clearsky import Site, poa_minutes, poa_minutes_isolated

    site = Site(52.52, 13.405, 35.0, 180.0)
    day = 20625  # 2026-06-21
    here = poa_minutes(site, [day])[day]
    there = poa_minutes_isolated(site, [day])[day]
    np.testing.assert_array_equal(here, there)
    assert 700 < here.max() < 1100 and here[0] == 0.0  # solstice noon vs midnight
