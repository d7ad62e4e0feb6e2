"""Benchmark: latency of the dashboard's API calls on 30 days × 8 panels.

Uses the store ``bench/query.py`` builds (``--db``; built here the same way when missing: 30
local days × 8 PS100 panels of 1 s rows, simulated at 10 Hz, reduced and rolled up), serves it
with ``sunarchive serve`` (a subprocess) and times, with one keep-alive client, each request
the dashboard makes — at load (``status``, ``measurements``, ``latest``) and on every refresh
(``series``, one local day of 5-minute power and coverage rows, 30 days of daily energy,
events) — ``--reps`` times after ``--warmup`` untimed runs. The day asked for is the last
stored day, as the dashboard asks for the day of the newest data.

Goal: p50 ≤ 10 ms for every call. Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, log, machine_facts, timing_summary
from query import (
    FULL_DAYS,
    MEASUREMENT,
    TIMEZONE,
    build,
    local_midnight,
    make_settings,
    stored_range,
)
from sunarchive.stores import open_reader

GOAL_P50_MS = 10.0


def ensure_store(db: Path, days: int, panels: int) -> tuple[Any, int, int]:
    settings = make_settings(db, panels, 10.0)
    if not db.exists():
        from datetime import date
        log(f"building {days} days × {panels} panels into {db} (a few minutes)")
        build(settings, date(2026, 6, 1), days)
    with open_reader(settings) as store:
        return stored_range(store)


def serve(db: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUNARCHIVE_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "sunarchive", "serve", "--db", str(db), "--http-port", str(port),
         "--timezone", TIMEZONE], env=env, cwd=db.parent, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/api/v1/health", timeout=1).status_code == 200:
                return process, base
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("serve did not come up")


def calls(first_day: Any, days: int) -> dict[str, tuple[str, dict[str, Any]]]:
    last = first_day + timedelta(days=days - 1)
    day_start, day_end = local_midnight(last), local_midnight(last + timedelta(days=1))
    month_start = local_midnight(last - timedelta(days=29))
    m = MEASUREMENT
    return {
        "status": ("/api/v1/status", {}),
        "measurements": ("/api/v1/measurements", {}),
        "latest": ("/api/v1/latest", {"measurement": m}),
        "series": ("/api/v1/series", {}),
        "today_5min_curve": (f"/api/v1/measurements/{m}", {
            "tier": "5min", "start": day_start.isoformat(), "end": day_end.isoformat(),
            "fields": "power_avg,power_max,covered_s,sample_count"}),
        "daily_energy_30d": ("/api/v1/energy", {
            "measurement": m, "period": "day", "start": month_start.isoformat(),
            "end": day_end.isoformat()}),
        "events": ("/api/v1/events", {"limit": 8}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", type=Path, default=Path("bench-30d.duckdb"),
                        help="store of bench/query.py (built when missing)")
    parser.add_argument("--days", type=int, default=FULL_DAYS)
    parser.add_argument("--panels", type=int, default=8)
    parser.add_argument("--reps", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--output", type=Path, help="also write the JSON to this file")
    args = parser.parse_args()
    first_day, days, panels = ensure_store(args.db.resolve(), args.days, args.panels)
    process, base = serve(args.db.resolve())
    results: dict[str, Any] = {}
    try:
        with httpx.Client(base_url=base, timeout=60) as client:
            for name, (path, params) in calls(first_day, days).items():
                seconds = []
                for i in range(args.warmup + args.reps):
                    t0 = time.perf_counter()
                    response = client.get(path, params=params)
                    spent = time.perf_counter() - t0
                    response.raise_for_status()
                    if i >= args.warmup:
                        seconds.append(spent)
                summary = timing_summary(seconds)
                summary["bytes"] = len(response.content)
                summary["meets_goal"] = summary["p50_ms"] <= GOAL_P50_MS
                results[name] = summary
                log(f"{name}: p50 {summary['p50_ms']:.2f} ms, p95 {summary['p95_ms']:.2f} ms")
    finally:
        process.terminate()
        process.wait(60)
    emit({"benchmark": "api", "machine": machine_facts(), "days": days, "panels": panels,
          "goal_p50_ms": GOAL_P50_MS, "calls": results,
          "meets_goal": all(r["meets_goal"] for r in results.values())}, args.output)


if __name__ == "__main__":
    main()
