"""Benchmark: the cost of schema on write — creating a measurement, adding a tag, adding a
field — as the store grows to ``--measurements`` (1000) inferred measurements.

The same calls the HTTP write path makes (issue 17): a measurement is created with
``spec_of`` + ``add_profile`` (its four tier tables, nothing else); a tag key or a field is
added with ``plan_growth`` + ``grow_profile`` (``ALTER TABLE ... ADD COLUMN`` on its four
tables). Each new measurement looks like Home Assistant's (tags ``domain``, ``entity_id``;
fields ``value``, ``friendly_name_str``). Reported per engine: the time of every creation
summarized for the first and the last ``--window`` (25) measurements, then ``--samples`` (20)
creations, tag additions and field additions with all measurements present (p50, p95).

Engines: DuckDB (a file in a temporary directory) and plain PostgreSQL (a throwaway server
started here, or ``--pg-url``; ``--no-postgres`` to skip). Goal: ≤ 20 ms at p50 for each of
the three with the measurements present. Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _common import emit, log, machine_facts, quiet_library_logs, timing_summary
from sunarchive.api.growth import plan_growth
from sunarchive.api.inferred import spec_of
from sunarchive.api.limits import WriteLimits
from sunarchive.lineprotocol import ParsedMeasurement, parse_lines
from sunarchive.profiles import load_profiles
from sunarchive.profiles.loader import parse_profile
from sunarchive.storage.open import SqlStore, StoreOptions, open_store

GOAL_P50_MS = 20.0
T0_S = 1_782_036_000   # 2026-06-21 10:00 UTC


def measurement(name: str, extra: str = "") -> ParsedMeasurement:
    """A Home Assistant-like point of measurement ``name`` (``extra``: more tags/fields)."""
    tags, _, fields = extra.partition(" ")
    line = (f"{name},domain=sensor,entity_id=e{tags} value=1.5,friendly_name_str=\"x\""
            f"{',' + fields if fields else ''} {T0_S}")
    return parse_lines(line, precision="s").measurements[name]


def create(store: SqlStore, name: str) -> float:
    """Seconds to create measurement ``name`` as a write does."""
    start = time.perf_counter()
    document = spec_of(measurement(name), store.profiles)
    store.add_profile(parse_profile(document, f"<bench {name}>"), document)
    return time.perf_counter() - start


def grow(store: SqlStore, name: str, extra: str) -> float:
    """Seconds to grow ``name`` by the tags/fields of ``extra`` as a write does."""
    start = time.perf_counter()
    profile = store.profiles[name]
    m = measurement(name, extra)
    document = plan_growth(profile, m, WriteLimits()).document(profile, m)
    assert document is not None
    store.grow_profile(parse_profile(document, f"<bench {name}>"), document)
    return time.perf_counter() - start


def run_engine(open_it: Callable[[], SqlStore], args: argparse.Namespace) -> dict[str, Any]:
    store = open_it()
    try:
        builtin = len(store.profiles)
        creations = []
        for i in range(args.measurements):
            creations.append(create(store, f"unit_{i}"))
            if (i + 1) % 100 == 0:
                log(f"  {i + 1} measurements, last {creations[-1] * 1000:.1f} ms")
        window = min(args.window, len(creations))
        created = [create(store, f"later_{k}") for k in range(args.samples)]
        tags = [grow(store, f"unit_{k}", f",room_{k}=r ") for k in range(args.samples)]
        fields = [grow(store, f"unit_{k}", f" battery_{k}=3.5") for k in range(args.samples)]
        figures = {"create": timing_summary(created), "add_tag": timing_summary(tags),
                   "add_field": timing_summary(fields)}
        return {"builtin_profiles": builtin, "measurements_present": len(store.profiles),
                "first_creations": timing_summary(creations[:window]),
                "last_creations": timing_summary(creations[-window:]),
                **figures,
                "meets_goal": all(f["p50_ms"] <= GOAL_P50_MS for f in figures.values())}
    finally:
        store.close()


def options() -> StoreOptions:
    return StoreOptions(profiles=load_profiles(None), timezone="UTC")


@contextmanager
def postgres_url(given: str | None) -> Iterator[str]:
    if given:
        yield given
        return
    from pg_server import drop_database, fresh_database, throwaway_postgres

    with throwaway_postgres() as server:
        url = fresh_database(server.url)
        try:
            yield url
        finally:
            drop_database(url)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--measurements", type=int, default=1000,
                        help="inferred measurements created before the samples (1000)")
    parser.add_argument("--samples", type=int, default=20,
                        help="creations, tag and field additions timed at the end (20)")
    parser.add_argument("--window", type=int, default=25,
                        help="first/last creations summarized (25)")
    parser.add_argument("--pg-url", help="an empty PostgreSQL database to use (default: a "
                                         "throwaway server started here)")
    parser.add_argument("--no-postgres", action="store_true", help="DuckDB only")
    parser.add_argument("--output", type=Path, help="also write the JSON here")
    args = parser.parse_args(argv)
    quiet_library_logs()
    report: dict[str, Any] = {"benchmark": "schema_growth", "machine": machine_facts(),
                              "parameters": vars(args) | {"output": None, "pg_url": None},
                              "goal_p50_ms": GOAL_P50_MS}
    with tempfile.TemporaryDirectory(prefix="sunarchive-growth-") as folder:
        log("duckdb")
        report["duckdb"] = run_engine(
            lambda: open_store(f"duckdb:///{Path(folder) / 'g.duckdb'}", options()), args)
    if args.no_postgres:
        report["postgres"] = {"skipped": "--no-postgres"}
    else:
        log("postgres")
        with postgres_url(args.pg_url) as url:
            report["postgres"] = run_engine(lambda: open_store(url, options()), args)
    report["meets_goal"] = all(report[e].get("meets_goal", True) for e in ("duckdb", "postgres"))
    emit(report, args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
