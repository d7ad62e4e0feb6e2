"""The GoodWe plan's data-access API against a real ``sunarchive serve``: charging sessions by
date range and energy data as lists of records (``shape=table``: the ``{columns, rows}``
answer of the other read endpoints)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from tests.support.cli import cli
from tests.support.goodwe_files import T0, ZONE, session, snapshots, write_json
from tests.support.serving import Served, get, serve, stop

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A store with 6 readings of two inverters and three sessions, served."""
    base = tmp_path_factory.mktemp("goodwe")
    write_json(base / "out" / "house.json", snapshots(T0, 6, device_id="gw1"))
    write_json(base / "out" / "garage.json", snapshots(T0, 3, step_s=20, device_id="gw2"))
    write_json(base / "out" / "sessions.json", [
        session("night", T0 - timedelta(hours=5)),                    # 03:00 local, 1 May
        session("evening", T0 + timedelta(hours=15), total_cost_pln=1.1),  # 23:00 local
        session("next", T0 + timedelta(hours=17))])                    # 01:00 local, 2 May
    db = base / "s.duckdb"
    cli("import", "--goodwe", str(base / "out"), "--db", str(db), "--timezone", ZONE)
    served = serve(db, "--timezone", ZONE)
    yield served
    stop(served)


def test_charging_sessions_of_a_local_day(api: Served) -> None:
    day = get(api, "/api/charging-sessions", start_date="2025-05-01", end_date="2025-05-01")
    assert day.status_code == 200
    rows = day.json()
    assert [r["session_id"] for r in rows] == ["night", "evening"]
    assert rows[0] == {**rows[0], "start_time": "2025-05-01T01:00:00+00:00",
                       "end_time": "2025-05-01T03:00:00+00:00", "battery_soc_start": 20,
                       "battery_soc_end": 80, "energy_charged_kwh": 6.0,
                       "average_price_pln": 0.4124, "total_cost_pln": 2.48,
                       "status": "completed"}
    assert set(rows[0]) == {"id", "session_id", "start_time", "end_time", "battery_soc_start",
                            "battery_soc_end", "energy_charged_kwh", "average_price_pln",
                            "total_cost_pln", "status", "created_at"}
    assert rows[1]["total_cost_pln"] == 1.1
    instants = get(api, "/api/charging-sessions", start_date="2025-05-01T20:00:00Z",
                   end_date="2025-05-02T00:00:00+00:00").json()
    assert [r["session_id"] for r in instants] == ["evening", "next"]


def test_charging_sessions_refuse_naive_times(api: Served) -> None:
    answer = get(api, "/api/charging-sessions", start_date="2025-05-01T00:00:00")
    assert answer.status_code == 400 and "start_date" in answer.json()["error"]


def test_energy_data_as_records(api: Served) -> None:
    answer = get(api, "/api/energy-data", start_time=T0.isoformat(),
                 end_time=(T0 + timedelta(minutes=5)).isoformat(), device_id="gw1", tier="1s")
    assert answer.status_code == 200
    records = answer.json()
    assert [r["timestamp"] for r in records] == \
        [(T0 + timedelta(seconds=10 * i)).isoformat() for i in range(6)]
    assert records[1] == {"timestamp": "2025-05-01T06:00:10+00:00", "device_id": "gw1",
                          "data_source": "goodwe-json", "location": "home", "battery_soc": 41.0,
                          "battery_temp": 20.1, "battery_power": None, "pv_power": 1007.5,
                          "grid_power": -199.0, "consumption": 800.25, "price": 0.51}
    both = get(api, "/api/energy-data", start_time=T0.isoformat(),
               end_time=(T0 + timedelta(minutes=5)).isoformat(), tier="1s").json()
    assert sorted({r["device_id"] for r in both}) == ["gw1", "gw2"] and len(both) == 9


def test_energy_data_table_shape(api: Served) -> None:
    table = get(api, "/api/energy-data", start_time=T0.isoformat(),
                end_time=(T0 + timedelta(minutes=5)).isoformat(), device_id="gw2",
                shape="table").json()
    assert table["measurement"] == "energy_data" and "pv_power_avg" in table["columns"]
    assert sum(r[table["columns"].index("sample_count")] for r in table["rows"]) == 3
