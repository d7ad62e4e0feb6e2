"""`sunarchive import`: historical CSV / JSON lines through the reducer into every tier, with
real DuckDB files and the real CLI in a subprocess."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from sunarchive.importing.times import epoch_to_ns
from tests.support.cli import clean_env, cli
from tests.support.importing import T0, one, rows, run_import, write

pytestmark = pytest.mark.integration

CSV_OFFSETS = """
time,panel_id,voltage,current,power,temperature
2026-06-21T12:00:00+02:00,p1,20.0,2.0,40.0,30.0
2026-06-21T12:00:00.250+02:00,p1,22.0,2.1,46.2,30.5
2026-06-21T12:00:00.500+02:00,p1,18.0,1.9,34.2,31.0
2026-06-21T10:00:01Z,p1,21.0,2.0,42.0,30.0
2026-06-21T10:00:00Z,p2,10.0,1.0,10.0,25.0
"""


def test_csv_with_offsets_gives_exact_second_stats(tmp_path: Path) -> None:
    db = tmp_path / "a.duckdb"
    report = run_import(db, str(write(tmp_path / "a.csv", CSV_OFFSETS)))
    assert (report["rows_read"], report["imported"], report["rejected"]) == (5, 5, 0)
    assert report["start"] == "2026-06-21T10:00:00+00:00"
    assert report["end"] == "2026-06-21T10:00:01+00:00"
    got = rows(db, "SELECT voltage_avg, voltage_min, voltage_max, sample_count "
               "FROM ps100_readings_1s s JOIN sunarchive_series USING (series_id) "
               f"WHERE time = to_timestamp({T0}) AND tags LIKE '%p1%'")
    assert len(got) == 1
    avg, lo, hi, count = got[0]
    assert (lo, hi, count) == (18.0, 22.0, 3)
    assert avg == pytest.approx(20.0)
    assert one(db, "SELECT COUNT(*) FROM ps100_readings_1s") == 3


def test_naive_times_need_timezone(tmp_path: Path) -> None:
    csv = write(tmp_path / "naive.csv", """
time,panel_id,voltage
2026-06-21 12:00:00,p1,20
2026-06-21 12:00:01,p1,21
""")
    db = tmp_path / "n.duckdb"
    report = run_import(db, str(csv), check=False)
    assert report["imported"] == 0 and report["rejected"] == 2
    reasons = report["files"][0]["reasons"]
    assert [r["line"] for r in reasons] == [2, 3]
    assert "--timezone" in reasons[0]["reason"]
    report = run_import(db, str(csv), "--timezone", "Europe/Berlin")
    assert report["imported"] == 2
    assert report["start"] == "2026-06-21T10:00:00+00:00"   # 12:00 CEST


def test_epoch_column_map_and_tag(tmp_path: Path) -> None:
    csv = write(tmp_path / "epoch.csv", f"""
epoch_ms,volts,watts,site
{T0 * 1000},20,40,roof
{T0 * 1000 + 500},22,44,roof
{T0 * 1000 + 1000},24,48,roof
""")
    db = tmp_path / "e.duckdb"
    report = run_import(db, str(csv), "--measurement", "ps100_readings", "--time-column",
                        "epoch_ms", "--map", "volts=voltage", "--map", "watts=power",
                        "--tag", "panel_id=east-7")
    assert report["imported"] == 3
    assert report["files"][0]["unknown_columns"] == ["site"]
    assert report["start"] == "2026-06-21T10:00:00+00:00"
    got = rows(db, "SELECT tags FROM sunarchive_series")
    assert "east-7" in str(got)
    assert one(db, "SELECT SUM(sample_count) FROM ps100_readings_1s") == 3
    assert one(db, f"SELECT voltage_avg FROM ps100_readings_1s WHERE time = "
               f"to_timestamp({T0})") == pytest.approx(21.0)


def test_epoch_magnitudes() -> None:
    s = epoch_to_ns(np.array([T0, T0 * 1000, T0 * 10**6, T0 * 10**9], np.int64))
    assert (s == T0 * 10**9).all()
    f = epoch_to_ns(np.array([T0 + 0.25]))
    assert f[0] == T0 * 10**9 + 250_000_000


def test_jsonl(tmp_path: Path) -> None:
    lines = [json.dumps({"time": f"2026-06-21T10:00:0{i}Z", "panel_id": "p1",
                         "voltage": 20 + i, "power": 40.0}) for i in range(3)]
    path = write(tmp_path / "a.jsonl", "\n".join(lines) + "\n")
    db = tmp_path / "j.duckdb"
    report = run_import(db, str(path))
    assert report["imported"] == 3
    assert one(db, "SELECT SUM(sample_count) FROM ps100_readings_1s") == 3


def test_jsonl_broken_line_is_rejected(tmp_path: Path) -> None:
    lines = [json.dumps({"time": f"2026-06-21T10:00:0{i}Z", "panel_id": "p1",
                         "voltage": 20 + i}) for i in range(3)]
    lines.insert(1, "{not json")
    path = write(tmp_path / "b.jsonl", "\n".join(lines) + "\n")
    report = run_import(tmp_path / "b.duckdb", str(path))
    assert report["imported"] == 3 and report["rejected"] == 1
    assert report["files"][0]["reasons"][0]["line"] == 2


def test_bad_line_in_the_middle(tmp_path: Path) -> None:
    body = [f"2026-06-21T10:00:{i:02d}Z,p1,{20 + i},2.0" for i in range(10)]
    body[4] = "2026-06-21T10:00:04Z,p1,oops,2.0"
    body[7] = "not-a-time,p1,1,2.0"
    csv = write(tmp_path / "bad.csv", "time,panel_id,voltage,current\n" + "\n".join(body))
    db = tmp_path / "b.duckdb"
    report = run_import(db, str(csv))
    assert (report["rows_read"], report["imported"], report["rejected"]) == (10, 8, 2)
    reasons = report["files"][0]["reasons"]
    assert [r["line"] for r in reasons] == [6, 9]
    assert "'voltage'" in reasons[0]["reason"] and "oops" in reasons[0]["reason"]
    assert one(db, "SELECT SUM(sample_count) FROM ps100_readings_1s") == 8


def _history(path: Path, hours: float, panels: int = 2, step_s: int = 10) -> Path:
    times = np.arange(0, int(hours * 3600), step_s)
    out = ["time,panel_id,voltage,current,power,temperature"]
    for t in times:
        for p in range(panels):
            v = 20 + (t % 7) + p
            out.append(f"{T0 + t},p{p},{v},2,{2 * v},30")
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return path


def test_reimport_adds_nothing_and_all_tiers_have_rows(tmp_path: Path) -> None:
    folder = tmp_path / "history"
    folder.mkdir()
    _history(folder / "day1.csv", hours=30)
    db = tmp_path / "h.duckdb"
    first = run_import(db, str(folder))
    assert first["imported"] == 30 * 360 * 2
    counts = {t: one(db, f"SELECT COUNT(*) FROM ps100_readings_{t}")
              for t in ("1s", "5min", "1hour", "daily")}
    assert all(n > 0 for n in counts.values()), counts
    total = one(db, "SELECT SUM(voltage_avg * sample_count) FROM ps100_readings_1s")
    second = run_import(db, str(folder))
    assert second["imported"] == 0 and second["skipped_files"] == 1
    assert "already imported on" in second["files"][0]["message"]
    assert counts == {t: one(db, f"SELECT COUNT(*) FROM ps100_readings_{t}")
                      for t in ("1s", "5min", "1hour", "daily")}
    assert one(db, "SELECT SUM(voltage_avg * sample_count) FROM ps100_readings_1s") == total


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    csv = write(tmp_path / "a.csv", CSV_OFFSETS)
    db = tmp_path / "d.duckdb"
    report = run_import(db, str(csv), "--dry-run")
    assert report["dry_run"] and report["imported"] == 5
    assert not db.exists()
    result = cli("import", "--db", str(db), str(csv), "--dry-run")
    assert "dry run" in result.stdout and "would import 5" in result.stdout
    assert not db.exists()
    run_import(db, str(csv))
    again = run_import(db, str(csv), "--dry-run")
    assert again["skipped_files"] == 1


def test_unknown_measurement_fails(tmp_path: Path) -> None:
    csv = write(tmp_path / "a.csv", CSV_OFFSETS)
    result = cli("import", "--db", str(tmp_path / "x.duckdb"), str(csv), "--measurement",
                 "nope", "--json", check=False)
    assert result.returncode == 1
    assert "no such profile" in json.loads(result.stdout)["files"][0]["message"]


def test_directory_of_overlapping_files_is_fed_in_time_order(tmp_path: Path) -> None:
    folder = tmp_path / "panels"
    (folder / "sub").mkdir(parents=True)
    for i, where in enumerate([folder, folder / "sub"]):
        body = [f"{T0 + s},p{i},20,2,40,30" for s in range(0, 600)]
        write(where / f"p{i}.csv", "time,panel_id,voltage,current,power,temperature\n"
              + "\n".join(body) + "\n")
    (folder / "notes.md").write_text("not data", encoding="utf-8")
    db = tmp_path / "o.duckdb"
    report = run_import(db, str(folder))
    assert len(report["files"]) == 2
    assert report["imported"] == 1200 and report["too_late_samples"] == 0
    assert one(db, "SELECT SUM(sample_count) FROM ps100_readings_1s") == 1200
    # 40 W held for 599 s per panel (the last sample ends with the data)
    assert one(db, "SELECT SUM(energy_wh) FROM ps100_readings_1s") == pytest.approx(
        2 * 40 * 599 / 3600, rel=1e-4)   # energy_wh is stored rounded per row


def test_reimport_into_postgresql_adds_nothing(tmp_path: Path, pg_url: str) -> None:
    """The import records live in the store, so PostgreSQL remembers them as DuckDB does."""
    csv = _history(tmp_path / "day1.csv", hours=2)
    common = ["import", "--database-url", pg_url, str(csv), "--json"]
    first = json.loads(cli(*common).stdout)
    assert first["imported"] == 2 * 360 * 2
    second = json.loads(cli(*common).stdout)
    assert second["imported"] == 0 and second["skipped_files"] == 1
    rows = cli("sql", "--database-url", pg_url, "--format", "json",
               "SELECT SUM(sample_count) AS n FROM ps100_readings_1s").stdout
    assert json.loads(rows)[0]["n"] == 2 * 360 * 2


def test_quiet_prints_only_failed_files_and_totals(tmp_path: Path) -> None:
    good = write(tmp_path / "a.csv", CSV_OFFSETS)
    bad = write(tmp_path / "b.csv", "no,time,here\n1,2,3\n")
    result = cli("import", "--db", str(tmp_path / "q.duckdb"), str(good), str(bad), "--quiet",
                 check=False)
    assert result.returncode == 1
    assert str(bad) in result.stdout and str(good) not in result.stdout
    assert "imported 5" in result.stdout and result.stderr == ""


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def read_terminal(master: int, process: subprocess.Popen[bytes]) -> str:
    """Everything written to the pseudo-terminal until the child closes it, escapes removed."""
    chunks: list[bytes] = []
    while True:
        ready, _, _ = select.select([master], [], [], 120)
        if not ready:   # a hung child: fail instead of waiting for ever
            process.kill()
            raise AssertionError(f"no terminal output; so far: {b''.join(chunks)!r}")
        try:
            chunk = os.read(master, 4096)
        except OSError:   # EIO: the child closed its side
            break
        if not chunk:
            break
        chunks.append(chunk)
    return ANSI.sub("", b"".join(chunks).decode("utf-8", "replace"))


def test_progress_bar_is_drawn_when_stderr_is_a_terminal(tmp_path: Path) -> None:
    db = tmp_path / "tty.duckdb"
    csv = write(tmp_path / "a.csv", CSV_OFFSETS)
    master, slave = pty.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "sunarchive", "import", "--db", str(db), str(csv)],
            cwd=tempfile.gettempdir(), env=clean_env({"TERM": "xterm", "COLUMNS": "100"}),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave)
        os.close(slave)
        terminal = read_terminal(master, process)
        out, _ = process.communicate(timeout=120)
    finally:
        os.close(master)
    assert process.returncode == 0, terminal
    # the bar's last frame: every file read, every row imported
    assert re.search(r"reading files\s+━+ 1/1 \d+:\d\d:\d\d", terminal), terminal
    assert re.search(r"importing rows\s+━+ 5/5 \d+:\d\d:\d\d", terminal), terminal
    assert f"{csv}: imported into ps100_readings, 5 rows read" in out.decode()
    assert one(db, "SELECT SUM(sample_count) FROM ps100_readings_1s") == 5
    # without a terminal there is no bar
    piped = cli("import", "--db", str(tmp_path / "piped.duckdb"), str(csv))
    assert "reading files" not in piped.stderr and "━" not in piped.stderr
    assert f"{csv}: imported" in piped.stdout
