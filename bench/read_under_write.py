"""Benchmark: dashboard reads and health while line-protocol writers send flat out.

Starts ``sunarchive serve`` (a subprocess, fresh DuckDB file in a temporary directory, free
loopback port). ``--writers`` (50) threads, one keep-alive client each, POST bodies of
``--lines`` (5000) lines to ``/api/v2/write`` for ``--seconds`` (20) without pause: PS100
readings, 8 panels per writer (its own ``panel_id`` tags), 4 float fields, 10 Hz, nanosecond
timestamps consecutive per writer, starting a day before now. Meanwhile one client calls, in
turn and one at a time, ``/api/v1/health`` and the dashboard's reads: ``latest``, the 5-minute
tier curve of the data's day (``/api/v1/measurements/ps100_readings?tier=5min``) and the daily
energy — back to back by default, or with ``--read-pause-s`` after each round (the
dashboard itself refreshes every 10 s). Reported: p50/p99 (ms) of each call under load, the
same calls idle beforehand, and the ingest rate in field values/s (values in bodies answered
204, over the writing wall time).

Goals (issue 14, point 8): under that load reads p99 ≤ 100 ms, health p99 ≤ 50 ms, ingest
≥ 1 M field values/s. The writer threads, the reader and the server share the machine's cores.
Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import multiprocessing
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, log, machine_facts
from lp_write import FIELDS, PANELS, RATE_HZ, start_server

GOAL_READ_P99_MS = 100.0
GOAL_HEALTH_P99_MS = 50.0
GOAL_VALUES_PER_S = 1_000_000
MEASUREMENT = "ps100_readings"
STEP_NS = 10**9 // RATE_HZ


class Writer:
    """One sender: its own 8 panels, bodies of consecutive 10 Hz readings."""

    def __init__(self, index: int, lines: int, t0_ns: int) -> None:
        self.lines, self.next_ns = lines, t0_ns
        self.heads = []
        for i in range(lines):
            v, a = 20.0 + (i % 97) * 0.05, 3.0 + (i % 89) * 0.004
            self.heads.append(
                f"{MEASUREMENT},panel_id=w{index}p{i % PANELS} voltage={v:.3f},current={a:.4f},"
                f"power={v * a:.3f},temperature={35 + (i % 41) * 0.1:.2f} ".encode())

    def body(self) -> bytes:
        """The next ``lines`` lines (ticks follow the previous body's)."""
        parts = [head + b"%d\n" % (self.next_ns + (i // PANELS) * STEP_NS)
                 for i, head in enumerate(self.heads)]
        self.next_ns += -(-self.lines // PANELS) * STEP_NS
        return b"".join(parts)


def write_flat_out(url: str, writer: Writer, stop: threading.Event,
                   tally: dict[str, Any], lock: threading.Lock) -> None:
    with httpx.Client(timeout=300) as client:
        while not stop.is_set():
            response = client.post(url, content=writer.body(),
                                   params={"bucket": "b", "precision": "ns"})
            with lock:
                if response.status_code == 204:
                    tally["values"] += writer.lines * len(FIELDS)
                    tally["requests"] += 1
                elif len(tally["errors"]) < 5:
                    tally["errors"].append(f"{response.status_code}: {response.text[:200]}")


def read_calls(t0_ns: int) -> dict[str, tuple[str, dict[str, Any]]]:
    day = t0_ns // 10**9 // 86400 * 86400
    start, end = time.gmtime(day), time.gmtime(day + 2 * 86400)
    iso = "%Y-%m-%dT%H:%M:%SZ"
    span = {"start": time.strftime(iso, start), "end": time.strftime(iso, end)}
    return {
        "health": ("/api/v1/health", {}),
        "latest": ("/api/v1/latest", {"measurement": MEASUREMENT}),
        "curve_5min": (f"/api/v1/measurements/{MEASUREMENT}", {
            "tier": "5min", "fields": "power_avg,power_max,covered_s,sample_count", **span}),
        "energy_day": ("/api/v1/energy", {"measurement": MEASUREMENT, "period": "day",
                                          **span}),
    }


def read_in_turn(base: str, calls: dict[str, tuple[str, dict[str, Any]]],
                 until: Any, pause_s: float = 0.0) -> dict[str, list[float]]:
    """Call each endpoint in turn until ``until`` (an event: threads' or processes') is set,
    or for ``until`` seconds (a float), pausing ``pause_s`` after each round (0: back to
    back)."""
    seconds: dict[str, list[float]] = {name: [] for name in calls}
    deadline = time.monotonic() + until if isinstance(until, float) else None
    with httpx.Client(base_url=base, timeout=120) as client:
        while not (time.monotonic() > deadline if deadline is not None else until.is_set()):
            for name, (path, params) in calls.items():
                t0 = time.perf_counter()
                response = client.get(path, params=params)
                seconds[name].append(time.perf_counter() - t0)
                response.raise_for_status()
            if pause_s:
                time.sleep(pause_s)
    return seconds


def _read_in_own_process(base: str, calls: dict[str, tuple[str, dict[str, Any]]],
                         ready: Any, stop: Any, pause_s: float, results: Any) -> None:
    ready.set()
    results.put(read_in_turn(base, calls, stop, pause_s))


def read_while(base: str, calls: dict[str, tuple[str, dict[str, Any]]], stop: threading.Event,
               started: threading.Event, args: argparse.Namespace) -> dict[str, list[float]]:
    """The timed reads under load: in a process of their own by default (a dashboard is not
    in the writers' process: sharing their interpreter lock adds its wait to every read),
    or, with ``--reader-thread``, in a thread beside the 50 writers (the figures before
    2026-12-03's last session)."""
    if args.reader_thread:
        started.set()
        return read_in_turn(base, calls, stop, args.read_pause_s)
    context = multiprocessing.get_context("spawn")
    ready, ended, results = context.Event(), context.Event(), context.Queue()
    reader = context.Process(target=_read_in_own_process,
                             args=(base, calls, ready, ended, args.read_pause_s, results))
    reader.start()
    if not ready.wait(120):
        raise SystemExit("the reading process did not start")
    started.set()
    stop.wait()
    ended.set()
    seconds: dict[str, list[float]] = results.get(timeout=300)
    reader.join(60)
    return seconds


def summary(seconds: list[float]) -> dict[str, Any]:
    ms = np.asarray(seconds or [0.0], np.float64) * 1000.0
    return {"n": len(seconds), "p50_ms": round(float(np.percentile(ms, 50)), 2),
            "p99_ms": round(float(np.percentile(ms, 99)), 2),
            "max_ms": round(float(ms.max()), 2)}


def run(base: str, args: argparse.Namespace, t0_ns: int) -> dict[str, Any]:
    calls = read_calls(t0_ns)
    writers = [Writer(k, args.lines, t0_ns) for k in range(args.writers)]
    warm = httpx.post(base + "/api/v2/write", content=writers[0].body(),
                      params={"bucket": "b", "precision": "ns"}, timeout=120)
    warm.raise_for_status()   # creates the measurement's tables before timing
    idle = read_in_turn(base, calls, args.idle_seconds)
    log(f"idle reads done; {args.writers} writers for {args.seconds} s")
    stop, lock = threading.Event(), threading.Lock()
    tally: dict[str, Any] = {"values": 0, "requests": 0, "errors": []}
    threads = [threading.Thread(target=write_flat_out, args=(
        base + "/api/v2/write", w, stop, tally, lock)) for w in writers]
    started = threading.Event()
    reads: dict[str, dict[str, list[float]]] = {}
    reading = threading.Thread(
        target=lambda: reads.update(loaded=read_while(base, calls, stop, started, args)))
    reading.start()
    started.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    timer = threading.Timer(args.seconds, stop.set)
    timer.start()
    reading.join()
    loaded = reads["loaded"]
    for t in threads:
        t.join()
    wall_s = time.perf_counter() - t0
    return {"idle": {k: summary(v) for k, v in idle.items()},
            "under_load": {k: summary(v) for k, v in loaded.items()},
            "wall_s": round(wall_s, 2), "tally": tally}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writers", type=int, default=50, help="concurrent writers (50)")
    parser.add_argument("--lines", type=int, default=5000, help="lines per body (5000)")
    parser.add_argument("--seconds", type=float, default=20.0, help="writing time (20 s)")
    parser.add_argument("--idle-seconds", type=float, default=3.0,
                        help="reads timed before the writers start (3 s)")
    parser.add_argument("--read-pause-s", type=float, default=0.0,
                        help="pause after each round of reads under load (0: back to back, "
                             "the hardest case; the dashboard refreshes every 10 s, so 1.0 is "
                             "ten open dashboards)")
    parser.add_argument("--reader-thread", action="store_true",
                        help="time the reads in a thread of the writers' process instead of a "
                             "process of its own (shares their interpreter lock)")
    parser.add_argument("--output", type=Path, help="also write the JSON to this file")
    args = parser.parse_args()
    machine = machine_facts()
    t0_ns = (time.time_ns() - 86400 * 10**9) // 10**9 * 10**9
    with tempfile.TemporaryDirectory(prefix="sunarchive-rw-") as folder:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        process = start_server(Path(folder) / "rw.duckdb", port)
        try:
            figures = run(f"http://127.0.0.1:{port}", args, t0_ns)
        finally:
            process.terminate()
            process.wait(120)
    tally, loaded = figures.pop("tally"), figures["under_load"]
    values_per_s = round(tally["values"] / figures["wall_s"])
    reads_p99 = max(v["p99_ms"] for k, v in loaded.items() if k != "health")
    result = {
        "benchmark": "read_under_write", "machine": machine,
        "writers": args.writers, "lines_per_request": args.lines,
        "fields_per_line": len(FIELDS), "seconds": args.seconds,
        "read_pause_s": args.read_pause_s,
        "reader": "thread beside the writers" if args.reader_thread else "own process",
        **figures,
        "requests_accepted": tally["requests"], "errors": tally["errors"],
        "ingest_values_per_s": values_per_s, "reads_p99_ms": reads_p99,
        "health_p99_ms": loaded["health"]["p99_ms"],
        "goal_read_p99_ms": GOAL_READ_P99_MS, "goal_health_p99_ms": GOAL_HEALTH_P99_MS,
        "goal_values_per_s": GOAL_VALUES_PER_S,
        "meets_goal": bool(reads_p99 <= GOAL_READ_P99_MS
                           and loaded["health"]["p99_ms"] <= GOAL_HEALTH_P99_MS
                           and values_per_s >= GOAL_VALUES_PER_S and not tally["errors"]
                           and all(v["n"] for v in loaded.values())),
    }
    log(f"ingest {values_per_s:,} values/s; reads p99 {reads_p99} ms; health p99 "
        f"{loaded['health']['p99_ms']} ms")
    emit(result, args.output)


if __name__ == "__main__":
    main()
