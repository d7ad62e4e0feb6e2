"""``sunarchive import --goodwe``: the older optimiser's JSON snapshots and charging sessions,
with good, bad and repeated records, imported once; then the plan's "validate migration"
step, for a store that matches and for one changed behind the import's back."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.support.cli import cli
from tests.support.goodwe_files import T0, ZONE, session, snapshot, snapshots, write_json
from tests.support.importing import one

pytestmark = pytest.mark.integration
SERIES = "energy_data device_id=goodwe data_source=goodwe-json location=home"


def _files(out: Path) -> dict[str, Path]:
    readings = snapshots(T0, 40)
    first = readings[:30]
    first.insert(4, snapshot(T0 + timedelta(seconds=35), pv_power="high"))   # record 5
    second = readings[20:]                                  # 10 repeat the end of the first
    sessions = [session("s1", T0 - timedelta(hours=5)), session("s2", T0 + timedelta(hours=14),
                                                                 energy_charged_kwh=1.5),
                session("s1", T0 - timedelta(hours=5)),                       # repeated
                session("s3", T0, battery_soc_start=150)]                     # record 4: bad
    return {"a": write_json(out / "energy_a.json", first),
            "b": write_json(out / "day" / "energy_b.json", {"data": second}),
            "s": write_json(out / "charging_sessions.json", {"sessions": sessions})}


def _import(db: Path, *args: str) -> Any:
    return cli("import", "--goodwe", *args, "--db", str(db), "--timezone", ZONE, check=False)


def _stored(db: Path) -> tuple[int, int, float]:
    samples = one(db, "SELECT SUM(sample_count) FROM energy_data_1s")
    sessions = one(db, "SELECT COUNT(*) FROM charging_sessions")
    pv = one(db, "SELECT SUM(pv_power_avg * pv_power_count) FROM energy_data_1s")
    return int(samples), int(sessions), float(pv)


def test_good_bad_and_repeated_records_are_imported_once(tmp_path: Path) -> None:
    files = _files(tmp_path / "out")
    db = tmp_path / "s.duckdb"
    result = _import(db, str(tmp_path / "out"))
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("sunarchive:")]
    assert errors == [
        f"sunarchive: error: {files['s']}: record 4: field 'battery_soc_start': 150 is not a "
        "state of charge (0 … 100 %)",
        f"sunarchive: error: {files['a']}: record 5: field 'pv_power': 'high' is not a number"]
    assert "imported 40 snapshots into energy_data (10 already stored or repeated) and 2 " \
           "charging sessions (1 already stored or repeated)" in result.stdout
    assert result.stdout.rstrip().endswith("validation: OK — source and store match "
                                           "(14 checks)")
    expected_pv = sum(1000.0 + 7.5 * i for i in range(40))
    samples, sessions, pv = _stored(db)
    assert (samples, sessions) == (40, 2) and pv == pytest.approx(expected_pv)
    assert one(db, "SELECT energy_charged_kwh FROM charging_sessions WHERE session_id = 's1'"
               ) == pytest.approx(6.0)                   # DECIMAL(10,3): 6.0004 → 6.000

    again = _import(db, str(tmp_path / "out"), "--json")
    report = json.loads(again.stdout)
    assert again.returncode == 2 and report["validation"]["ok"] is True
    assert (report["snapshots_imported"], report["sessions_imported"]) == (0, 0)
    assert _stored(db)[:2] == (40, 2) and _stored(db)[2] == pytest.approx(expected_pv)


def test_the_same_readings_in_a_new_file_are_not_stored_again(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    write_json(tmp_path / "one.json", snapshots(T0, 12))
    assert _import(db, str(tmp_path / "one.json")).returncode == 0
    write_json(tmp_path / "two.json", {"saved": "later", "data": snapshots(T0, 12)})
    result = _import(db, str(tmp_path / "two.json"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "imported 0 snapshots" in result.stdout
    assert _stored(db)[0] == 12


def test_validation_names_what_differs(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    write_json(tmp_path / "out" / "energy.json", snapshots(T0, 20))
    write_json(tmp_path / "out" / "sessions.json",
               [session("s1", T0), session("s2", T0 + timedelta(hours=3))])
    first = _import(db, str(tmp_path / "out"))
    assert first.returncode == 0, first.stdout + first.stderr
    assert "validation: OK" in first.stdout
    con = duckdb.connect(str(db))
    try:
        con.execute("UPDATE energy_data_1s SET pv_power_avg = pv_power_avg + 100 "
                    "WHERE time = (SELECT MIN(time) FROM energy_data_1s)")
        con.execute("UPDATE charging_sessions SET total_cost_pln = 9.99 "
                    "WHERE session_id = 's1'")
        con.execute("DELETE FROM charging_sessions WHERE session_id = 's2'")
    finally:
        con.close()
    check = _import(db, str(tmp_path / "out"), "--dry-run")
    assert check.returncode == 1
    lines = check.stdout.splitlines()
    pv = sum(1000.0 + 7.5 * i for i in range(20))
    assert f"MISMATCH  {SERIES} 2025-05-01  pv_power sum (n): source {pv:.10g} … 20, " \
           f"store {pv + 100:.10g} … 20" in lines
    assert "MISMATCH  charging_sessions  sessions: source 2, store 1" in lines
    assert "MISMATCH  charging_sessions  missing session ids: source s2, store none" in lines
    assert "MISMATCH  charging_sessions s1  total_cost_pln: source 2.48, store 9.99" in lines
    assert "MISMATCH  charging_sessions 2025-05-01  total_cost_pln sum: source 4.96, " \
           "store 9.99" in lines
    assert f"ok  {SERIES}  snapshots: source 20, store 20" in lines
    assert lines[-1] == "validation: MISMATCH — 8 of 16 checks differ"


def test_import_and_validation_on_postgresql(tmp_path: Path, pg_url: str) -> None:
    write_json(tmp_path / "out" / "energy.json", snapshots(T0, 15))
    write_json(tmp_path / "out" / "sessions.json", [session("s1", T0)])
    common = ["import", "--goodwe", str(tmp_path / "out"), "--database-url", pg_url,
              "--timezone", ZONE]
    result = cli(*common)
    assert "imported 15 snapshots" in result.stdout and "validation: OK" in result.stdout
    again = cli(*common)
    assert "imported 0 snapshots" in again.stdout and "validation: OK" in again.stdout


def test_help_explains_the_validation() -> None:
    text = " ".join(cli("import", "--help").stdout.split())
    assert "--goodwe" in text and "validate migration" in text
    assert "Exit 0: imported and matching; 1: the store differs" in text
