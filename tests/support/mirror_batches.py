"""Batches the InfluxDB mirror tests send: one Hoymiles poll (DTU, inverter, port)."""

from __future__ import annotations

import numpy as np

from sunarchive.model import SampleBatch

T0 = 1_750_000_000 * 10**9
"""The instant (UTC epoch ns) the mirror tests' batches start at."""


def hoymiles_batches() -> list[SampleBatch]:
    one = np.zeros(1, np.int32)
    t = np.array([T0], np.int64)
    return [
        SampleBatch("dtu", [("Dach DTU", "DTU123")], one, t, {
            "pv_power": np.array([812.4]), "today_production": np.array([1234.0]),
            "total_production": np.array([9876543.0]), "alarm_flag": np.array([1.0])}),
        SampleBatch("inverter", [("1161A0000001", "Dach DTU")], one, t, {
            "grid_voltage": np.array([230.1]), "grid_frequency": np.array([50.0]),
            "temperature": np.array([41.5]), "operating_status": np.array([3.0]),
            "alarm_code": np.array([0.0]), "alarm_count": np.array([2.0]),
            "link_status": np.array([1.0])}),
        SampleBatch("port", [("1161A0000001", "1", "Dach DTU")], one, t, {
            "pv_voltage": np.array([33.2]), "pv_current": np.array([7.25]),
            "pv_power": np.array([240.7]), "today_production": np.array([410.0]),
            "total_production": np.array([1200345.0])}),
    ]
