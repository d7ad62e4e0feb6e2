"""Benchmark: `/ping` while writers create new measurements (schema on write).

Starts ``sunarchive serve`` (a subprocess, fresh DuckDB file in a temporary directory, free
loopback port). One sender POSTs ``--bodies`` (50) line-protocol bodies to ``/api/v2/write``,
each naming ``--per-body`` (2) measurements the store has not seen (Home Assistant-like: a unit
as the measurement, tags ``domain`` and ``entity_id``, field ``value``), so ``--bodies`` ×
``--per-body`` (100) measurements are created; meanwhile one client calls ``/ping`` in turn,
one at a time. Reported: `/ping` p50/p99 (ms) during the creations and idle beforehand, and the
time per body that created measurements (p50/p99).

Goal (issue 16, point 1; issue 17, "never delays other requests"): `/ping` p99 < 50 ms while
100 new measurements are created. Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
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
from lp_write import start_server

GOAL_PING_P99_MS = 50.0


def body(index: int, per_body: int, t_ns: int) -> bytes:
    """``per_body`` lines, each of a measurement no earlier body named."""
    lines = [f"unit_{index}_{k},domain=sensor,entity_id=sensor.probe_{index}_{k} "
             f"value={index + k / 10} {t_ns}" for k in range(per_body)]
    return ("\n".join(lines) + "\n").encode()


def ping_until(base: str, stop: threading.Event | float) -> list[float]:
    """Seconds of each `/ping` call, one at a time, until ``stop`` (event or seconds)."""
    out: list[float] = []
    deadline = time.monotonic() + stop if isinstance(stop, float) else None
    with httpx.Client(base_url=base, timeout=60) as client:
        while not (stop.is_set() if isinstance(stop, threading.Event)
                   else time.monotonic() > (deadline or 0)):
            t0 = time.perf_counter()
            client.get("/ping").raise_for_status()
            out.append(time.perf_counter() - t0)
    return out


def create_all(base: str, args: argparse.Namespace, took: list[float],
               errors: list[str]) -> None:
    t_ns = time.time_ns() - 60 * 10**9
    with httpx.Client(base_url=base, timeout=120) as client:
        for i in range(args.bodies):
            t0 = time.perf_counter()
            response = client.post("/api/v2/write", content=body(i, args.per_body, t_ns),
                                   params={"bucket": "b", "precision": "ns"})
            took.append(time.perf_counter() - t0)
            if response.status_code != 204 and len(errors) < 5:
                errors.append(f"{response.status_code}: {response.text[:200]}")


def summary(seconds: list[float]) -> dict[str, Any]:
    ms = np.asarray(seconds or [0.0], np.float64) * 1000.0
    return {"n": len(seconds), "p50_ms": round(float(np.percentile(ms, 50)), 2),
            "p99_ms": round(float(np.percentile(ms, 99)), 2),
            "max_ms": round(float(ms.max()), 2)}


def run(base: str, args: argparse.Namespace) -> dict[str, Any]:
    idle = ping_until(base, float(args.idle_seconds))
    took: list[float] = []
    errors: list[str] = []
    stop = threading.Event()
    pings: list[float] = []
    pinger = threading.Thread(target=lambda: pings.extend(ping_until(base, stop)))
    pinger.start()
    started = time.perf_counter()
    create_all(base, args, took, errors)
    wall = time.perf_counter() - started
    stop.set()
    pinger.join()
    during = summary(pings)
    return {"benchmark": "ping_under_growth", "measurements_created": args.bodies * args.per_body,
            "bodies": args.bodies, "wall_s": round(wall, 2), "errors": errors,
            "ping_idle": summary(idle), "ping_during_growth": during,
            "body_with_new_measurements": summary(took),
            "goal_ping_p99_ms": GOAL_PING_P99_MS,
            "meets_goal": not errors and during["p99_ms"] < GOAL_PING_P99_MS,
            "machine": machine_facts()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bodies", type=int, default=50, help="bodies sent (50)")
    parser.add_argument("--per-body", type=int, default=2,
                        help="new measurements per body (2)")
    parser.add_argument("--idle-seconds", type=float, default=2.0,
                        help="/ping calls before the writes, for comparison (2 s)")
    parser.add_argument("--output", type=Path, help="also write the JSON to this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        server = start_server(Path(folder) / "growth.duckdb", port)
        try:
            log(f"creating {args.bodies * args.per_body} measurements while pinging")
            result = run(f"http://127.0.0.1:{port}", args)
        finally:
            server.terminate()
            server.wait(60)
    emit(result, args.output)


if __name__ == "__main__":
    main()
