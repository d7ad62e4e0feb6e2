"""The console of a running collector shows the ``conditions_estimate`` of the view (issue 18,
point 2: one shared definition; the rules themselves: tests/test_ps100_conditions_rules.py):
every panel's latest row carries the view's expected power and words for that very second."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sunarchive.app import build_app
from sunarchive.console import condition, render
from sunarchive.settings import load_settings
from tests.support.cli import cli
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration


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
