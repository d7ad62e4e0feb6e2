"""PS100 under its own names (issue 18, point 2): the ``ps100_panels`` registry, the
per-second system totals ``ps100_system_1s``, the event log ``ps100_events``, and the
columns the document gives ``ps100_readings_1s`` beyond the profile's statistics.

``ps100_readings_1s`` stays the table (the TimescaleDB hypertable) the writer appends to; the
document's extra columns (``power_peak``, ``efficiency_percent``, ``conditions_estimate``,
``alerts``, …) are computed where user SQL reads them (:mod:`sunarchive.upstream.ps100_view`).
``ps100_system_1s`` and ``ps100_events`` are views (over the 1 s table and over
``sunarchive_events``), so they can never disagree with what they summarize.

What is here: the configuration (``ps100:`` in the settings), the SQL of the tables, columns
and views (both engines, through :class:`~sunarchive.storage.migrations.Schema`), and the
registry's reads and edits.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from sunarchive.model import SunarchiveError
from sunarchive.storage.migrations import Schema

MEASUREMENT = "ps100_readings"
READINGS = "ps100_readings_1s"
PANELS = "ps100_panels"
CLEARSKY = "ps100_clearsky"
SYSTEM = "ps100_system_1s"
EVENTS = "ps100_events"
ACTIVE_W = 1.0
"""A panel is active in a second when its mean power is above this (W), as on the console."""


class UnknownPanelError(SunarchiveError):
    """A registry edit names a panel the registry does not hold."""


# -- configuration ---------------------------------------------------------------------------
_STRICT = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class PanelSettings(BaseModel):
    """One panel of the ``ps100_panels`` registry. Defaults: a 100 W PS100-class module
    (pvlib CEC ``HHV_Solar_Technologies_HSTUBC12100P``)."""

    model_config = _STRICT

    panel_id: str = Field(min_length=1, description="The panel_id tag of its readings.")
    name: str | None = Field(default=None, description="Display name (default: panel_id).")
    rated_power_w: float = Field(default=100.0, gt=0, description="Rated (STC) power, W.")
    vmp_v: float = Field(default=27.25, gt=0, description="Voltage at maximum power, V.")
    imp_a: float = Field(default=3.67, gt=0, description="Current at maximum power, A.")
    voc_v: float = Field(default=33.64, gt=0, description="Open-circuit voltage, V.")
    isc_a: float = Field(default=3.99, gt=0, description="Short-circuit current, A.")
    temp_coefficient_pct_per_c: float = Field(
        default=-0.44, ge=-5, le=5, description="Power temperature coefficient, %/°C.")
    area_m2: float = Field(default=0.771, gt=0, le=100, description="Module area, m².")
    tilt_deg: float | None = Field(default=None, ge=0, le=90, description="Tilt from "
                                   "horizontal, degrees (default: ps100.tilt_deg).")
    azimuth_deg: float | None = Field(default=None, ge=0, lt=360, description="Azimuth from "
                                      "north, degrees (default: ps100.azimuth_deg).")
    latitude_deg: float | None = Field(default=None, ge=-90, le=90, description="Degrees "
                                       "north (default: ps100.latitude_deg).")
    longitude_deg: float | None = Field(default=None, ge=-180, le=180, description="Degrees "
                                        "east (default: ps100.longitude_deg).")
    location: str | None = Field(default=None, description="Where it is, in words.")
    sensor_bus: int | None = Field(default=None, ge=0, description="I2C bus of its sensor.")
    sensor_address: int | None = Field(default=None, ge=0, le=127,
                                       description="I2C address of its sensor (0x40 = 64).")
    installed_on: date | None = Field(default=None, description="Date installed.")
    irradiance_series: str | None = Field(
        default=None, description="A plane-of-array irradiance sensor to use for "
        "efficiency_percent instead of the clear-sky model: `measurement.field` with "
        "optional `tag=value` pairs after spaces, e.g. `irradiance_measurement.irradiance "
        "device_id=pyr1` (its 1 s mean, W/m², in the same second).")


class Ps100Settings(BaseModel):
    """PS100 panel registry defaults and panels (``ps100:`` in the YAML)."""

    model_config = _STRICT

    latitude_deg: float = Field(default=52.52, ge=-90, le=90, description="Default site "
                                "latitude of the panels, degrees north (the simulator's).")
    longitude_deg: float = Field(default=13.405, ge=-180, le=180, description="Default site "
                                 "longitude, degrees east.")
    tilt_deg: float = Field(default=35.0, ge=0, le=90, description="Default panel tilt, "
                            "degrees from horizontal.")
    azimuth_deg: float = Field(default=180.0, ge=0, lt=360, description="Default panel "
                               "azimuth, degrees from north (180 = south).")
    panels: list[PanelSettings] = Field(default_factory=list, description="Panels of the "
                                        "ps100_panels registry; a listed panel gets these "
                                        "values at every start. Panels seen in the data but "
                                        "not listed are registered with PS100-class defaults.")


# -- registry rows ---------------------------------------------------------------------------
EDITABLE: dict[str, type] = {
    "name": str, "rated_power_w": float, "vmp_v": float, "imp_a": float, "voc_v": float,
    "isc_a": float, "temp_coefficient_pct_per_c": float, "area_m2": float, "tilt_deg": float,
    "azimuth_deg": float, "latitude_deg": float, "longitude_deg": float, "location": str,
    "sensor_bus": int, "sensor_address": int, "installed_on": date, "irradiance_series": str,
}
"""Registry columns after ``panel_id``, in table order, and their Python types."""
TAIL = ("origin",)
"""``origin``: config (from ``ps100.panels``), auto (seen in the data), edited (CLI/REST)."""
COLUMNS = ("panel_id", *EDITABLE, *TAIL)


@dataclass(frozen=True)
class Panel:
    """One row of ``ps100_panels``."""

    values: dict[str, Any]

    @property
    def panel_id(self) -> str:
        return str(self.values["panel_id"])

    def site(self) -> tuple[float, float, float, float]:
        v = self.values
        return (float(v["latitude_deg"]), float(v["longitude_deg"]), float(v["tilt_deg"]),
                float(v["azimuth_deg"]))

    def as_json(self) -> dict[str, Any]:
        return {k: (v.isoformat() if isinstance(v, date) else v)
                for k, v in self.values.items()}


def panel_row(panel: PanelSettings, defaults: Ps100Settings, origin: str) -> dict[str, Any]:
    """The registry row of a configured (or default) panel."""
    row = panel.model_dump()
    row["name"] = row["name"] or panel.panel_id
    for key in ("latitude_deg", "longitude_deg", "tilt_deg", "azimuth_deg"):
        if row[key] is None:
            row[key] = getattr(defaults, key)
    row["origin"] = origin
    return {c: row.get(c) for c in COLUMNS}


# -- schema ----------------------------------------------------------------------------------
def ensure_schema(s: Schema) -> list[str]:
    """Create the PS100 registry, clear-sky table and views (idempotent). Nothing when the
    store has no ``ps100_readings_1s``. The view with the document's columns of
    ``ps100_readings_1s`` is :mod:`sunarchive.upstream.ps100_view`'s."""
    if s.table_type(READINGS) != "BASE TABLE":
        return []
    changes = []
    double = "DOUBLE PRECISION" if s.postgres else "DOUBLE"
    types = {str: s.text, float: double, int: "INTEGER", date: "DATE"}
    if not s.has_table(PANELS):
        cols = ", ".join(f"{c} {types[t]}" for c, t in EDITABLE.items())
        s.execute(f"CREATE TABLE {PANELS} (panel_id {s.text} PRIMARY KEY, {cols}, "
                  f"origin {s.text} NOT NULL)", None)
        changes.append(f"created table {PANELS}")
    if not s.has_table(CLEARSKY):
        s.execute(f"CREATE TABLE {CLEARSKY} (panel_id {s.text} NOT NULL, time {s.instant} "
                  f"NOT NULL, poa_w_m2 {double} NOT NULL, PRIMARY KEY (panel_id, time))", None)
        changes.append(f"created table {CLEARSKY} (pvlib clear-sky irradiance a minute)")
    for name, select in ((SYSTEM, system_select(s)), (EVENTS, events_select(s))):
        if s.table_type(name) is None:
            s.execute(f"CREATE VIEW {name} AS {select}", None)
            changes.append(f"created view {name}")
    return changes


def system_select(s: Schema) -> str:
    """Per-second totals across panels (the console's system block)."""
    active = f"power_avg > {ACTIVE_W!r}"
    return (f"SELECT time, SUM(power_avg) AS total_power, SUM(current_avg) AS total_current, "
            f"AVG(voltage_avg) FILTER (WHERE {active}) AS avg_voltage, "
            f"COUNT(*) FILTER (WHERE {active}) AS active_panels, COUNT(*) AS panels, "
            f"SUM(energy_wh) AS energy_wh, MAX(power_max) AS power_peak, "
            f"SUM(sample_count) AS sample_count FROM {READINGS} GROUP BY time")


SEVERITY = {"source_offline": "error", "gap": "warning", "refused_below_retention": "warning",
            "late_samples": "info", "source_online": "info"}


def severity_sql(kind: str) -> str:
    cases = " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in SEVERITY.items())
    return f"CASE {kind} {cases} ELSE 'info' END"


def events_select(s: Schema) -> str:
    """sunarchive's events of the PS100 panels (and those naming no measurement) as the
    document's event log: time, panel, type, severity, message, details."""
    if s.postgres:
        panel = "(ser.tags::jsonb ->> 'panel_id')"
        details = ("jsonb_build_object('end_time', e.end_time, 'measurement', e.measurement, "
                   "'series_id', e.series_id)")
    else:
        panel = "json_extract_string(ser.tags, '$.panel_id')"
        details = ("json_object('end_time', e.end_time, 'measurement', e.measurement, "
                   "'series_id', e.series_id)")
    return (f"SELECT e.time, {panel} AS panel_id, e.kind AS event_type, "
            f"{severity_sql('e.kind')} AS severity, e.message, {details} AS details, "
            f"e.end_time FROM sunarchive_events e LEFT JOIN sunarchive_series ser ON "
            f"ser.series_id = e.series_id AND ser.measurement = e.measurement "
            f"WHERE e.measurement = '{MEASUREMENT}' OR e.measurement IS NULL")


# -- registry reads and edits ----------------------------------------------------------------
def read_panels(s: Schema) -> dict[str, Panel]:
    if not s.has_table(PANELS):
        return {}
    rows = s.fetch(f"SELECT {', '.join(COLUMNS)} FROM {PANELS} ORDER BY panel_id", None)
    return {str(r[0]): Panel(dict(zip(COLUMNS, r, strict=True))) for r in rows}


def upsert(s: Schema, row: dict[str, Any]) -> None:
    """Insert or replace one registry row; a changed place or orientation forgets the panel's
    clear-sky irradiance (computed again for the next seconds written)."""
    old = read_panels(s).get(str(row["panel_id"]))
    if old is not None and old.values == row:
        return
    s.execute(f"DELETE FROM {PANELS} WHERE panel_id = {s.p}", [row["panel_id"]])
    marks = ", ".join([s.p] * len(COLUMNS))
    s.execute(f"INSERT INTO {PANELS} ({', '.join(COLUMNS)}) VALUES ({marks})",
              [row[c] for c in COLUMNS])
    if old is not None and old.site() != Panel(row).site():
        s.execute(f"DELETE FROM {CLEARSKY} WHERE panel_id = {s.p}", [row["panel_id"]])


def apply_config(s: Schema, config: Ps100Settings) -> list[str]:
    """Write the configured panels into the registry (configuration wins for them)."""
    changes = []
    known = read_panels(s)
    for panel in config.panels:
        row = panel_row(panel, config, "config")
        old = known.get(panel.panel_id)
        if old is None or old.values != row:
            upsert(s, row)
            changes.append(f"{PANELS}: {'updated' if old else 'added'} {panel.panel_id} "
                           "from the configuration")
    return changes


def parse_value(column: str, text: str) -> Any:
    """A registry value from its text (``none`` or empty: NULL); raises ValueError."""
    kind = EDITABLE.get(column)
    if kind is None:
        raise ValueError(f"unknown column {column!r} (one of {', '.join(EDITABLE)})")
    if text.strip().lower() in ("", "none", "null"):
        if column in REQUIRED:
            raise ValueError(f"{column} cannot be empty")
        return None
    if kind is int:
        return int(text, 0)
    if kind is float:
        value = float(text)
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"{column}: not a finite number")
        return value
    if kind is date:
        return date.fromisoformat(text)
    return text


REQUIRED = ("rated_power_w", "area_m2", "tilt_deg", "azimuth_deg", "latitude_deg",
            "longitude_deg", "temp_coefficient_pct_per_c")


def edited_row(s: Schema, panel_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    """The registry row of ``panel_id`` with ``changes``, validated by
    :class:`PanelSettings` (pydantic's ValidationError); writes nothing."""
    old = read_panels(s).get(panel_id)
    if old is None:
        raise UnknownPanelError(f"unknown panel {panel_id!r}: not in {PANELS} "
                                "(`sunarchive panels list` shows the registered ones)")
    merged = {**old.values, **changes}
    checked = PanelSettings.model_validate(
        {k: v for k, v in merged.items() if k in PanelSettings.model_fields})
    row = {c: merged.get(c) for c in COLUMNS}
    row.update({k: getattr(checked, k) for k in EDITABLE})
    row["name"] = row["name"] or panel_id
    row["origin"] = "edited"
    return row


def panels_json(panels: Sequence[Panel]) -> str:
    return json.dumps([p.as_json() for p in panels], indent=2)
