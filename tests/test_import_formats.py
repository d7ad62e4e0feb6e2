"""`sunarchive import` of JSON documents (arrays, snapshots, directories of snapshots), line
protocol, Parquet and the lab rig's layout, with real DuckDB files and the real CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.support.cli import cli
from tests.support.importing import T0, one, rows, run_import, write

pytestmark = pytest.mark.integration

ENERGY_TAGS = ("--map", "inverter.serial=device_id", "--tag", "data_source=old-system",
               "--tag", "location=home")


def snapshot(second: int, ppv: float, soc: float, grid: float) -> dict[str, Any]:
    """One status dump of the older system: a timestamp and nested sections."""
    return {"timestamp": f"2025-05-01T12:00:{second:02d}+02:00",
            "inverter": {"serial": "ET123", "ppv": ppv, "battery_soc": soc,
                         "work_mode": "normal"},
            "meter": {"grid_power": grid, "frequency": 50.01},
            "strings": [{"v": 350.1}, {"v": 349.8}]}


def energy_1s(db: Path) -> list[tuple[Any, ...]]:
    """(second, pv_power avg, battery_soc avg, grid_power avg, samples) from the 1 s table."""
    return rows(db, "SELECT strftime(time, '%H:%M:%S'), pv_power_avg, battery_soc_avg, "
                "grid_power_avg, sample_count FROM energy_data_1s "
                "WHERE sample_count > 0 ORDER BY time")


def test_json_array_into_energy_data(tmp_path: Path) -> None:
    doc = [snapshot(0, 1000.0, 50, 300.0), snapshot(1, 1010.0, 51, 310.0),
           snapshot(2, 1020.0, 52, 320.0)]
    path = write(tmp_path / "dump.json", json.dumps(doc, indent=2))
    db = tmp_path / "e.duckdb"
    report = run_import(db, str(path), "--measurement", "energy_data",
                        "--map", "inverter.ppv=pv_power", *ENERGY_TAGS)
    assert (report["rows_read"], report["imported"], report["rejected"]) == (3, 3, 0)
    file = report["files"][0]
    assert file["unit"] == "record"
    assert set(file["unknown_columns"]) == {"inverter.work_mode", "meter.frequency",
                                            "strings"}
    # battery_soc and grid_power matched by the last segment of their dotted names
    assert energy_1s(db) == [("10:00:00", 1000.0, 50.0, 300.0, 1),
                             ("10:00:01", 1010.0, 51.0, 310.0, 1),
                             ("10:00:02", 1020.0, 52.0, 320.0, 1)]
    tags = json.loads(one(db, "SELECT tags FROM sunarchive_series"))
    assert tags == {"device_id": "ET123", "data_source": "old-system", "location": "home"}


def test_json_rejected_records_are_numbered(tmp_path: Path) -> None:
    doc = {"device": "x", "records": [
        {"time": f"{T0}", "panel_id": "p1", "voltage": 20},
        {"time": f"{T0 + 1}", "panel_id": "p1", "voltage": "high"},
        7,
        {"time": f"{T0 + 2}", "panel_id": "p1", "voltage": 22.5}]}
    path = write(tmp_path / "wrapped.json", json.dumps(doc))
    db = tmp_path / "w.duckdb"
    report = run_import(db, str(path))
    assert (report["rows_read"], report["imported"], report["rejected"]) == (4, 2, 2)
    reasons = report["files"][0]["reasons"]
    assert [r["line"] for r in reasons] == [2, 3]
    assert reasons[0]["reason"].startswith("record 2: column 'voltage': 'high'")
    assert reasons[1]["reason"] == "record 3: a JSON int, not an object"
    assert rows(db, "SELECT voltage_avg FROM ps100_readings_1s ORDER BY time") == [
        (20.0,), (22.5,)]
    text = cli("import", "--db", str(db), str(path), "--dry-run").stdout
    assert "already imported on" in text


def test_directory_of_snapshots(tmp_path: Path) -> None:
    folder = tmp_path / "snapshots"
    (folder / "may").mkdir(parents=True)
    # file names out of time order: the run sorts all rows of a measurement by time
    samples = {"c.json": snapshot(10, 1200.0, 55, -50.0), "a.json": snapshot(20, 1100.0, 56, 0),
               "may/b.json": snapshot(0, 1000.0, 54, 100.0)}
    for name, doc in samples.items():
        write(folder / name, json.dumps(doc, indent=2))
    # one file holding an array of two snapshots is two rows
    write(folder / "may/pair.json", json.dumps([snapshot(30, 900.0, 57, 10.0),
                                                snapshot(31, 901.0, 57, 11.0)]))
    db = tmp_path / "s.duckdb"
    args = (str(folder), "--map", "inverter.ppv=pv_power", *ENERGY_TAGS)
    report = run_import(db, *args)
    assert len(report["files"]) == 4
    assert {f["status"] for f in report["files"]} == {"imported"}
    assert report["imported"] == 5 and report["too_late_samples"] == 0
    assert report["start"] == "2025-05-01T10:00:00+00:00"
    assert report["end"] == "2025-05-01T10:00:31+00:00"
    got = energy_1s(db)
    assert got[0] == ("10:00:00", 1000.0, 54.0, 100.0, 1)
    assert ("10:00:10", 1200.0, 55.0, -50.0, 1) in got
    assert ("10:00:20", 1100.0, 56.0, 0.0, 1) in got
    assert got[-2:] == [("10:00:30", 900.0, 57.0, 10.0, 1), ("10:00:31", 901.0, 57.0, 11.0, 1)]
    again = run_import(db, *args)
    assert again["imported"] == 0 and again["skipped_files"] == 4
    assert energy_1s(db) == got


def test_ambiguous_leaf_names_are_not_guessed(tmp_path: Path) -> None:
    doc = {"timestamp": "2025-05-01T12:00:00+02:00", "device_id": "ET1",
           "inverter": {"battery_temp": 30.0, "ppv": 5.0}, "bms": {"battery_temp": 31.0}}
    path = write(tmp_path / "one.json", json.dumps(doc, indent=1))
    db = tmp_path / "a.duckdb"
    report = run_import(db, str(path), "--measurement", "energy_data", "--map",
                        "inverter.ppv=pv_power", "--tag", "data_source=x", "--tag", "location=y")
    file = report["files"][0]
    assert file["imported"] == 1
    assert any("bms.battery_temp" in n and "--map" in n for n in file["notes"]), file["notes"]
    assert {"inverter.battery_temp", "bms.battery_temp"} <= set(file["unknown_columns"])
    report = run_import(tmp_path / "b.duckdb", str(path), "--measurement", "energy_data",
                        "--map", "inverter.ppv=pv_power", "--map", "bms.battery_temp=battery_temp",
                        "--tag", "data_source=x", "--tag", "location=y")
    assert one(tmp_path / "b.duckdb", "SELECT battery_temp_avg FROM energy_data_1s") == 31.0


def test_json_extension_is_sniffed(tmp_path: Path) -> None:
    lines = [json.dumps({"time": f"{T0 + i}", "panel_id": "p1", "voltage": 20 + i})
             for i in range(3)]
    as_lines = write(tmp_path / "lines.json", "\n".join(lines) + "\n")
    as_doc = write(tmp_path / "doc.json", json.dumps(
        {"time": f"{T0 + 5}", "panel_id": "p1", "voltage": 30}, indent=2))
    report = run_import(tmp_path / "j.duckdb", str(as_lines), str(as_doc))
    units = [f["unit"] for f in report["files"]]
    assert units == ["line", "record"] and report["imported"] == 4


LINE_PROTOCOL = f"""# two measurements, a bad line, a line without a timestamp
mpp_measurement,device_id=rig,board=1,channel=2 voltage=0.5,current=0.1,power=0.05 {T0}000000000
temperature_measurement,device_id=rig,board=1,channel=1 temperature=25.5 {T0}000000000
mpp_measurement,device_id=rig,board=1,channel=2 voltage=oops {T0}250000000
mpp_measurement,device_id=rig,board=1,channel=2 voltage=0.7,current=0.1,power=0.07 {T0}500000000
temperature_measurement,device_id=rig,board=1,channel=1 temperature=26.5
temperature_measurement,device_id=rig,board=1,channel=1 temperature=27.5 {T0 + 1}000000000
"""


def test_line_protocol_two_measurements_and_bad_lines(tmp_path: Path) -> None:
    path = write(tmp_path / "rig.lp", LINE_PROTOCOL)
    db = tmp_path / "lp.duckdb"
    report = run_import(db, str(path))
    file = report["files"][0]
    assert file["measurements"] == {"mpp_measurement": 2, "temperature_measurement": 2}
    assert (file["rows_read"], file["imported"], file["rejected"]) == (6, 4, 2)
    assert [r["line"] for r in file["reasons"]] == [4, 6]
    assert "'voltage'" in file["reasons"][0]["reason"] and "oops" in file["reasons"][0]["reason"]
    assert "no timestamp" in file["reasons"][1]["reason"]
    assert rows(db, "SELECT voltage_avg, voltage_min, voltage_max, sample_count "
                "FROM mpp_measurement_1s") == [(pytest.approx(0.6), 0.5, 0.7, 2)]
    assert rows(db, "SELECT temperature_avg FROM temperature_measurement_1s "
                "WHERE sample_count > 0 ORDER BY time") == [(25.5,), (27.5,)]
    again = run_import(db, str(path))
    assert again["imported"] == 0 and again["skipped_files"] == 1
    assert one(db, "SELECT SUM(sample_count) FROM mpp_measurement_1s") == 2


def test_line_protocol_measurement_without_profile_and_options(tmp_path: Path) -> None:
    body = (f"weather,site=roof temp=21.5,rain_count=3i {T0}000000\n"
            f"temperature_measurement,device_id=rig,board=1,channel=1 temp_c=25.5 {T0}000000\n"
            f"temperature_measurement,device_id=rig,board=1,channel=1,odd=1 temp_c=9 {T0}000000\n")
    path = write(tmp_path / "mixed.line", body)
    db = tmp_path / "m.duckdb"
    dry = run_import(db, str(path), "--precision", "us", "--map", "temp_c=temperature",
                     "--dry-run")
    assert dry["imported"] == 2 and not db.exists()
    assert any("'weather' had no profile" in n for n in dry["files"][0]["notes"])
    report = run_import(db, str(path), "--precision", "us", "--map", "temp_c=temperature")
    file = report["files"][0]
    assert file["measurements"] == {"temperature_measurement": 1, "weather": 1}
    assert any("'weather' had no profile: created one" in n for n in file["notes"])
    assert file["reasons"] == [{"line": 3, "reason": "tag 'odd' is not one of the tags of "
                                "temperature_measurement (device_id, board, channel)"}]
    assert report["start"] == "2026-06-21T10:00:00+00:00"
    assert rows(db, "SELECT temp_avg, rain_count_last FROM weather_1s") == [(21.5, 3.0)]
    assert one(db, "SELECT temperature_avg FROM temperature_measurement_1s") == 25.5
    # --measurement: only that measurement's lines
    only = run_import(tmp_path / "o.duckdb", str(path), "--precision", "us",
                      "--measurement", "weather")
    assert only["files"][0]["measurements"] == {"weather": 1}
    assert any("left out" in n for n in only["files"][0]["notes"])


@pytest.mark.parametrize(("precision", "seconds_per_unit"), [("m", 60), ("h", 3600)])
def test_line_protocol_in_minutes_and_hours(tmp_path: Path, precision: str,
                                            seconds_per_unit: int) -> None:
    """InfluxDB's precisions m and h, as the write endpoints take them."""
    assert T0 % 3600 == 0
    path = write(tmp_path / "coarse.line", f"weather,site=roof temp=20 {T0 // seconds_per_unit}\n"
                 f"weather,site=roof temp=22 {T0 // seconds_per_unit + 1}\n")
    report = run_import(tmp_path / "c.duckdb", str(path), "--precision", precision)
    assert report["imported"] == 2
    assert report["start"] == "2026-06-21T10:00:00+00:00"
    times = rows(tmp_path / "c.duckdb", "SELECT epoch(time)::BIGINT FROM weather_1s "
                 "WHERE sample_count > 0 ORDER BY time")
    assert times == [(T0,), (T0 + seconds_per_unit,)]


def test_parquet_aware_naive_and_epoch_times(tmp_path: Path) -> None:
    aware = tmp_path / "aware.parquet"
    pq.write_table(pa.table({
        "time": pa.array([T0 * 10**9, T0 * 10**9 + 500_000_000, None],
                         pa.timestamp("ns", "Europe/Berlin")),
        "panel_id": ["p1", "p1", "p1"], "voltage": [20.0, 22.0, 1.0]}), aware)
    naive = tmp_path / "naive.pq"   # wall clock of Berlin: 12:00 CEST = 10:00 UTC
    pq.write_table(pa.table({
        "time": pa.array([(T0 + 7200) * 10**6, (T0 + 7201) * 10**6], pa.timestamp("us")),
        "panel_id": pa.array(["p2", "p2"]).dictionary_encode(),
        "pv": pa.array([{"power": 40.0}, {"power": 44.0}])}), naive)
    epoch = tmp_path / "epoch.parquet"
    pq.write_table(pa.table({"time": [T0 * 1000, T0 * 1000 + 1000], "panel_id": ["p3", "p3"],
                             "voltage": pa.array([5, 6], pa.int32())}), epoch)
    db = tmp_path / "p.duckdb"
    report = run_import(db, str(aware), str(naive), str(epoch), "--map", "pv.power=power")
    by_path = {Path(f["path"]).name: f for f in report["files"]}
    assert by_path["aware.parquet"]["imported"] == 2
    assert by_path["aware.parquet"]["reasons"] == [
        {"line": 3, "reason": "row 3: column 'time': empty time"}]
    assert by_path["naive.pq"]["rejected"] == 2 and "--timezone" in \
        by_path["naive.pq"]["reasons"][0]["reason"]
    assert by_path["epoch.parquet"]["imported"] == 2
    assert rows(db, "SELECT tags, voltage_avg, sample_count FROM ps100_readings_1s "
                f"JOIN sunarchive_series USING (series_id) WHERE time = to_timestamp({T0}) "
                "ORDER BY tags") == [('{"panel_id": "p1"}', pytest.approx(21.0), 2),
                                     ('{"panel_id": "p3"}', 5.0, 1)]
    # the store's site zone is UTC now (it holds data): naive Berlin times go to a store
    # whose days are Berlin days
    db = tmp_path / "berlin.duckdb"
    report = run_import(db, str(naive), "--map", "pv.power=power", "--timezone",
                        "Europe/Berlin")
    assert report["imported"] == 2 and report["start"] == "2026-06-21T10:00:00+00:00"
    assert rows(db, "SELECT power_avg FROM ps100_readings_1s JOIN sunarchive_series "
                "USING (series_id) WHERE tags LIKE '%p2%' ORDER BY time") == [(40.0,), (44.0,)]


LAB_TXT = ("Timestamp\tCurrent\tVoltage\n"
           "01/03/2024 12:00:00\t0.10\t0.50\n"
           "01/03/2024 12:00:00.5\t0.20\t0.60\n"
           "13/03/2024 12:00:01\tnone\t0.55\n")


def test_lab_layout(tmp_path: Path) -> None:
    data = tmp_path / "board1"
    (data / "older").mkdir(parents=True)
    write(data / "cell.txt", LAB_TXT)
    write(data / "more.csv", "time,I,V,P\n2024/03/01 12:00:01,0.3,0.5,0.2\n")
    write(data / "older" / "not-read.csv", "time,I,V\n2024/03/01 12:00:05,1,1\n")
    db = tmp_path / "lab.duckdb"
    missing = cli("import", "--db", str(db), "--data-dir", str(data), "--data-type", "mpp",
                  check=False)
    assert missing.returncode == 2
    assert "--board" in missing.stderr and "--channel" in missing.stderr
    report = run_import(db, "--data-dir", str(data), "--data-type", "mpp", "--board", "1",
                        "--channel", "3", "--timezone", "Europe/Berlin")
    assert [Path(f["path"]).name for f in report["files"]] == ["cell.txt", "more.csv"]
    assert (report["imported"], report["rejected"]) == (3, 1)
    assert report["files"][0]["reasons"][0]["line"] == 4
    # 1 March 12:00 CET = 11:00 UTC; power = current × voltage where the file has none
    assert rows(db, "SELECT strftime(time, '%Y-%m-%d %H:%M:%S'), power_avg, power_count, "
                "current_avg FROM mpp_measurement_1s WHERE sample_count > 0 ORDER BY time") == [
        ("2024-03-01 11:00:00", pytest.approx((0.05 + 0.12) / 2), 2, pytest.approx(0.15)),
        ("2024-03-01 11:00:01", 0.2, 1, 0.3)]
    assert json.loads(one(db, "SELECT tags FROM sunarchive_series")) == {
        "device_id": "", "board": "1", "channel": "3"}
    again = run_import(db, "--data-dir", str(data), "--data-type", "mpp", "--board", "1",
                       "--channel", "3", "--timezone", "Europe/Berlin")
    assert again["imported"] == 0 and again["skipped_files"] == 2


def test_lab_temperature_without_board(tmp_path: Path) -> None:
    data = tmp_path / "temps"
    data.mkdir()
    write(data / "t.txt", "DateTime\tTemp\tRawReading\n2024-03-01 12:00:00\t21.5\t812\n")
    db = tmp_path / "t.duckdb"
    report = run_import(db, "--data-dir", str(data), "--data-type", "temperature",
                        "--timezone", "UTC", "--tag", "device_id=pt100-a")
    assert report["imported"] == 1
    assert report["files"][0]["unknown_columns"] == ["RawReading"]
    assert one(db, "SELECT temperature_avg FROM temperature_measurement_1s") == 21.5
    assert json.loads(one(db, "SELECT tags FROM sunarchive_series")) == {
        "device_id": "pt100-a", "board": "", "channel": ""}


def test_dry_run_of_every_format_writes_nothing(tmp_path: Path) -> None:
    write(tmp_path / "rig.lp", LINE_PROTOCOL + f"weather,site=roof temp=20 {T0}000000000\n")
    write(tmp_path / "dump.json", json.dumps([{"time": T0, "panel_id": "p", "voltage": 1}]))
    pq.write_table(pa.table({"time": [T0], "panel_id": ["p"], "voltage": [1.0]}),
                   tmp_path / "x.parquet")
    db = tmp_path / "dry.duckdb"
    report = run_import(db, str(tmp_path), "--dry-run")
    assert [f["status"] for f in report["files"]] == ["valid", "valid", "valid"]
    assert report["imported"] == 4 + 1 + 1 + 1
    assert not db.exists()


def test_naive_times_at_dst_changes(tmp_path: Path) -> None:
    """Berlin: a spring-gap time is read with the offset before the gap (distinct times stay
    distinct); an autumn time that occurs twice is the earlier instant. Text and Parquet agree."""
    local = ["2026-03-29 01:59:00", "2026-03-29 02:15:00", "2026-03-29 02:45:00",
             "2026-10-25 02:30:00"]
    want = ["00:59:00", "01:15:00", "01:45:00", "00:30:00"]   # UTC
    csv = write(tmp_path / "dst.csv", "time,panel_id,voltage\n" + "".join(
        f"{t},p1,{20 + i}\n" for i, t in enumerate(local)))
    table = pa.table({"time": pa.array(local).cast(pa.timestamp("s")),
                      "panel_id": ["p2"] * 4, "voltage": [20.0, 21.0, 22.0, 23.0]})
    parquet = tmp_path / "dst.parquet"
    pq.write_table(table, parquet)
    db = tmp_path / "dst.duckdb"
    report = run_import(db, str(csv), str(parquet), "--timezone", "Europe/Berlin")
    assert report["imported"] == 8 and report["rejected"] == 0
    for panel in ("p1", "p2"):
        got = rows(db, "SELECT strftime(time, '%H:%M:%S'), voltage_avg FROM ps100_readings_1s "
                   "s JOIN sunarchive_series USING (series_id) WHERE sample_count > 0 AND "
                   f"tags LIKE '%{panel}%' ORDER BY voltage_avg")
        assert [t for t, _ in got] == want, panel
