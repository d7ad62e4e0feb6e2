"""Benchmark: the InfluxDB mirror — points/s it sustains, and what it costs ingest.

The endpoint is a minimal InfluxDB-like HTTP server in a child process (it gunzips each body,
counts its lines and answers 204), so the figures are the mirror's own, not a database's.

* ``sender``: the raw PS100 points (pre-generated, 60 s simulator batches) offered to a
  :class:`~sunarchive.sinks.influxdb.Mirror` at once; the time until the endpoint has answered
  for all of them → ``points_per_s`` (encode + gzip + HTTP, batches of ``--batch-size``).
* ``ingest``: the pre-generated batches of ``--panels`` panels × ``--hours`` pushed through the
  app as `sunarchive demo` wires it (accumulator → reducer → writer → DuckDB, rollups), without
  and with the mirror enabled (raw mode) — alternating, ``--repeat`` times each, medians.
  ``overhead_percent`` = how much lower the ingest throughput is with the mirror (goal < 10 %).
  The ingest time ends when the store has everything; the mirror may still be sending then
  (it never holds collection back): ``mirror_drain_s`` is how long it needed after that.

Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, log, machine_facts, quiet_library_logs
from ingest import BULK_START, ReplaySource, make_settings, pregenerate
from sunarchive.app import build_app
from sunarchive.model import SampleBatch
from sunarchive.profiles import load_profiles
from sunarchive.settings import Settings, load_settings
from sunarchive.sinks.buffer import DiskBuffer
from sunarchive.sinks.influxdb import Mirror

GOAL_OVERHEAD_PERCENT = 10.0


class _Counter(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    lines = 0

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        type(self).lines += body.count(b"\n")
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()


def endpoint_child() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Counter)
    print(server.server_address[1], flush=True)
    server.serve_forever()


def start_endpoint() -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen([sys.executable, __file__, "--endpoint-child"],
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    port = int(process.stdout.readline())
    return process, f"http://127.0.0.1:{port}"


def with_mirror(settings: Settings, url: str, batch_size: int) -> Settings:
    data = settings.model_dump()
    data["influxdb"] = {"enabled": True, "host": url, "token": "bench", "database": "bench",
                        "batch_size": batch_size, "stop_timeout_s": 600}
    return load_settings(env={}, dotenv_file=None, overrides=data)


def sender(batches: list[SampleBatch], url: str, batch_size: int, workdir: Path
           ) -> dict[str, Any]:
    settings = load_settings(env={}, dotenv_file=None, overrides={"influxdb": {
        "enabled": True, "host": url, "token": "bench", "batch_size": batch_size,
        "queue_max_points": 10**8}}).influxdb
    mirror = Mirror(settings, load_profiles(), DiskBuffer(workdir / "sender-buffer", 2**34))
    points = sum(len(b) for b in batches)
    mirror.start()
    c0, t0 = time.process_time(), time.perf_counter()
    for batch in batches:
        mirror.offer_raw(batch)
    offered_s = time.perf_counter() - t0
    assert mirror.flush(3600)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    requests = mirror.stats.requests
    mirror.close()
    return {"points": points, "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
            "offer_s": round(offered_s, 4), "requests": requests,
            "points_per_s": round(points / wall)}


def ingest_once(settings: Settings, batches: list[SampleBatch]) -> dict[str, Any]:
    app = build_app(settings, demo=True)
    app.agent.add_source(ReplaySource(batches))
    if app.mirror is not None:
        app.mirror.start()
    t0 = time.perf_counter()
    app.agent.start()
    while not app.agent.sources_done():
        time.sleep(0.002)
    app.agent.stop(timeout_s=3600)
    t1 = time.perf_counter()
    drain = None
    if app.mirror is not None:
        assert app.mirror.flush(3600)
        drain = time.perf_counter() - t1
    summary = app.stop()
    values = app.agent.accumulator.stats.values_in
    return {"wall_s": t1 - t0, "values": values, "values_per_s": values / (t1 - t0),
            "mirror_drain_s": drain, "mirror_points_sent":
                summary.get("influxdb", {}).get("points_sent")}


def ingest(args: argparse.Namespace, batches: list[SampleBatch], url: str, workdir: Path
           ) -> dict[str, Any]:
    start = datetime.fromisoformat(BULK_START)
    runs: dict[str, list[dict[str, Any]]] = {"without": [], "with": []}
    ingest_once(make_settings(workdir / "warmup.duckdb", args.panels, 0, start, 10.0),
                batches[:2])
    for i in range(args.repeat):
        for mode in ("without", "with"):
            settings = make_settings(workdir / f"{mode}_{i}.duckdb", args.panels, 0, start, 10.0)
            if mode == "with":
                settings = with_mirror(settings, url, args.batch_size)
            run = ingest_once(settings, batches)
            runs[mode].append(run)
            log(f"ingest {mode} mirror: {run['values_per_s'] / 1e6:.2f} M values/s"
                + (f", mirror drained {run['mirror_drain_s']:.2f} s later"
                   if run["mirror_drain_s"] is not None else ""))
    base = statistics.median(r["values_per_s"] for r in runs["without"])
    mirrored = statistics.median(r["values_per_s"] for r in runs["with"])
    overhead = (base - mirrored) / base * 100
    return {"values_per_s_without_mirror": round(base),
            "values_per_s_with_mirror": round(mirrored),
            "overhead_percent": round(overhead, 2),
            "mirror_drain_s": round(statistics.median(r["mirror_drain_s"]
                                                      for r in runs["with"]), 3),
            "mirror_points_sent": runs["with"][-1]["mirror_points_sent"],
            "wall_s_without": [round(r["wall_s"], 3) for r in runs["without"]],
            "wall_s_with": [round(r["wall_s"], 3) for r in runs["with"]],
            "goal_overhead_percent": GOAL_OVERHEAD_PERCENT,
            "meets_goal": overhead < GOAL_OVERHEAD_PERCENT}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--panels", type=int, default=8, help="panels (default 8)")
    parser.add_argument("--hours", type=float, default=3.0, help="simulated hours of 10 Hz "
                        "samples (default 3: runs long enough to measure)")
    parser.add_argument("--batch-size", type=int, default=5000, help="points per request "
                        "(default 5000)")
    parser.add_argument("--repeat", type=int, default=3, help="ingest runs per mode "
                        "(default 3)")
    parser.add_argument("--output", type=Path, help="also write the JSON to this file")
    parser.add_argument("--endpoint-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.endpoint_child:
        endpoint_child()
        return 0
    quiet_library_logs()
    start = datetime.fromisoformat(BULK_START)
    seconds = round(args.hours * 3600)
    endpoint, url = start_endpoint()
    try:
        with tempfile.TemporaryDirectory(prefix="sunarchive-bench-mirror-") as tmp:
            workdir = Path(tmp)
            batches, _ = pregenerate(make_settings(workdir / "x.duckdb", args.panels, 0, start,
                                                   10.0), start, seconds)
            log(f"{sum(len(b) for b in batches):,} samples pre-generated")
            result: dict[str, Any] = {"benchmark": "mirror", "machine": machine_facts(),
                                      "params": {"panels": args.panels, "hours": args.hours,
                                                 "batch_size": args.batch_size,
                                                 "repeat": args.repeat, "endpoint": "child "
                                                 "process, gunzip + count lines, 204"}}
            result["sender"] = sender(batches, url, args.batch_size, workdir)
            log(f"sender: {result['sender']['points_per_s']:,} points/s")
            result["ingest"] = ingest(args, batches, url, workdir)
            result["meets_goal"] = result["ingest"]["meets_goal"]
    finally:
        endpoint.terminate()
        endpoint.wait()
    emit(result, args.output)
    return 0


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    sys.exit(main())
