"""The console's words for the sky are the ``conditions_estimate`` column's (issue 18, point 2:
"the console's words … one shared definition"): the Python rules and their SQL renderings
agree on any input, and a running collector's console row carries the same expected power
and words as the view shows for that second."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sunarchive.app import build_app
from sunarchive.console import WAITING, condition, render
from sunarchive.settings import load_settings
from sunarchive.upstream.ps100_conditions import (
    clearsky_at,
    clearsky_sql,
    conditions_estimate,
    conditions_sql,
    expected_power_w,
    expected_sql,
)
from tests.support.cli import cli
from tests.support.waiting import wait_until

watts = st.floats(min_value=0.0, max_value=500.0, allow_nan=False)
maybe_watts = st.none() | watts
irradiance = st.floats(min_value=0.0, max_value=1400.0, allow_nan=False)


@pytest.mark.unit
@settings(max_examples=150, deadline=None)
@given(measured=st.none() | watts, expected=maybe_watts,
       rated=st.floats(min_value=1.0, max_value=500.0))
def test_the_words_are_the_same_in_python_and_sql(measured: float | None,
                                                   expected: float | None,
                                                   rated: float) -> None:
    in_sql = duckdb.execute(
        f"SELECT {conditions_sql('m', 'e', 'r')} FROM (SELECT CAST(? AS DOUBLE) AS m, "
        "CAST(? AS DOUBLE) AS e, CAST(? AS DOUBLE) AS r)", [measured, expected, rated]
    ).fetchone()
    assert in_sql is not None
    assert in_sql[0] == conditions_estimate(measured, expected, rated)


@pytest.mark.unit
@settings(max_examples=150, deadline=None)
@given(rated=st.floats(min_value=1.0, max_value=500.0),
       gamma=st.floats(min_value=-1.0, max_value=0.1),
       first=irradiance, following=st.none() | irradiance,
       second=st.integers(min_value=0, max_value=59),
       temperature=st.none() | st.floats(min_value=-30.0, max_value=90.0))
def test_expected_power_is_the_same_in_python_and_sql(
        rated: float, gamma: float, first: float, following: float | None, second: int,
        temperature: float | None) -> None:
    poa = clearsky_sql("c0", "c1", "t")
    expected = expected_sql("rated", "gamma", f"({poa})", "temperature")
    row = duckdb.execute(
        f"SELECT {poa}, {expected} FROM (SELECT CAST(? AS DOUBLE) AS rated, CAST(? AS DOUBLE) "
        "AS gamma, CAST(? AS DOUBLE) AS c0, CAST(? AS DOUBLE) AS c1, "
        "make_timestamp(2026, 6, 21, 12, 30, CAST(? AS DOUBLE)) AS t, "
        "CAST(? AS DOUBLE) AS temperature)",
        [rated, gamma, first, following, second, temperature]).fetchone()
    assert row is not None
    want_poa = clearsky_at(first, following, second)
    assert row[0] == pytest.approx(want_poa, rel=1e-12, abs=1e-9)
    want = expected_power_w(rated, gamma, want_poa, temperature)
    assert want is not None and math.isfinite(want)
    assert row[1] == pytest.approx(want, rel=1e-12, abs=1e-9)


@pytest.mark.unit
def test_console_row_words() -> None:
    entry = {"values": {"power_avg": 80.0}, "expected_power_w": 90.0, "rated_power_w": 100.0}
    assert condition(entry) == conditions_estimate(80.0, 90.0, 100.0) == "Excellent - Full sun"
    assert condition({"values": {"power_avg": 80.0}}) == WAITING
    assert condition({"values": {"power_avg": None}}) == "No data"
    night = {"values": {"power_avg": 0.0}, "expected_power_w": 0.5, "rated_power_w": 100.0}
    assert condition(night) == "Night or no production"


@pytest.mark.integration
def test_a_running_collector_shows_the_views_words(tmp_path: Path) -> None:
    """A simulated noon at speed 1: once the upkeep has the day's grid, every panel's latest
    row in the live snapshot has the view's expected power and words for that very second."""
    db = tmp_path / "c.duckdb"
    settings_ = load_settings(overrides={
        "database_url": f"duckdb:///{db}", "http_enabled": False,
        "maintenance_interval_s": 0.5,
        "simulator": {"panels": 2, "speed": 1.0,
                      "start": datetime(2026, 6, 21, 10, 0, tzinfo=UTC)}},
        env={}, dotenv_file=None)
    app = build_app(settings_, demo=True)
    app.start()
    try:
        def annotated() -> list[dict[str, Any]] | None:
            rows = [e for e in app.live.snapshot()["latest"]
                    if e["measurement"] == "ps100_readings" and "expected_power_w" in e]
            return rows if len(rows) == 2 else None
        rows = wait_until(annotated, "the console rows with a clear-sky expectation",
                          timeout_s=120.0, poll_s=0.2)
        frame = _text(render(app.live.snapshot()))
    finally:
        summary = app.stop()
    assert not summary.get("writer_error")
    for entry in rows:
        panel, second = entry["tags"][0], int(entry["time_s"])
        stamp = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%d %H:%M:%S")
        view = json.loads(cli(
            "sql", "SELECT expected_power_w, conditions_estimate, power_avg FROM "
            f"ps100_readings_1s WHERE panel_id = '{panel}' AND time = TIMESTAMP '{stamp}'",
            "--db", str(db), "--format", "json").stdout)
        assert len(view) == 1, (panel, stamp)
        assert entry["values"]["power_avg"] == pytest.approx(view[0]["power_avg"])
        assert entry["expected_power_w"] == pytest.approx(view[0]["expected_power_w"],
                                                          rel=1e-9)
        assert condition(entry) == view[0]["conditions_estimate"]
        assert view[0]["conditions_estimate"] in frame


def _text(renderable: Any) -> str:
    from rich.console import Console
    console = Console(width=200, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(renderable)
    return console.export_text()
