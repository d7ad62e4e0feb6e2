"""`sunarchive sources` (JSON and the plain table) while `sunarchive run --config` polls a
SunSpec inverter (pymodbus' server in-process), a GoodWe inverter (the UDP fake of
tests/support/goodwe_fake.py) and an ina2xx source whose I2C bus does not exist on this machine.

The ina2xx fake bus (tests/support/ina_fake.py) is an in-process object that a config cannot
name, so the ina2xx source here opens a missing /dev/i2c-N: it shows up as `offline` with the
error."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.support.collector_run import running_collector
from tests.support.goodwe_fake import FakeGoodWe
from tests.support.sunspec_fake import DEVICE_103, ModbusServer
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration


def missing_i2c_bus() -> int:
    return next(n for n in range(99, 1000) if not Path(f"/dev/i2c-{n}").exists())


def config_text(modbus_port: int, goodwe_host: str, i2c_bus: int) -> str:
    return (
        "sources:\n"
        f"  - {{type: sunspec, name: inverter, host: 127.0.0.1, port: {modbus_port},\n"
        "     poll_interval_s: 0.5}\n"
        f"  - {{type: goodwe, name: house, host: {goodwe_host}, poll_interval_s: 0.5,\n"
        "     request_timeout_s: 0.3, retries: 1}\n"
        f"  - type: ina2xx\n    name: shunts\n    bus: {i2c_bus}\n"
        "    panels:\n"
        "      - {panel_id: p1, address: 0x40, shunt_ohm: 0.01, max_current_a: 4, voc_v: 33.6}\n")


@contextmanager
def devices() -> Iterator[tuple[ModbusServer, FakeGoodWe]]:
    modbus = ModbusServer(40000, DEVICE_103).start()
    try:
        goodwe = FakeGoodWe()
        try:
            yield modbus, goodwe
        finally:
            goodwe.stop()
    finally:
        modbus.stop()


def settled(listed: dict[str, dict[str, Any]]) -> bool:
    """Both inverters read at least once and the missing bus reported."""
    return (all(listed[n]["state"] == "connected" and listed[n].get("samples", 0) > 0
                for n in ("inverter", "house"))
            and listed["shunts"]["state"] == "offline")


def test_sources_lists_sunspec_goodwe_and_ina2xx_with_their_states(tmp_path: Path) -> None:
    bus = missing_i2c_bus()
    config, db = tmp_path / "sunarchive.yaml", tmp_path / "store.duckdb"
    with devices() as (modbus, goodwe):
        config.write_text(config_text(modbus.port, goodwe.host, bus))
        with running_collector(config, db) as run:
            wait_until(lambda: run.process.poll() is not None or settled(run.sources()),
                       "both inverters read and the bus offline", poll_s=0.2)
            listed = run.sources()
            table = run.sources_table()
    assert run.returncode == 0, run.err
    assert {name: (s["type"], s["state"]) for name, s in listed.items()} == {
        "inverter": ("sunspec", "connected"), "house": ("goodwe", "connected"),
        "shunts": ("ina2xx", "offline")}
    assert listed["inverter"]["errors"] == 0 and listed["house"]["errors"] == 0
    assert listed["shunts"]["errors"] >= 1
    assert f"/dev/i2c-{bus}" in listed["shunts"]["last_error"]
    assert run.summary()["write_errors"] == 0
    lines = table.splitlines()
    assert "sources" in lines[0]
    for name, kind, state in (("inverter", "sunspec", "connected"),
                              ("house", "goodwe", "connected"), ("shunts", "ina2xx", "offline")):
        (row,) = [line for line in lines if f" {name} " in line]
        assert kind in row and state in row, table
