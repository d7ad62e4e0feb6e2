"""A DTU's ``RealDataNew`` answer mapped to the ``dtu``, ``inverter`` and ``port`` profiles
(pure; the message is the library's protobuf object or anything with the same attributes).

The DTU sends integers in fixed units (``hoymiles-wifi`` / Hoymiles app): ``dtu_power`` ×0.1 W,
``dtu_daily_energy`` Wh; per inverter (``sgs_data``, three-phase ``tgs_data``) voltage ×0.1 V,
frequency ×0.01 Hz, temperature ×0.1 °C, ``warning_number``, ``link_status``; per PV port
(``pv_data``) voltage ×0.1 V, current ×0.01 A, power ×0.1 W, ``energy_total`` and
``energy_daily`` in Wh.

``RealDataNew`` has no operating status or alarm code of an inverter; they are taken from
what it does report (``docs/upstream/hoymiles.md``):

* ``operating_status``: 1 while the inverter produces (``active_power`` > 0), else 0 — the
  codes the OpenDTU (``status/producing``) and AhoyDTU (``available`` = 2) layouts store;
* ``alarm_code``: the ``error_code`` the DTU reports for the inverter's PV inputs
  (``pv_data``), the first non-zero one in port order, 0 when none has one; NaN when the
  answer has no port of that inverter.

Missing is not zero: protobuf cannot tell an absent value from 0, so an inverter that reports
0 V *and* 0 Hz (not heard from: a grid-tied inverter never runs there) gets NaN grid voltage,
frequency and temperature; an answer without any inverter or port data gives no rows at all.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from sunarchive.model import SampleBatch

NAN = math.nan

#: RealDataNew field → (profile field, divisor), per message. ``sgs``/``tgs``: one inverter
#: (``inverter``); ``pv``: one DC input (``port``); ``dtu``: the totals (``dtu``).
VARIABLE_MAP: dict[str, dict[str, tuple[str, int]]] = {
    "sgs": {"voltage": ("grid_voltage", 10), "frequency": ("grid_frequency", 100),
            "temperature": ("temperature", 10), "warning_number": ("alarm_count", 1),
            "link_status": ("link_status", 1)},
    "tgs": {"voltage_phase_A": ("grid_voltage", 10), "frequency": ("grid_frequency", 100),
            "temperature": ("temperature", 10), "warning_number": ("alarm_count", 1),
            "link_status": ("link_status", 1)},
    "pv": {"voltage": ("pv_voltage", 10), "current": ("pv_current", 100),
           "power": ("pv_power", 10), "energy_daily": ("today_production", 1),
           "energy_total": ("total_production", 1)},
    "dtu": {"dtu_power": ("pv_power", 10), "dtu_daily_energy": ("today_production", 1)},
}
UNHEARD = ("grid_voltage", "grid_frequency", "temperature")
"""Inverter fields set to NaN when voltage and frequency are both 0 (no data)."""


def serial_text(serial_number: int) -> str:
    """An inverter serial as the Hoymiles app and ``hoymiles-wifi`` print it (hex digits)."""
    return format(serial_number, "x")


def _values(group: str, message: Any) -> dict[str, float]:
    # dividing (not multiplying by 0.1) gives the nearest double: 2301 / 10 == 230.1
    return {field: getattr(message, name) / divisor
            for name, (field, divisor) in VARIABLE_MAP[group].items()}


def _inverter(group: str, message: Any, port_errors: dict[int, list[int]]
              ) -> dict[str, float]:
    values = _values(group, message)
    if values["grid_voltage"] == 0 and values["grid_frequency"] == 0:
        values.update(dict.fromkeys(UNHEARD, NAN))
    values["operating_status"] = float(message.active_power > 0)
    values["alarm_code"] = alarm_code(port_errors.get(message.serial_number))
    return values


def alarm_code(errors: Sequence[int] | None) -> float:
    """An inverter's alarm code from its ports' ``error_code`` (in port order): the first
    non-zero one, 0 when there is none, NaN without any port."""
    if not errors:
        return NAN
    return float(next((code for code in errors if code), 0))


def _port_errors(ports: Sequence[Any]) -> dict[int, list[int]]:
    """inverter serial → its ports' ``error_code``, in port order."""
    out: dict[int, list[int]] = {}
    for p in sorted(ports, key=lambda p: (p.serial_number, p.port_number)):
        out.setdefault(p.serial_number, []).append(int(p.error_code))
    return out


def _batch(measurement: str, tags: Sequence[tuple[str, ...]], rows: Sequence[dict[str, float]],
           time_ns: int) -> SampleBatch:
    n = len(rows)
    names = list(rows[0]) if rows else []
    return SampleBatch(measurement, list(tags), np.arange(n, dtype=np.int32),
                       np.full(n, time_ns, np.int64),
                       {k: np.array([r[k] for r in rows], np.float64) for k in names})


def real_data_batches(data: Any, dtu_name: str, time_ns: int,
                      dtu_serial: str = "") -> list[SampleBatch]:
    """``dtu`` (one row), ``inverter`` (one per inverter) and ``port`` (one per PV input)
    batches of one ``RealDataNewReqDTO``, all at ``time_ns`` (UTC epoch ns). ``dtu_serial``
    is used when the answer does not name the DTU."""
    inverters = [("sgs", m) for m in data.sgs_data] + [("tgs", m) for m in data.tgs_data]
    ports = list(data.pv_data)
    if not inverters and not ports:
        return []
    batches = []
    if inverters:
        errors = _port_errors(ports)
        batches.append(_batch(
            "inverter", [(serial_text(m.serial_number), dtu_name) for _, m in inverters],
            [_inverter(g, m, errors) for g, m in inverters], time_ns))
    if ports:
        batches.append(_batch(
            "port", [(serial_text(p.serial_number), str(p.port_number), dtu_name)
                     for p in ports],
            [_values("pv", p) for p in ports], time_ns))
    totals = _values("dtu", data)
    totals["total_production"] = (float(sum(p.energy_total for p in ports)) if ports
                                  else NAN)
    totals["alarm_flag"] = (float(any(m.warning_number > 0 for _, m in inverters))
                            if inverters else NAN)
    batches.insert(0, _batch("dtu", [(dtu_name, data.device_serial_number or dtu_serial)], [totals],
                             time_ns))
    return batches
