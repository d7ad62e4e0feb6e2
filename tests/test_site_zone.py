"""The site's time zone is recorded in the store: daily buckets never mix two zones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from tests.support.cli import cli

pytestmark = pytest.mark.integration


def _csv(path: Path, start: datetime, hours: int) -> Path:
    lines = ["time,panel_id,power"]
    for minute in range(hours * 60):
        at = start + timedelta(minutes=minute)
        lines.append(f"{at.isoformat()},p1,100.0")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _import(db: Path, csv: Path, *zone: str, check: bool = True) -> object:
    return cli("import", "--db", str(db), str(csv), "--measurement", "ps100_readings",
               *zone, check=check)


def test_a_second_zone_is_refused_and_no_zone_uses_the_recorded_one(tmp_path: Path) -> None:
    db = tmp_path / "z.duckdb"
    first = _csv(tmp_path / "a.csv", datetime(2026, 6, 21, 0, tzinfo=UTC), 12)
    rest = _csv(tmp_path / "b.csv", datetime(2026, 6, 21, 12, tzinfo=UTC), 30)
    _import(db, first, "--timezone", "America/Denver")
    refused = cli("import", "--db", str(db), str(rest), "--measurement", "ps100_readings",
                  "--timezone", "UTC", check=False)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "site time zone is America/Denver" in refused.stderr
    _import(db, rest)                                   # no zone given: the recorded one
    with duckdb.connect(str(db), read_only=True) as con:
        days = con.execute("SELECT time, day, sample_count FROM ps100_readings_daily "
                           "ORDER BY time").fetchall()
        samples_1s = con.execute("SELECT SUM(sample_count) FROM ps100_readings_1s "
                                 "WHERE time < (SELECT MAX(time) FROM ps100_readings_daily)"
                                 ).fetchone()
    assert days, "no complete day stored"
    assert all(t.hour == 6 and t.minute == 0 for t, _, _ in days)   # Denver midnights (MDT)
    assert len({d for _, d, _ in days}) == len(days)                 # no day twice
    assert samples_1s is not None
    assert sum(n for _, _, n in days[:-1]) <= samples_1s[0]          # nothing counted twice
    status = cli("setup", "--db", str(db))
    assert "(0 changes)" in status.stdout
