"""Benchmark: InfluxDB line protocol over HTTP into the store, end to end.

Starts ``sunarchive serve`` (a subprocess, DuckDB file in a temporary directory), builds
``--requests`` bodies of ``--lines`` lines (PS100 readings: 8 panels at 10 Hz, 4 float fields,
nanosecond timestamps, consecutive in time) before timing, then ``--senders`` threads POST them
to ``/api/v2/write`` with one keep-alive client each. Timed from the first request until the
server's ``/api/v1/status`` shows every sample taken in, the queue empty and the writer idle —
that is, until the reducer has turned the points into 1 s rows in the store (the last
``lateness_s`` of data-time stays open by design and is written at stop; it is not waited
for). Reported: accepted field values/s (HTTP only) and end-to-end field values/s.

Goal: ≥ 1 M field values/s end to end with 5000-line batches on this 2-core machine (the
sender threads share the two cores with the server). Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, log, machine_facts

GOAL_VALUES_PER_S = 1_000_000
FIELDS = ("voltage", "current", "power", "temperature")
PANELS = 8
RATE_HZ = 10
T0_NS = 1_782_036_000 * 10**9   # 2026-06-21 10:00 UTC


def bodies(requests: int, lines: int) -> list[bytes]:
    """Consecutive 10 Hz readings of 8 panels, ``lines`` per body."""
    out = []
    step = 10**9 // RATE_HZ
    for r in range(requests):
        rows = []
        for i in range(r * lines, (r + 1) * lines):
            tick, panel = divmod(i, PANELS)
            v = 20.0 + (i % 97) * 0.05
            a = 3.0 + (i % 89) * 0.004
            rows.append(f"ps100_readings,panel_id=panel_{panel + 1} voltage={v:.3f},"
                        f"current={a:.4f},power={v * a:.3f},temperature={35 + (i % 41) * 0.1:.2f}"
                        f" {T0_NS + tick * step}")
        out.append("\n".join(rows).encode())
    return out


def start_server(db: Path, port: int) -> subprocess.Popen[bytes]:
    """``sunarchive serve`` on ``db``; its stderr goes to ``<db>.serve.log`` beside it (a pipe
    nobody reads would stop a server that logs more than the pipe holds)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUNARCHIVE_")}
    log_path = db.with_name(db.name + ".serve.log")
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "sunarchive", "serve", "--db", str(db), "--http-port",
             str(port)], env=env, cwd=db.parent, stdout=subprocess.DEVNULL, stderr=log_file)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    tail = log_path.read_text(errors="replace").strip().splitlines()[-5:]
    raise SystemExit("serve did not come up" + "".join(f"\n  {line}" for line in tail))


def send_all(url: str, payloads: list[bytes], senders: int) -> list[str]:
    errors: list[str] = []
    cursor = iter(range(len(payloads)))
    lock = threading.Lock()

    def worker() -> None:
        with httpx.Client(timeout=120) as client:
            while True:
                with lock:
                    i = next(cursor, None)
                if i is None:
                    return
                response = client.post(url, content=payloads[i],
                                       params={"bucket": "b", "precision": "ns"})
                if response.status_code != 204:
                    errors.append(f"{response.status_code}: {response.text[:200]}")

    threads = [threading.Thread(target=worker) for _ in range(senders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def wait_written(base: str, points: int, timeout_s: float = 600) -> dict[str, Any]:
    """Until every point is taken in and the queue is empty (rows written up to lateness)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        counters = httpx.get(base + "/api/v1/status", timeout=30).json()["counters"]
        if counters.get("samples_in", 0) >= points and counters.get("queue_depth", 1) == 0 \
                and counters.get("samples_buffered", 0) <= PANELS * RATE_HZ * 5:
            return dict(counters)
        time.sleep(0.02)
    raise SystemExit("the server did not write everything in time")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=400,
                        help="bodies to send (400: about 8 s, so the last commit tick, up to "
                        "commit_interval_s, weighs little)")
    parser.add_argument("--lines", type=int, default=5000, help="lines per body (5000)")
    parser.add_argument("--senders", type=int, default=2, help="sending threads (2)")
    parser.add_argument("--output", type=Path, help="also write the JSON to this file")
    args = parser.parse_args()
    log(f"building {args.requests} bodies of {args.lines} lines")
    payloads = bodies(args.requests, args.lines)
    points = args.requests * args.lines
    values = points * len(FIELDS)
    with tempfile.TemporaryDirectory(prefix="sunarchive-lp-") as folder:
        import socket
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        process = start_server(Path(folder) / "lp.duckdb", port)
        base = f"http://127.0.0.1:{port}"
        try:
            send_all(base + "/api/v2/write", payloads[:2], 1)   # warm up (profile, tables)
            wait_written(base, 2 * args.lines)
            log(f"sending {points} points ({values} field values)")
            t0 = time.perf_counter()
            errors = send_all(base + "/api/v2/write", payloads[2:], args.senders)
            accepted_s = time.perf_counter() - t0
            counters = wait_written(base, points)
            total_s = time.perf_counter() - t0
        finally:
            process.terminate()
            process.wait(120)
    timed_values = (args.requests - 2) * args.lines * len(FIELDS)
    result = {
        "benchmark": "lp_write", "machine": machine_facts(),
        "requests": args.requests, "lines_per_request": args.lines, "senders": args.senders,
        "fields_per_line": len(FIELDS), "field_values": timed_values,
        "errors": errors[:5], "accepted_s": round(accepted_s, 2),
        "accepted_values_per_s": round(timed_values / accepted_s),
        "end_to_end_s": round(total_s, 2),
        "end_to_end_values_per_s": round(timed_values / total_s),
        "rows_written": counters.get("rows_written"),
        "goal_values_per_s": GOAL_VALUES_PER_S,
        "meets_goal": timed_values / total_s >= GOAL_VALUES_PER_S and not errors,
    }
    log(f"end to end {result['end_to_end_values_per_s']:,} values/s "
        f"(accepted {result['accepted_values_per_s']:,}/s)")
    emit(result, args.output)


if __name__ == "__main__":
    main()
