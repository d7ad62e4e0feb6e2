"""Benchmark: raw field values reduced per second by ``Reducer`` on one core.

Input is realistic PS100 data (profile ``ps100_readings``: voltage, current, power, temperature):
``--series`` panels sampled at ``--rate-hz`` for ``--seconds`` seconds, on the nominal sample grid
plus a 0.5–8 ms read latency, with sensor noise, INA226 quantisation (the simulator's LSBs) and
``--drop`` of the samples lost. Samples arrive in time order (all series interleaved), as a
collector delivers them.

Two variants, each run ``--repeat`` times with a fresh reducer after one untimed warm-up:

* ``streaming`` — like the writer: one ``add`` per 1-second batch followed by ``close()``, and a
  final ``flush()``;
* ``bulk`` — the whole span in one ``add`` and one ``flush()`` (an import).

``values_per_s`` = present field values / wall time of add + close (+ the final flush), median
over the repeats. Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, log, machine_facts, timing_summary
from sunarchive.model import NS_PER_S
from sunarchive.profiles import load_profiles
from sunarchive.reducer import Reducer
from sunarchive.sources.simulator import (
    BUS_VOLTAGE_LSB_V,
    CURRENT_LSB_A,
    POWER_LSB_W,
    TEMPERATURE_LSB_C,
)

GOAL_VALUES_PER_S = 10_000_000
START = 1_782_036_000  # 2026-06-21T10:00:00Z
Batch = tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]


def make_samples(series: int, rate_hz: float, seconds: int, drop: float,
                 seed: int) -> Batch:
    """Samples of ``series`` panels, sorted by arrival time: (series ids, time_ns, fields)."""
    rng = np.random.default_rng(seed)
    slots = round(seconds * rate_hz)
    period_ns = round(NS_PER_S / rate_hz)
    shape = (slots, series)  # time-major: row k holds slot k of every series
    latency = np.minimum(500_000 + rng.exponential(1_500_000.0, shape),
                         min(8_000_000, period_ns // 4)).astype(np.int64)
    time_ns = START * NS_PER_S + np.arange(slots, dtype=np.int64)[:, None] * period_ns + latency
    ids = np.broadcast_to(np.arange(1, series + 1, dtype=np.int32), shape)

    # a sunny minute with slow drift and a passing cloud edge on some panels
    t = np.arange(slots)[:, None] / rate_hz
    base_w = rng.uniform(55.0, 95.0, series)[None, :]
    cloud = 1.0 - 0.6 * (rng.random(series) < 0.2)[None, :] * (t > seconds / 2)
    power = base_w * cloud * (1.0 + 0.01 * np.sin(2 * np.pi * t / 37.0))
    temp_c = rng.uniform(35.0, 55.0, series)[None, :] + 0.002 * t
    voltage = 27.25 * (1.0 - 0.005 * (temp_c - 25.0)) + 0.3 * np.log(cloud)
    current = power / voltage
    v_meas = voltage + rng.standard_normal(shape) * (0.003 + 0.0004 * voltage)
    i_meas = current + rng.standard_normal(shape) * (0.0003 + 0.001 * current)
    v_reg = np.clip(np.rint(v_meas / BUS_VOLTAGE_LSB_V), 0, 32767).astype(np.int64)
    i_reg = np.clip(np.rint(i_meas / CURRENT_LSB_A), 0, 32767).astype(np.int64)
    p_reg = (i_reg * v_reg) // 20000
    temp_q = np.rint((temp_c + 0.03 * rng.standard_normal(shape)) / TEMPERATURE_LSB_C)

    keep = (rng.random(shape) >= drop).ravel()
    flat_t = time_ns.ravel()[keep]
    order = np.argsort(flat_t, kind="stable")  # arrival order: by time, series interleaved
    fields = {
        "voltage": (v_reg * BUS_VOLTAGE_LSB_V).ravel()[keep][order],
        "current": (i_reg * CURRENT_LSB_A).ravel()[keep][order],
        "power": (p_reg * POWER_LSB_W).ravel()[keep][order],
        "temperature": (temp_q * TEMPERATURE_LSB_C).ravel()[keep][order],
    }
    return ids.ravel()[keep][order].copy(), flat_t[order].copy(), fields


def one_second_batches(samples: Batch) -> list[Batch]:
    """Split time-sorted samples into batches of one wall-clock second each."""
    ids, time_ns, fields = samples
    second = time_ns // NS_PER_S
    cuts = np.flatnonzero(np.diff(second)) + 1
    bounds = [0, *cuts.tolist(), len(time_ns)]
    return [(ids[a:b], time_ns[a:b], {k: v[a:b] for k, v in fields.items()})
            for a, b in itertools.pairwise(bounds)]


def run_streaming(profile: Any, batches: list[Batch]) -> tuple[float, list[float], int]:
    """(seconds of add+close+flush, per-batch seconds, fresh rows) with a fresh reducer."""
    reducer = Reducer(profile)
    per_batch: list[float] = []
    rows = 0
    clock = time.perf_counter
    for ids, time_ns, fields in batches:
        t0 = clock()
        reducer.add(ids, time_ns, fields)
        result = reducer.close()
        per_batch.append(clock() - t0)
        rows += len(result.fresh) + len(result.merge)
    t0 = clock()
    result = reducer.flush()
    flush_s = clock() - t0
    rows += len(result.fresh) + len(result.merge)
    return sum(per_batch) + flush_s, per_batch, rows


def run_bulk(profile: Any, samples: Batch) -> tuple[float, int]:
    reducer = Reducer(profile)
    t0 = time.perf_counter()
    reducer.add(*samples)
    result = reducer.flush()
    return time.perf_counter() - t0, len(result.fresh) + len(result.merge)


def summarize(times: list[float], cpu: list[float], values: int, samples: int,
              rows: int) -> dict[str, Any]:
    median = statistics.median(times)
    return {
        "values_per_s": round(values / median),
        "samples_per_s": round(samples / median),
        "best_values_per_s": round(values / min(times)),
        "wall_s_median": round(median, 4),
        "wall_s_all": [round(t, 4) for t in times],
        "cpu_s_per_wall_s": round(sum(cpu) / sum(times), 3),
        "rows_out": rows,
        "meets_goal": values / median >= GOAL_VALUES_PER_S,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--series", type=int, default=1000, help="panels (default 1000)")
    parser.add_argument("--rate-hz", type=float, default=10.0, help="samples/s per panel "
                        "(default 10)")
    parser.add_argument("--seconds", type=int, default=60, help="span in seconds (default 60)")
    parser.add_argument("--drop", type=float, default=0.01, help="fraction of samples lost "
                        "(default 0.01)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per variant "
                        "(default 5)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-pin", action="store_true", help="do not pin the process to one "
                        "CPU")
    parser.add_argument("--output", type=Path, help="also write the JSON to this file")
    args = parser.parse_args(argv)

    pinned = None
    if not args.no_pin and hasattr(os, "sched_setaffinity"):
        pinned = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {pinned})
    profile = load_profiles()["ps100_readings"]

    log(f"generating {args.series} series × {args.rate_hz:g} Hz × {args.seconds} s")
    samples = make_samples(args.series, args.rate_hz, args.seconds, args.drop, args.seed)
    batches = one_second_batches(samples)
    n_samples = len(samples[1])
    n_values = int(sum(np.count_nonzero(~np.isnan(v)) for v in samples[2].values()))

    run_streaming(profile, batches)  # warm-up (allocator, caches)
    stream_times, stream_cpu, per_batch_all, stream_rows = [], [], [], 0
    for i in range(args.repeat):
        c0 = time.process_time()
        total, per_batch, stream_rows = run_streaming(profile, batches)
        stream_cpu.append(time.process_time() - c0)
        stream_times.append(total)
        per_batch_all.extend(per_batch)
        log(f"streaming run {i + 1}: {n_values / total / 1e6:.2f} M values/s")

    run_bulk(profile, samples)
    bulk_times, bulk_cpu, bulk_rows = [], [], 0
    for i in range(args.repeat):
        c0 = time.process_time()
        total, bulk_rows = run_bulk(profile, samples)
        bulk_cpu.append(time.process_time() - c0)
        bulk_times.append(total)
        log(f"bulk run {i + 1}: {n_values / total / 1e6:.2f} M values/s")

    streaming = summarize(stream_times, stream_cpu, n_values, n_samples, stream_rows)
    streaming["batches"] = len(batches)
    streaming["batch_add_close_ms"] = timing_summary(per_batch_all)
    bulk = summarize(bulk_times, bulk_cpu, n_values, n_samples, bulk_rows)
    result = {
        "benchmark": "reduce",
        "machine": machine_facts(),
        "pinned_cpu": pinned,
        "params": {"profile": profile.name, "series": args.series, "rate_hz": args.rate_hz,
                   "seconds": args.seconds, "drop": args.drop, "repeat": args.repeat,
                   "lateness_s": 2.0, "input_order": "arrival (time-major, series interleaved)"},
        "samples": n_samples,
        "values": n_values,
        "values_per_s": streaming["values_per_s"],
        "samples_per_s": streaming["samples_per_s"],
        "streaming": streaming,
        "bulk": bulk,
        "goal_values_per_s": GOAL_VALUES_PER_S,
        "meets_goal": streaming["meets_goal"],
    }
    emit(result, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
