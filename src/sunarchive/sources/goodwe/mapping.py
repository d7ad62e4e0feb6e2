"""GoodWe runtime data (``goodwe`` sensor ids) → ``energy_data`` / ``energy_detail`` fields.

The ``goodwe`` library already scales register values to V, A, W, Hz, °C, % and kWh; the
:data:`VARIABLE_MAP` states each sensor's unit so a test can hold it against both the
library's sensor definitions and the profiles. Signs follow the library, which matches the
profiles: ``active_power`` > 0 exports to the grid, ``pbattery1`` > 0 discharges the battery.
Sensors the inverter did not report (``None``, or absent for a family or model) stay missing;
nothing is ever filled with zero.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

from sunarchive.model import SampleBatch

DATA = "energy_data"
DETAIL = "energy_detail"
DATA_SOURCE = "goodwe"


class Target(NamedTuple):
    measurement: str
    field: str
    unit: str


VARIABLE_MAP: dict[str, Target] = {
    # energy_data: the plant's power flows (W) and battery state
    "ppv": Target(DATA, "pv_power", "W"),
    "active_power": Target(DATA, "grid_power", "W"),
    "pbattery1": Target(DATA, "battery_power", "W"),
    "load_ptotal": Target(DATA, "consumption", "W"),
    "battery_soc": Target(DATA, "battery_soc", "%"),
    "battery_temperature": Target(DATA, "battery_temp", "°C"),
    # energy_detail: strings, grid and battery electrics
    **{f"{q}pv{n}": Target(DETAIL, f"pv{n}_{name}", unit)
       for n in range(1, 5)
       for q, name, unit in (("v", "voltage", "V"), ("i", "current", "A"), ("p", "power", "W"))},
    "vgrid": Target(DETAIL, "grid_voltage", "V"),
    "igrid": Target(DETAIL, "grid_current", "A"),
    "fgrid": Target(DETAIL, "grid_frequency", "Hz"),
    "vbattery1": Target(DETAIL, "battery_voltage", "V"),
    "ibattery1": Target(DETAIL, "battery_current", "A"),
    "temperature": Target(DETAIL, "inverter_temperature", "°C"),
    # energy_detail: the inverter's counters (kWh, 0.1 kWh resolution)
    "e_day": Target(DETAIL, "pv_energy_today", "kWh"),
    "e_total": Target(DETAIL, "pv_energy_total", "kWh"),
    "e_day_exp": Target(DETAIL, "grid_export_today", "kWh"),
    "e_total_exp": Target(DETAIL, "grid_export_total", "kWh"),
    "e_day_imp": Target(DETAIL, "grid_import_today", "kWh"),
    "e_total_imp": Target(DETAIL, "grid_import_total", "kWh"),
    "e_load_day": Target(DETAIL, "load_energy_today", "kWh"),
    "e_load_total": Target(DETAIL, "load_energy_total", "kWh"),
    "e_bat_charge_day": Target(DETAIL, "battery_charge_today", "kWh"),
    "e_bat_charge_total": Target(DETAIL, "battery_charge_total", "kWh"),
    "e_bat_discharge_day": Target(DETAIL, "battery_discharge_today", "kWh"),
    "e_bat_discharge_total": Target(DETAIL, "battery_discharge_total", "kWh"),
}


def _number(value: Any) -> float | None:
    """A finite float, or None for anything the inverter did not really report."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def runtime_batches(data: Mapping[str, Any], tags: tuple[str, str, str],
                    time_ns: int) -> list[SampleBatch]:
    """One single-row batch per measurement with the mapped values present in ``data``.

    ``tags`` are ``(device_id, data_source, location)``, the profiles' tag order.
    """
    fields: dict[str, dict[str, float]] = {DATA: {}, DETAIL: {}}
    for sensor_id, target in VARIABLE_MAP.items():
        value = _number(data.get(sensor_id))
        if value is not None:
            fields[target.measurement][target.field] = value
    return [SampleBatch(measurement, [tags], np.zeros(1, np.int32),
                        np.array([time_ns], np.int64),
                        {name: np.array([v], np.float64) for name, v in values.items()})
            for measurement, values in fields.items() if values]
