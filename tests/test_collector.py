"""`run`/`demo` as processes: clean stop flushes everything, a kill leaves a readable store,
`monitor` attaches to a running collector, a restart resumes without double counting."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import pytest

from tests.support.cli import clean_env, cli
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "sunarchive", *args], env=clean_env(),
                            cwd=tempfile.gettempdir(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _rows(db: Path) -> tuple[int, int]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        row = con.execute("SELECT COUNT(*), SUM(sample_count) FROM ps100_readings_1s").fetchone()
        assert row is not None
        return int(row[0]), int(row[1] or 0)
    finally:
        con.close()


def test_sigterm_flushes_every_sample(tmp_path: Path) -> None:
    db = tmp_path / "run.duckdb"
    proc = _start("demo", "--db", str(db), "--speed", "20", "--panels", "2", "--no-console",
                  "--start", "2026-06-21T12:00:00+02:00")
    live = Path(str(db) + ".live.json")
    wait_until(live.exists, f"{live} to appear", poll_s=0.2)
    time.sleep(2)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    rows, samples = _rows(db)
    assert summary["samples_in"] > 0
    assert samples == summary["samples_in"]  # every accepted sample is in the store
    assert rows == summary["rows_written"]
    assert not live.exists()  # the live file goes away with the collector


def test_kill_leaves_readable_store_and_restart_resumes(tmp_path: Path) -> None:
    db = tmp_path / "kill.duckdb"
    start = "2026-06-21T10:00:00+02:00"
    proc = _start("demo", "--db", str(db), "--speed", "0", "--panels", "3", "--no-console",
                  "--start", start)
    wait_until(Path(str(db) + ".live.json").exists, "the live file", poll_s=0.2)
    time.sleep(3)
    proc.kill()
    proc.wait(timeout=30)
    rows, samples = _rows(db)
    assert rows > 0 and samples > 0
    last = duckdb.connect(str(db), read_only=True).execute(
        "SELECT MAX(time) FROM ps100_readings_1s").fetchone()
    assert last is not None
    # same start again: the demo resumes after the stored data instead of writing it twice
    result = cli("demo", "--db", str(db), "--speed", "0", "--panels", "3", "--no-console",
                 "--start", start, "--duration", "600")
    assert "resuming after it" in result.stderr
    con = duckdb.connect(str(db), read_only=True)
    dupes = con.execute("SELECT COUNT(*) FROM (SELECT series_id, time FROM ps100_readings_1s "
                        "GROUP BY ALL HAVING COUNT(*) > 1)").fetchone()
    assert dupes == (0,)
    per_second = con.execute("SELECT MAX(sample_count) FROM ps100_readings_1s").fetchone()
    assert per_second is not None and per_second[0] <= 10
    # rollups caught up: 5-minute energy equals the 1 s energy for every complete bucket
    diff = con.execute("""
        SELECT MAX(ABS(f.energy_wh - s.e)) FROM ps100_readings_5min_materialized f JOIN (
            SELECT series_id, time_bucket(INTERVAL 5 MINUTE, time) AS b, SUM(energy_wh) AS e
            FROM ps100_readings_1s GROUP BY ALL) s ON s.series_id = f.series_id AND s.b = f.time
    """).fetchone()
    assert diff is not None and diff[0] is not None and diff[0] < 1e-6


def test_monitor_attaches_to_running_collector(tmp_path: Path) -> None:
    db = tmp_path / "mon.duckdb"
    proc = _start("demo", "--db", str(db), "--speed", "1", "--panels", "2", "--no-console",
                  "--start", "2026-06-21T12:00:00+02:00")
    try:
        wait_until(Path(str(db) + ".live.json").exists, "the live file", poll_s=0.2)
        time.sleep(3)
        snapshot = json.loads(cli("monitor", "--db", str(db), "--json").stdout)
        assert snapshot["targets_hz"] == {"ps100_readings": 20.0}
        panels = [e for e in snapshot["latest"] if e["measurement"] == "ps100_readings"]
        assert sorted(e["tags"][0] for e in panels) == ["panel_1", "panel_2"]
        assert all(e["values"]["power_avg"] > 20 for e in panels)  # solstice noon
        assert all(0 <= e["buffered"] <= 40 for e in panels)  # ≈ lateness × 10 Hz
        # the collector holds the file: status asks it through its API
        status = json.loads(cli("status", "--db", str(db), "--json").stdout)
        assert "answered by the running instance" in status["note"]
        assert status["live"]["counters"]["samples_in"] > 0
        tables = {t["table"]: t["rows"] for t in status["tables"]}
        assert tables["ps100_readings_1s"] > 0
        frame = cli("monitor", "--db", str(db), "--once").stdout
        for text in ("System", "panel_1", "panel_2", "Statistics", "uptime", "Alerts", "W",
                     "buffered", "condition"):
            assert text in frame
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
    assert proc.returncode == 0
    missing = cli("monitor", "--db", str(db), "--json", check=False)
    assert missing.returncode == 1 and "no running collector" in missing.stderr


def test_run_with_config_file(tmp_path: Path) -> None:
    db = tmp_path / "cfg.duckdb"
    config = tmp_path / "sunarchive.yaml"
    config.write_text(f"""
database_url: duckdb:///{db}
timezone: ${{SITE_TZ}}
sources:
  - type: simulator
    name: roof
    panels: 2
    speed: 0
    start: 2026-06-21T12:00:00+02:00
""")
    result = cli("run", "--config", str(config), "--duration", "120", "--no-console",
                 env={"SITE_TZ": "Europe/Berlin"})
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["rows_written"] == 2 * 120
    info = json.loads(cli("status", "--config", str(config), "--json",
                          env={"SITE_TZ": "Europe/Berlin"}).stdout)
    assert info["timezone"] == "Europe/Berlin"
