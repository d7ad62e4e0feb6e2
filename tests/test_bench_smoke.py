"""Smoke tests of the benchmark scripts: tiny runs, one JSON object out, expected keys.

Timings are never asserted here (see bench/README.md); only that each script runs, exits 0 and
reports positive figures.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

BENCH = Path(__file__).resolve().parents[1] / "bench"


def run_bench(script: str, *args: str, timeout: float = 180) -> dict[str, Any]:
    done = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True,
                          text=True, timeout=timeout)
    assert done.returncode == 0, f"{script} failed:\n{done.stdout}\n{done.stderr}"
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, f"{script} must print exactly one JSON line, got:\n{done.stdout}"
    result: dict[str, Any] = json.loads(lines[0])
    machine = result["machine"]
    assert machine["cpu_count"] > 0
    assert machine["python"] and machine["duckdb"]
    assert isinstance(result["meets_goal"], bool)
    return result


def positive(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


@pytest.mark.parametrize("script", ["reduce.py", "ingest.py", "query.py", "lp_write.py",
                                    "api.py", "mirror.py", "import_csv.py",
                                    "import_slow_series.py",
                                    "read_under_write.py", "schema_growth.py",
                                    "ping_under_growth.py"])
def test_help(script: str) -> None:
    done = subprocess.run([sys.executable, str(BENCH / script), "--help"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0
    assert "usage" in done.stdout


def test_reduce_smoke() -> None:
    result = run_bench("reduce.py", "--series", "20", "--seconds", "5", "--repeat", "1")
    assert result["benchmark"] == "reduce"
    assert result["goal_values_per_s"] == 10_000_000
    for key in ("values", "samples", "values_per_s", "samples_per_s"):
        assert positive(result[key]), key
    for variant in ("streaming", "bulk"):
        figures = result[variant]
        assert positive(figures["values_per_s"])
        assert figures["rows_out"] == 20 * 5
        assert isinstance(figures["meets_goal"], bool)
    assert positive(result["streaming"]["batch_add_close_ms"]["p50_ms"])


def test_ingest_smoke() -> None:
    result = run_bench("ingest.py", "--panels", "1", "--hours", "0.05", "--repeat", "1",
                       "--realtime-s", "2", "--warmup-s", "1", "--realtime-panels", "1")
    assert result["benchmark"] == "ingest"
    bulk = result["bulk"]
    assert bulk["goal_values_per_s"] == 5_000_000
    assert positive(bulk["simulator_generate_s"])
    for part in ("pregenerated", "with_simulator"):
        figures = bulk[part]
        for key in ("values", "samples", "values_per_s", "wall_s", "rows_written"):
            assert positive(figures[key]), (part, key)
        assert figures["write_errors"] == 0
        assert figures["values"] == 4 * figures["samples"]
    realtime = result["realtime"]
    for key in ("measured_wall_s", "peak_rss_mb", "rss_after_imports_mb", "samples_in"):
        assert positive(realtime[key]), key
    assert realtime["cpu_percent_of_one_core"] >= 0
    assert realtime["goal_cpu_percent"] == 3.0
    assert realtime["goal_peak_rss_mb"] == 200.0
    assert isinstance(realtime["meets_goal"], bool)


def test_query_smoke(tmp_path: Path) -> None:
    db = tmp_path / "bench.duckdb"
    args = ("--days", "1", "--panels", "1", "--rate-hz", "1", "--reps", "3", "--warmup", "1",
            "--db", str(db))
    result = run_bench("query.py", *args)
    assert result["benchmark"] == "query"
    assert not result["params"]["reused_db"]
    assert positive(result["build"]["total_s"])
    storage = result["storage"]
    assert storage["rows_1s"] == 86_400
    assert positive(storage["bytes_per_row_1s"])
    assert positive(storage["file_bytes_per_1s_row"])
    queries = result["queries"]
    for name in ("daily_energy", "daily_energy_sql", "fivemin_day", "fivemin_day_sql",
                 "daily_energy_sql_materialized", "fivemin_day_sql_materialized",
                 "onesec_hour_panel"):
        assert positive(queries[name]["p50_ms"]), name
        assert positive(queries[name]["rows"]), name
    assert queries["daily_energy"]["rows"] == 1
    assert queries["fivemin_day"]["rows"] == 288
    # a second run reuses the store instead of building it again
    again = run_bench("query.py", *args)
    assert again["params"]["reused_db"]
    assert again["build"] is None
    assert again["storage"]["rows_1s"] == 86_400


def test_pg_engine_smoke() -> None:
    """One day of one panel into a throwaway PostgreSQL; TimescaleDB reported as skipped when
    no server is configured."""
    result = run_bench("pg_engine.py", "--days", "1", "--panels", "1", "--reps", "2",
                       "--repeat", "2", "--timescale-url", "")
    plain = result["plain"]
    assert plain["layout"] == "plain" and plain["ingest"]["rows"] == 86400
    assert len(plain["ingest"]["rows_per_s_all_runs"]) == 2
    assert plain["ingest"]["value_grid"] == "decimal"
    assert positive(plain["ingest"]["rows_per_s"]) and plain["ingest"]["rollup_rows"] > 0
    assert positive(plain["queries"]["dashboard"]["today_5min_curve"]["p50_ms"])
    assert positive(plain["queries"]["reference_no_goal"]["today_5min_every_column"]["p50_ms"])
    assert "skipped" in result["timescaledb"]


def test_lp_write_smoke() -> None:
    result = run_bench("lp_write.py", "--requests", "6", "--lines", "500")
    assert result["benchmark"] == "lp_write" and result["errors"] == []
    assert result["field_values"] == 4 * 500 * 4
    assert positive(result["end_to_end_values_per_s"]) and positive(result["rows_written"])


def test_mirror_smoke() -> None:
    """A few minutes of 2 panels through the InfluxDB mirror (``make bench`` stopped here:
    the sender asked for a queue larger than the settings allow)."""
    result = run_bench("mirror.py", "--panels", "2", "--hours", "0.05", "--repeat", "1")
    assert result["benchmark"] == "mirror"
    assert positive(result["sender"]["points_per_s"])
    assert positive(result["ingest"]["values_per_s_without_mirror"])


def test_api_smoke(tmp_path: Path) -> None:
    result = run_bench("api.py", "--db", str(tmp_path / "s.duckdb"), "--days", "1",
                       "--panels", "2", "--reps", "3", "--warmup", "1", timeout=300)
    assert result["benchmark"] == "api" and result["days"] == 1 and result["panels"] == 2
    assert set(result["calls"]) >= {"latest", "today_5min_curve", "daily_energy_30d"}
    assert all(positive(call["p50_ms"]) and call["bytes"] >= 2 for call in
               result["calls"].values())


def test_import_csv_smoke() -> None:
    result = run_bench("import_csv.py", "--rows", "600", "--panels", "2", "--rate-hz", "10")
    assert result["benchmark"] == "import_csv"
    assert (result["rows"], result["panels"], result["rate_hz"]) == (600, 2, 10.0)
    assert result["goal_values_per_s"] == 1_000_000
    assert result["imported"] == 600 and result["rejected"] == 0
    assert result["rows_written"] == 2 * 30    # 300 readings a panel at 10 Hz: 30 seconds
    assert isinstance(result["rollup_rows"], int) and result["rollup_rows"] >= 0
    assert isinstance(result["csv_mb"], float)     # 600 rows round to 0.0 MB
    for key in ("seconds", "field_values_per_s", "rows_per_s", "peak_rss_mb"):
        assert positive(result[key]), key


def test_import_slow_series_smoke() -> None:
    """A week of 15-minute data for 2 sites through the real CLI: at most 4 stored 1 s rows
    per sample (issue 15 point 7; a count, not a timing) and the energy of the reference."""
    result = run_bench("import_slow_series.py", "--days", "7", "--series", "2")
    assert result["benchmark"] == "import_slow_series"
    assert (result["days"], result["series"], result["step_s"]) == (7, 2, 900)
    assert result["rows_in"] == result["samples_stored"] == 2 * 7 * 96
    assert result["rows_1s_stored"] <= 4 * result["rows_in"]
    assert result["rows_per_sample"] <= 4.0
    assert result["energy_exact"] is True
    assert result["goal_peak_rss_mb"] == 500.0 and result["goal_rows_per_sample"] == 4.0
    for key in ("seconds", "peak_rss_mb", "energy_wh", "daily_energy_wh",
                "reference_energy_wh"):
        assert positive(result[key]), key


def test_read_under_write_smoke() -> None:
    result = run_bench("read_under_write.py", "--writers", "2", "--lines", "50",
                       "--seconds", "1", "--idle-seconds", "0.3")
    assert result["benchmark"] == "read_under_write"
    assert result["reader"] == "own process"
    assert result["goal_read_p99_ms"] == 100.0 and result["goal_health_p99_ms"] == 50.0
    assert result["goal_values_per_s"] == 1_000_000
    assert result["errors"] == []
    for key in ("ingest_values_per_s", "requests_accepted", "wall_s", "reads_p99_ms",
                "health_p99_ms"):
        assert positive(result[key]), key
    for phase in ("idle", "under_load"):
        assert set(result[phase]) == {"health", "latest", "curve_5min", "energy_day"}
        for name, figures in result[phase].items():
            assert figures["n"] > 0, (phase, name)
            assert positive(figures["p50_ms"]) and positive(figures["p99_ms"]), (phase, name)


def test_schema_growth_smoke() -> None:
    result = run_bench("schema_growth.py", "--measurements", "5", "--samples", "2",
                       "--window", "2", "--no-postgres")
    assert result["benchmark"] == "schema_growth" and result["goal_p50_ms"] == 20.0
    duck = result["duckdb"]
    assert duck["measurements_present"] == duck["builtin_profiles"] + 5 + 2
    for name in ("first_creations", "last_creations", "create", "add_tag", "add_field"):
        assert positive(duck[name]["p50_ms"]), name
    assert result["postgres"] == {"skipped": "--no-postgres"}


def test_ping_under_growth_smoke() -> None:
    result = run_bench("ping_under_growth.py", "--bodies", "3", "--per-body", "2",
                       "--idle-seconds", "0.3")
    assert result["benchmark"] == "ping_under_growth" and result["goal_ping_p99_ms"] == 50.0
    assert result["errors"] == [] and result["measurements_created"] == 6
    for phase in ("ping_idle", "ping_during_growth", "body_with_new_measurements"):
        assert result[phase]["n"] > 0, phase
        assert positive(result[phase]["p99_ms"]), phase
