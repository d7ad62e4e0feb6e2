"""Benchmark: query latency from the rollup tiers and on-disk bytes per 1 s row.

Builds (or reuses with ``--db``) a DuckDB store holding ``--days`` local days × ``--panels``
panels of 1 s statistics made the real way: the PS100 simulator at ``--rate-hz`` (whole days,
so nights are real zero-power rows), the ``Reducer`` (values rounded to the profile's
``decimals`` as it does), ``DuckDBStore.write`` one simulated hour per commit and
``DuckDBStore.rollup`` after each hour, then ``CHECKPOINT``. The store is then reopened read-only,
as the CLI reads it, and each query is timed ``--reps`` times after ``--warmup`` untimed runs:

* ``daily_energy``: ``run_query(..., "daily", start, end, fields=["energy_wh"])`` over all days;
* ``daily_energy_sql``: the same rows by SQL from ``ps100_readings_daily`` (a view adding the
  open buckets: DuckDB plans their merge on every statement);
* ``fivemin_day``: one day of 5-minute rows, every column (``tier="5min"``);
* ``fivemin_day_sql``: the same by SQL from the view ``ps100_readings_5min``;
* ``daily_energy_sql_materialized``, ``fivemin_day_sql_materialized``: the same from the tables
  of complete buckets (``<m>_<tier>_materialized``; no goal, for reference);
* ``onesec_hour_panel``: one hour of 1 s rows of one panel (no goal; for reference).

Goals: p50 ≤ 5 ms for the rollup-tier queries, ≤ 40 bytes per 1 s row on disk
(``status()`` ``bytes_per_row`` of ``ps100_readings_1s`` after CHECKPOINT). Prints one JSON
object on stdout.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, log, machine_facts, quiet_library_logs, timing_summary
from sunarchive.app import simulator_config
from sunarchive.model import NS_PER_S
from sunarchive.pipeline.agent import SeriesRegistry
from sunarchive.query import run_query
from sunarchive.reducer import Reducer
from sunarchive.settings import Settings, load_settings
from sunarchive.sources.simulator import PanelSimulator
from sunarchive.storage.duckdb.store import DuckDBStore
from sunarchive.stores import open_reader, open_store

MEASUREMENT = "ps100_readings"
TIMEZONE = "Europe/Berlin"
GOAL_P50_MS = 5.0
GOAL_BYTES_PER_ROW = 40.0
FULL_DAYS = 30


def make_settings(db: Path, panels: int, rate_hz: float) -> Settings:
    return load_settings(config_file=None, env={}, dotenv_file=None, overrides={
        "database_url": f"duckdb:///{db}", "timezone": TIMEZONE,
        "simulator": {"panels": panels, "sample_rate_hz": rate_hz},
    })


def local_midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(TIMEZONE))


def build(settings: Settings, first_day: date, days: int) -> dict[str, Any]:
    """Simulate, reduce, write and roll up ``days`` local days; timed by stage."""
    start = local_midnight(first_day).astimezone(UTC)
    end = local_midnight(first_day + timedelta(days=days)).astimezone(UTC)
    store = open_store(settings)
    profile = store.profiles[MEASUREMENT]
    simulator = PanelSimulator(simulator_config(settings.simulator))
    registry = SeriesRegistry(store)
    reducer = Reducer(profile, settings.lateness_s)
    spent = dict.fromkeys(("simulate_s", "reduce_s", "write_s", "rollup_s"), 0.0)
    samples = rows = rollup_rows = 0
    clock = time.perf_counter
    hour_ns = 3600 * NS_PER_S
    first_h = int(start.timestamp()) * NS_PER_S // hour_ns
    last_h = int(end.timestamp()) * NS_PER_S // hour_ns
    t_build = clock()
    for h in range(first_h, last_h):
        t0 = clock()
        batch = simulator.generate(h * hour_ns, (h + 1) * hour_ns)
        t1 = clock()
        reducer.add(registry.ids_for(batch), batch.time_ns, batch.fields)
        result = reducer.flush() if h == last_h - 1 else reducer.close()
        t2 = clock()
        store.write(result.fresh, result.merge, registry.tags)
        store.write_events(result.events)
        t3 = clock()
        rollup_rows += store.rollup(MEASUREMENT, reducer.closed_until_s)
        t4 = clock()
        spent["simulate_s"] += t1 - t0
        spent["reduce_s"] += t2 - t1
        spent["write_s"] += t3 - t2
        spent["rollup_s"] += t4 - t3
        samples += len(batch)
        rows += len(result.fresh) + len(result.merge)
        if (h - first_h) % 24 == 23:
            done = (h - first_h + 1) / 24
            log(f"build: {done:.0f}/{days} days, {clock() - t_build:.0f} s")
    t0 = clock()
    store.checkpoint()
    spent["checkpoint_s"] = clock() - t0
    store.close()
    total = clock() - t_build
    out: dict[str, Any] = {k: round(v, 2) for k, v in spent.items()}
    out.update({"total_s": round(total, 2), "per_day_s": round(total / days, 2),
                "raw_samples": samples, "raw_values": samples * 4, "rows_1s": rows,
                "rollup_rows": rollup_rows})
    if days != FULL_DAYS:
        out["estimated_total_s_for_30_days"] = round(total / days * FULL_DAYS, 1)
    return out


def stored_range(store: DuckDBStore) -> tuple[date, int, int]:
    """(first local day, number of days, panels) of an existing store's daily tier."""
    table = store.profiles[MEASUREMENT].table("daily")
    row = store.sql(f"SELECT MIN(day), MAX(day), COUNT(DISTINCT series_id) FROM {table}"
                    ).rows()[0]
    if row[0] is None:
        raise SystemExit(f"{store.path}: no daily rows; build it with this script first")
    return row[0], (row[1] - row[0]).days + 1, int(row[2])


def timed(fn: Callable[[], Any], reps: int, warmup: int) -> tuple[dict[str, Any], Any]:
    for _ in range(warmup):
        fn()
    seconds = []
    result = None
    for _ in range(reps):
        t0 = time.perf_counter()
        result = fn()
        seconds.append(time.perf_counter() - t0)
    return timing_summary(seconds), result


def sql_ts(moment: datetime) -> str:
    return f"TIMESTAMP '{moment.astimezone(UTC).strftime('%Y-%m-%d %H:%M:%S')}'"


def queries(store: DuckDBStore, first_day: date, days: int, reps: int,
            warmup: int) -> dict[str, Any]:
    start = local_midnight(first_day)
    end = local_midnight(first_day + timedelta(days=days))
    mid = first_day + timedelta(days=days // 2)
    day_start, day_end = local_midnight(mid), local_midnight(mid + timedelta(days=1))
    hour_start = day_start.replace(hour=12)
    daily = store.profiles[MEASUREMENT].table("daily")
    fivemin = store.profiles[MEASUREMENT].table("5min")
    cases: dict[str, tuple[Callable[[], Any], bool]] = {
        "daily_energy": (lambda: run_query(store, MEASUREMENT, "daily", start, end,
                                           fields=["energy_wh"]), True),
        "daily_energy_sql": (lambda: store.sql(
            f"SELECT panel_id, time, energy_wh FROM {daily} WHERE time >= {sql_ts(start)} "
            f"AND time < {sql_ts(end)} ORDER BY time, panel_id"), True),
        "fivemin_day": (lambda: run_query(store, MEASUREMENT, "5min", day_start, day_end),
                        True),
        "fivemin_day_sql": (lambda: store.sql(
            f"SELECT * FROM {fivemin} WHERE time >= {sql_ts(day_start)} "
            f"AND time < {sql_ts(day_end)} ORDER BY time, panel_id"), True),
        "daily_energy_sql_materialized": (lambda: store.sql(
            f"SELECT panel_id, time, energy_wh FROM {daily}_materialized WHERE time >= "
            f"{sql_ts(start)} AND time < {sql_ts(end)} ORDER BY time, panel_id"), False),
        "fivemin_day_sql_materialized": (lambda: store.sql(
            f"SELECT * FROM {fivemin}_materialized WHERE time >= {sql_ts(day_start)} "
            f"AND time < {sql_ts(day_end)} ORDER BY time, panel_id"), False),
        "onesec_hour_panel": (lambda: run_query(store, MEASUREMENT, "1s", hour_start,
                                                hour_start + timedelta(hours=1),
                                                tags={"panel_id": "panel_1"}), False),
    }
    out: dict[str, Any] = {}
    for name, (fn, has_goal) in cases.items():
        summary, result = timed(fn, reps, warmup)
        summary["rows"] = result.table.num_rows
        if getattr(result, "tier", ""):
            summary["tier"] = result.tier
        if has_goal:
            summary["goal_p50_ms"] = GOAL_P50_MS
            summary["meets_goal"] = summary["p50_ms"] <= GOAL_P50_MS
        out[name] = summary
        log(f"query {name}: p50 {summary['p50_ms']:.2f} ms, p95 {summary['p95_ms']:.2f} ms, "
            f"{summary['rows']} rows")
    return out


def storage(store: DuckDBStore) -> dict[str, Any]:
    info = store.status()
    tables = {t["table"]: t for t in info["tables"]}
    one_s = tables.get(f"{MEASUREMENT}_1s", {})
    rows = int(one_s.get("rows", 0))
    per_row = one_s.get("bytes_per_row")
    table = f"{MEASUREMENT}_1s"
    night = store.sql(f"SELECT AVG(CASE WHEN power_max = 0 THEN 1.0 ELSE 0.0 END) FROM {table}"
                      ).rows()[0][0]
    energy = store.sql(f"SELECT AVG(energy_wh) FROM {MEASUREMENT}_daily").rows()[0][0]
    return {
        "rows_1s": rows,
        "bytes_1s_table": one_s.get("bytes"),
        "bytes_per_row_1s": per_row,
        "file_bytes": info["file_bytes"],
        "file_bytes_per_1s_row": round(info["file_bytes"] / rows, 1) if rows else None,
        "tables": {name: {"rows": t["rows"], "bytes": t["bytes"],
                          "bytes_per_row": t["bytes_per_row"]} for name, t in tables.items()},
        "zero_power_row_fraction": round(float(night or 0.0), 3),
        "mean_daily_energy_wh_per_panel": round(float(energy or 0.0), 1),
        "goal_bytes_per_row": GOAL_BYTES_PER_ROW,
        "meets_goal": per_row is not None and per_row <= GOAL_BYTES_PER_ROW,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=FULL_DAYS, help="local days to build "
                        f"(default {FULL_DAYS})")
    parser.add_argument("--panels", type=int, default=8, help="panels (default 8)")
    parser.add_argument("--rate-hz", type=float, default=10.0, help="simulated samples/s per "
                        "panel (default 10)")
    parser.add_argument("--first-day", type=date.fromisoformat,
                        default=date(2026, 6, 1), help="first local day (default 2026-06-01)")
    parser.add_argument("--db", type=Path, help="store to reuse if it holds data, else to "
                        "build and keep (default: a temporary file, removed afterwards)")
    parser.add_argument("--reps", type=int, default=50, help="timed runs per query "
                        "(default 50)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs per query "
                        "(default 3)")
    parser.add_argument("--output", type=Path, help="also write the JSON to this file")
    args = parser.parse_args(argv)
    quiet_library_logs()

    tmp = None if args.db else Path(tempfile.mkdtemp(prefix="sunarchive-bench-query-"))
    db: Path = args.db if tmp is None else tmp / "query.duckdb"
    try:
        settings = make_settings(db.resolve(), args.panels, args.rate_hz)
        build_info: dict[str, Any] | None = None
        reused = db.exists() and db.stat().st_size > 0
        if reused:
            with open_reader(settings) as store:
                first_day, days, panels = stored_range(store)
            log(f"reusing {db}: {days} days from {first_day}, {panels} panels")
        else:
            first_day, days, panels = args.first_day, args.days, args.panels
            log(f"building {days} days × {panels} panels at {args.rate_hz:g} Hz into {db}")
            build_info = build(settings, first_day, days)
            log(f"built in {build_info['total_s']:.1f} s")
        with open_reader(settings) as store:
            stored = storage(store)
            timings = queries(store, first_day, days, args.reps, args.warmup)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)

    goal_queries = [q for q in timings.values() if "meets_goal" in q]
    result = {
        "benchmark": "query",
        "machine": machine_facts(),
        "params": {"days": days, "first_day": first_day.isoformat(), "panels": panels,
                   "rate_hz": args.rate_hz if build_info else None, "timezone": TIMEZONE,
                   "reps": args.reps, "warmup": args.warmup, "reused_db": reused,
                   "db": str(db) if args.db else None},
        "build": build_info,
        "storage": stored,
        "queries": timings,
        "goal_p50_ms": GOAL_P50_MS,
        "goal_bytes_per_row": GOAL_BYTES_PER_ROW,
        "bytes_per_row": stored["bytes_per_row_1s"],
        "meets_query_goal": all(q["meets_goal"] for q in goal_queries),
        "meets_storage_goal": stored["meets_goal"],
        "meets_goal": all(q["meets_goal"] for q in goal_queries) and stored["meets_goal"],
    }
    emit(result, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())

