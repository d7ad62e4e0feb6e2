"""Benchmark: end-to-end ingest of simulated PS100 panels into a DuckDB file (with rollups).

Wired exactly as the CLI wires ``sunarchive demo``: ``load_settings`` → ``build_app`` (store,
accumulator, agent with its one writer thread, live state), rollups maintained by the writer.

Part (a) ``bulk`` — ``--panels`` panels at ``--rate-hz`` for ``--hours`` simulated hours of
daylight, as fast as it goes:

* ``pregenerated``: the simulator's batches (60 s each, as the simulator sends when running
  flat out) are generated first and timed separately; then only pushing them through the
  accumulator → reducer → writer → DuckDB (incl. rollups, final flush) is timed, ``--repeat``
  times into fresh files (median reported) after one small untimed warm-up run that pays the
  process's one-time costs (lazy imports). This is the fair ingest figure (goal ≥ 5 M raw
  values/s, 4 values per sample). The writer commits every ``commit_interval_s`` (1 s) of wall
  time, so a fast replay is reduced in few, large closes (``commits`` in the output);
* ``with_simulator``: the real ``SimulatorSource`` at speed 0 (= as fast as possible) into a
  fresh file, simulator included.

Part (b) ``realtime`` — ``--realtime-panels`` panels at speed 1 for ``--realtime-s`` seconds after
``--warmup-s`` seconds, in a fresh child process so its memory figures are the collector's own:
CPU seconds of the process / wall seconds = percent of one core (goal ≤ 3 %), and peak RSS
(goal ≤ 200 MB).

Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, log, machine_facts, peak_rss_mb, quiet_library_logs
from sunarchive.app import App, build_app, simulator_config
from sunarchive.model import NS_PER_S, SampleBatch
from sunarchive.pipeline.accumulator import Accumulator, QueueFullError
from sunarchive.pipeline.agent import Agent
from sunarchive.settings import Settings, load_settings
from sunarchive.sources.base import SampleSink
from sunarchive.sources.simulator import PanelSimulator, SimulatorSource

GOAL_VALUES_PER_S = 5_000_000
GOAL_CPU_PERCENT = 3.0
GOAL_RSS_MB = 200.0
MB = 2**20
BULK_START = "2026-06-21T06:00:00+00:00"     # 08:00 in Berlin: six hours of good daylight
REALTIME_START = "2026-06-21T10:00:00+00:00"
TIMEZONE = "Europe/Berlin"


def make_settings(db: Path, panels: int, speed: float, start: datetime,
                  rate_hz: float) -> Settings:
    """Settings as the CLI would build them, without reading any file or the environment."""
    return load_settings(config_file=None, env={}, dotenv_file=None, overrides={
        "database_url": f"duckdb:///{db}",
        "timezone": TIMEZONE,
        "simulator": {"panels": panels, "speed": speed, "start": start,
                      "sample_rate_hz": rate_hz},
    })


class ReplaySource:
    """A source that puts pre-generated batches into the accumulator as fast as it takes them."""

    name = "replay"

    def __init__(self, batches: list[SampleBatch]) -> None:
        self.batches = batches

    def run(self, sink: SampleSink, stop: threading.Event) -> None:
        for batch in self.batches:
            while not stop.is_set():
                try:
                    sink.put(batch)
                    break
                except QueueFullError:
                    continue


def pregenerate(settings: Settings, start: datetime, seconds: int) -> tuple[list[SampleBatch],
                                                                           dict[str, float]]:
    """The simulator's batches for the span, in the 60 s chunks a flat-out source sends."""
    simulator = PanelSimulator(simulator_config(settings.simulator))
    chunk_ns = round(SimulatorSource.MAX_CHUNK_S * NS_PER_S)
    pos = int(start.timestamp()) * NS_PER_S
    end = pos + seconds * NS_PER_S
    batches = []
    t0 = time.perf_counter()
    first_s = None
    while pos < end:
        target = min((pos // chunk_ns + 1) * chunk_ns, end)
        batch = simulator.generate(pos, target)
        if first_s is None:
            first_s = time.perf_counter() - t0
        if len(batch):
            batches.append(batch)
        pos = target
    return batches, {"generate_s": time.perf_counter() - t0, "first_call_s": first_s or 0.0}


def run_app(app: App, start_agent: Callable[[], None]) -> dict[str, Any]:
    """Start, wait until the sources are done, stop (drain + flush), close; timed parts."""
    agent: Agent = app.agent
    c0, t0 = time.process_time(), time.perf_counter()
    start_agent()
    while not agent.sources_done():
        time.sleep(0.002)
    t_sources = time.perf_counter()
    agent.stop(timeout_s=3600)
    t1, c1 = time.perf_counter(), time.process_time()
    accumulator: Accumulator = agent.accumulator
    acc = accumulator.stats
    commits = agent.stats.commits
    summary = app.stop()
    t2 = time.perf_counter()
    return {"wall_s": t1 - t0, "cpu_s": c1 - c0, "sources_done_s": t_sources - t0,
            "close_checkpoint_s": t2 - t1, "samples": acc.samples_in, "values": acc.values_in,
            "commits": commits, "summary": summary}


def replay(settings: Settings, batches: list[SampleBatch]) -> dict[str, Any]:
    """Push pre-generated batches through the app's accumulator and writer into its store."""
    app = build_app(settings, demo=True)

    def start() -> None:
        app.agent.add_source(ReplaySource(batches))
        app.agent.start()

    return run_app(app, start)


def figures(run: dict[str, Any]) -> dict[str, Any]:
    values_per_s = run["values"] / run["wall_s"]
    return {
        "values": run["values"], "samples": run["samples"],
        "wall_s": round(run["wall_s"], 3), "cpu_s": round(run["cpu_s"], 3),
        "sources_done_s": round(run["sources_done_s"], 3),
        "values_per_s": round(values_per_s),
        "samples_per_s": round(run["samples"] / run["wall_s"]),
        "close_checkpoint_s": round(run["close_checkpoint_s"], 3),
        "commits": run["commits"],
        "rows_written": run["summary"]["rows_written"],
        "rollup_rows": run["summary"]["rollup_rows"],
        "write_errors": run["summary"]["write_errors"],
        "too_late_samples": run["summary"]["too_late_samples"],
        "meets_goal": values_per_s >= GOAL_VALUES_PER_S,
    }


def bulk(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    start = datetime.fromisoformat(args.start)
    seconds = round(args.hours * 3600)

    def settings(name: str, span_start: datetime = start) -> Settings:
        return make_settings(workdir / f"{name}.duckdb", args.panels, 0, span_start,
                             args.rate_hz)

    log(f"bulk: generating {args.panels} panels × {args.hours:g} h at {args.rate_hz:g} Hz")
    batches, gen = pregenerate(settings("unused"), start, seconds)
    samples = sum(len(b) for b in batches)
    log(f"bulk: {samples:,} samples generated in {gen['generate_s']:.2f} s")

    warmup_s = None
    if not args.no_warmup:  # one-time costs of a fresh process (lazy imports, first commit)
        t0 = time.perf_counter()
        replay(settings("warmup"), batches[:2])
        warmup_s = time.perf_counter() - t0
        log(f"bulk: warm-up run {warmup_s:.2f} s")

    runs = []
    for i in range(args.repeat):
        run = replay(settings(f"pregenerated_{i}"), batches)
        runs.append(run)
        log(f"bulk: ingest run {i + 1}: {run['values'] / run['wall_s'] / 1e6:.2f} M values/s "
            f"({run['commits']} commits)")
    first = runs[0]
    runs = sorted(runs, key=lambda r: r["wall_s"])
    median = runs[len(runs) // 2]

    log("bulk: simulator → store in one run")
    app = build_app(settings("with_simulator"), demo=True)
    full = run_app(app, lambda: app.start(duration_s=seconds))
    log(f"bulk: with simulator {full['values'] / full['wall_s'] / 1e6:.2f} M values/s")

    pre_fig = figures(median)
    pre_fig["wall_s_all"] = [round(r["wall_s"], 3) for r in runs]
    pre_fig["first_run_values_per_s"] = round(first["values"] / first["wall_s"])
    return {
        "params": {"panels": args.panels, "rate_hz": args.rate_hz, "hours": args.hours,
                   "start": start.isoformat(), "timezone": TIMEZONE,
                   "batch_s": SimulatorSource.MAX_CHUNK_S, "repeat": args.repeat,
                   "warmup": not args.no_warmup},
        "warmup_s": None if warmup_s is None else round(warmup_s, 3),
        "simulator_generate_s": round(gen["generate_s"], 3),
        "simulator_first_call_s": round(gen["first_call_s"], 3),
        "simulator_values_per_s": round(median["values"] / gen["generate_s"]),
        "pregenerated": pre_fig,
        "with_simulator": figures(full),
        "simulator_share_of_pipeline": round(gen["generate_s"] / (gen["generate_s"]
                                                                  + median["wall_s"]), 3),
        "values_per_s": pre_fig["values_per_s"],
        "goal_values_per_s": GOAL_VALUES_PER_S,
        "meets_goal": pre_fig["meets_goal"],
    }


def realtime_child(args: argparse.Namespace) -> dict[str, Any]:
    """Runs in its own process: a real-time collector, measured from the inside."""
    import psutil

    process = psutil.Process()
    rss_imports = process.memory_info().rss
    with tempfile.TemporaryDirectory(prefix="sunarchive-bench-rt-") as tmp:
        settings = make_settings(Path(tmp) / "realtime.duckdb", args.realtime_panels, 1.0,
                                 datetime.fromisoformat(REALTIME_START), args.rate_hz)
        c_all, w_all = time.process_time(), time.monotonic()
        app = build_app(settings, demo=True)
        app.start()
        time.sleep(args.warmup_s)
        c0, w0 = time.process_time(), time.monotonic()
        rss_peak = process.memory_info().rss
        rss_series = []
        while time.monotonic() - w0 < args.realtime_s:
            time.sleep(min(0.5, max(0.0, args.realtime_s - (time.monotonic() - w0))))
            rss = process.memory_info().rss
            rss_series.append(rss)
            rss_peak = max(rss_peak, rss)
        c1, w1 = time.process_time(), time.monotonic()
        hwm_before_stop_mb = peak_rss_mb()
        summary = app.stop()
        c_end, w_end = time.process_time(), time.monotonic()
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_percent = (c1 - c0) / (w1 - w0) * 100.0
    hwm_mb = peak_rss_mb()
    peak_mb = max(hwm_mb, rss_peak / MB)
    return {
        "panels": args.realtime_panels, "rate_hz": args.rate_hz, "speed": 1.0,
        "start": REALTIME_START, "warmup_s": args.warmup_s,
        "measured_wall_s": round(w1 - w0, 3), "measured_cpu_s": round(c1 - c0, 3),
        "cpu_percent_of_one_core": round(cpu_percent, 3),
        "cpu_percent_incl_startup_and_stop": round((c_end - c_all) / (w_end - w_all) * 100, 3),
        "child_processes_cpu_s": round(children.ru_utime + children.ru_stime, 3),
        "child_processes_maxrss_mb": round(children.ru_maxrss / 1024.0, 1),
        "rss_after_imports_mb": round(rss_imports / MB, 1),
        "rss_sampled_peak_mb": round(rss_peak / MB, 1),
        "rss_end_mb": round((rss_series[-1] if rss_series else rss_peak) / MB, 1),
        "peak_rss_before_stop_mb": round(hwm_before_stop_mb, 1),
        "ru_maxrss_mb": round(own.ru_maxrss / 1024.0, 1),
        "peak_rss_mb": round(peak_mb, 1),
        "samples_in": summary["samples_in"],
        "rows_written": summary["rows_written"],
        "write_errors": summary["write_errors"],
        "goal_cpu_percent": GOAL_CPU_PERCENT,
        "goal_peak_rss_mb": GOAL_RSS_MB,
        "meets_cpu_goal": cpu_percent <= GOAL_CPU_PERCENT,
        "meets_rss_goal": peak_mb <= GOAL_RSS_MB,
        "meets_goal": cpu_percent <= GOAL_CPU_PERCENT and peak_mb <= GOAL_RSS_MB,
    }


def realtime(args: argparse.Namespace) -> dict[str, Any]:
    log(f"realtime: {args.realtime_panels} panels at speed 1 for {args.realtime_s:g} s "
        f"(+{args.warmup_s:g} s warm-up) in a child process")
    command = [sys.executable, str(Path(__file__).resolve()), "--realtime-child",
               "--realtime-s", str(args.realtime_s), "--warmup-s", str(args.warmup_s),
               "--realtime-panels", str(args.realtime_panels), "--rate-hz", str(args.rate_hz)]
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True,
                          timeout=args.realtime_s + args.warmup_s + 600)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    log(f"realtime: {result['cpu_percent_of_one_core']:.2f} % of one core, "
        f"peak RSS {result['peak_rss_mb']:.0f} MB")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--panels", type=int, default=8, help="bulk: panels (default 8)")
    parser.add_argument("--hours", type=float, default=6.0, help="bulk: simulated hours "
                        "(default 6)")
    parser.add_argument("--start", default=BULK_START, help=f"bulk: simulated start, ISO 8601 "
                        f"with offset (default {BULK_START})")
    parser.add_argument("--rate-hz", type=float, default=10.0, help="samples/s per panel "
                        "(default 10)")
    parser.add_argument("--realtime-s", type=float, default=60.0, help="realtime: measured "
                        "seconds (default 60)")
    parser.add_argument("--warmup-s", type=float, default=5.0, help="realtime: seconds before "
                        "measuring (default 5)")
    parser.add_argument("--realtime-panels", type=int, default=8, help="realtime: panels "
                        "(default 8)")
    parser.add_argument("--repeat", type=int, default=5, help="bulk: timed ingest runs, median "
                        "reported (default 5)")
    parser.add_argument("--no-warmup", action="store_true", help="bulk: time the first ingest "
                        "of the process too (lazy imports such as pandas via pyarrow)")
    parser.add_argument("--skip-bulk", action="store_true", help="run only part (b)")
    parser.add_argument("--skip-realtime", action="store_true", help="run only part (a)")
    parser.add_argument("--workdir", type=Path, help="directory for the DuckDB files "
                        "(default: a temporary directory, removed afterwards)")
    parser.add_argument("--output", type=Path, help="also write the JSON to this file")
    parser.add_argument("--realtime-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    quiet_library_logs()

    if args.realtime_child:
        emit(realtime_child(args))
        return 0

    result: dict[str, Any] = {"benchmark": "ingest", "machine": machine_facts()}
    if not args.skip_realtime:  # first, while this parent process is still small
        result["realtime"] = realtime(args)
    if not args.skip_bulk:
        if args.workdir:
            args.workdir.mkdir(parents=True, exist_ok=True)
            result["bulk"] = bulk(args, args.workdir)
        else:
            with tempfile.TemporaryDirectory(prefix="sunarchive-bench-ingest-") as tmp:
                result["bulk"] = bulk(args, Path(tmp))
        result["bulk"]["process_peak_rss_mb"] = round(peak_rss_mb(), 1)
    parts = [result[p]["meets_goal"] for p in ("bulk", "realtime") if p in result]
    result["goals"] = {"bulk_values_per_s": GOAL_VALUES_PER_S,
                       "realtime_cpu_percent_of_one_core": GOAL_CPU_PERCENT,
                       "realtime_peak_rss_mb": GOAL_RSS_MB}
    result["meets_goal"] = all(parts)
    emit(result, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())

