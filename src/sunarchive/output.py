"""Printing results as a table, CSV or JSON (JSON and CSV carry no decoration)."""

from __future__ import annotations

import base64
import csv
import json
import sys
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.table import Table

from sunarchive.storage.base import QueryResult


def _plain(value: Any) -> Any:
    """A JSON-ready value: BLOB / bytea as base64 text, an interval as seconds, as the API
    gives them."""
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, float) and value != value:
        return None
    return value


def print_result(result: QueryResult, fmt: str, title: str | None = None) -> None:
    columns = result.columns
    rows = [[_plain(v) for v in row] for row in result.rows()]
    if fmt == "json":
        json.dump([dict(zip(columns, row, strict=True)) for row in rows], sys.stdout)
        sys.stdout.write("\n")
    elif fmt == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(columns)
        writer.writerows(rows)
    else:
        table = Table(title=title)
        for column in columns:
            table.add_column(column)
        for row in rows:
            table.add_row(*[_cell(v) for v in row])
        Console().print(table)
        if not rows:
            print("(no rows)")


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def print_sources(rows: list[dict[str, Any]]) -> None:
    """The sources table of ``sunarchive sources``."""
    table = Table(title="sources")
    for column in ("name", "type", "state", "last sample", "samples/s", "samples", "errors",
                   "last error"):
        table.add_column(column)
    for row in rows:
        last = row.get("last_sample_at")
        table.add_row(row["name"], row.get("type", ""), row.get("state", ""),
                      datetime.fromtimestamp(last).astimezone().isoformat(timespec="seconds")
                      if last else "-",
                      f"{row.get('samples_per_s', 0.0):.1f}", str(row.get("samples", 0)),
                      str(row.get("errors", 0)), row.get("last_error") or "")
    Console(width=None if sys.stdout.isatty() else 160).print(table)


def print_status(info: dict[str, Any]) -> None:
    console = Console()
    version = info.get("duckdb_version") or info.get("server_version", "")
    console.print(f"engine: {info['engine']} {version}")
    if info.get("url"):
        engine = info.get("extension") or info.get("timescaledb", {}).get("extension", "")
        console.print(f"store: {info['url']} — {engine}, site time zone "
                      f"{info.get('timezone')}, {info.get('events', 0)} events")
    if info.get("note"):
        console.print(info["note"])
    if "file_bytes" in info:
        console.print(f"store: {info.get('path')} ({info['file_bytes'] / 1e6:.1f} MB), "
                      f"site time zone {info.get('timezone')}, {info.get('events', 0)} events")
    if info.get("live"):
        live = info["live"]
        console.print(f"collector running: "
                      f"{live.get('counters', {}).get('samples_in', 0):,} samples, "
                      f"{live.get('samples_per_s', 0):,.0f} samples/s (answered through its "
                      "API)")
    table = Table()
    for column in ("table", "rows", "first", "last", "bytes/row", "rolled up until"):
        table.add_column(column)
    for t in info.get("tables", []):
        table.add_row(t["table"], f"{t['rows']:,}", t["first"] or "—", t["last"] or "—",
                      "—" if t["bytes_per_row"] is None else f"{t['bytes_per_row']:.1f}",
                      t.get("rollup_horizon") or "—")
    console.print(table)
    print_inferred(console, info.get("inferred") or [])
    if info.get("timescaledb"):
        print_timescale(console, info["timescaledb"])
    print_mirror(console, info.get("mirror"))


def print_inferred(console: Console, inferred: list[dict[str, Any]]) -> None:
    """One line per profile inferred from line protocol, saying how it grew."""
    for p in inferred:
        line = (f"inferred profile {p['measurement']}: {len(p['tags'])} tags, "
                f"{len(p['fields'])} fields")
        if p.get("growths"):
            last = p["grew"][-1] if p.get("grew") else {}
            added = ", ".join([*last.get("tags", []), *last.get("fields", [])])
            line += (f"; grew {p['growths']} time(s), last at {last.get('at', '?')} "
                     f"(added {added})")
        console.print(line, markup=False)


def print_mirror(console: Console, mirror: dict[str, Any] | None) -> None:
    """One line about the InfluxDB mirror: state, points sent, pending, last error."""
    if not mirror:
        console.print("InfluxDB mirror: not running", markup=False)
        return
    console.print(f"InfluxDB mirror → {mirror['target']} ({mirror['write_api']}, "
                  f"{mirror['send']}): {mirror['state']}, {mirror['points_sent']:,} points "
                  f"sent, {mirror['pending']:,} pending ({mirror['pending_disk']:,} in the disk "
                  f"buffer), {mirror['points_rejected']:,} rejected, "
                  f"{mirror['points_dropped']:,} dropped", markup=False)
    if mirror.get("last_error"):
        console.print(f"  last error: {mirror['last_error']}", markup=False)


def print_timescale(console: Console, ts: dict[str, Any]) -> None:
    """Hypertables with chunks and compression, and background jobs with their last run."""
    hyper = Table(title="hypertables")
    for column in ("hypertable", "chunks", "compressed", "before", "after", "saved"):
        hyper.add_column(column)
    for h in ts.get("hypertables", []):
        before, after = h.get("before_bytes"), h.get("after_bytes")
        hyper.add_row(h["hypertable"], str(h["chunks"]), str(h.get("compressed_chunks", 0)),
                      "—" if before is None else f"{before / 1e6:.1f} MB",
                      "—" if after is None else f"{after / 1e6:.1f} MB",
                      "—" if h.get("saved_percent") is None else f"{h['saved_percent']}%")
    console.print(hyper)
    jobs = Table(title="background jobs")
    for column in ("job", "what", "on", "every", "last run", "status", "runs/fails"):
        jobs.add_column(column)
    for j in ts.get("jobs", []):
        jobs.add_row(str(j["job_id"]), j["application"], j["relation"] or "—", j["schedule"],
                     j["last_run"] or "never", j["last_status"] or "—",
                     f"{j['runs']}/{j['failures']}")
    console.print(jobs)
