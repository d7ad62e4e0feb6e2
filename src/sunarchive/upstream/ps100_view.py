"""``ps100_readings_1s`` as the PS100 document shows it: the 1 s statistics plus the columns
the document adds, computed where they are read, never stored.

The writer keeps appending to the table ``ps100_readings_1s`` (on TimescaleDB the hypertable)
as for every measurement. User SQL (``sunarchive sql``, ``/api/v1/sql``, the reader role on
PostgreSQL) resolves names through the store's *upstream schema* first
(:mod:`sunarchive.storage.upstream_schema`), where a view of the same name adds, per row:

* ``power_peak`` — the highest raw power sample of the second (the row's ``power_max``).
* ``irradiance_w_m2`` and ``irradiance_source`` — the plane-of-array irradiance used: the
  panel's configured sensor series (its 1 s mean in the same second, ``sensor``) when that has
  a value, else pvlib's clear-sky model for the panel's place and orientation (``clearsky``:
  Ineichen with the bundled Linke turbidity, Hay-Davies transposition, albedo 0.2), kept a
  minute apart in ``ps100_clearsky`` and interpolated linearly to the second.
* ``efficiency_percent`` = power_avg ÷ (irradiance × area_m2) × 100, only where the
  irradiance is at least :data:`MIN_IRRADIANCE` W/m² (below, NULL: no meaningful figure).
* ``expected_power_w`` = rated_power_w × clear-sky POA ÷ 1000 W/m² × (1 + γ/100 ×
  (temperature_avg − 25 °C)) — the PVWatts rule with the panel's temperature coefficient γ
  and its measured temperature (25 °C when there is none).
* ``conditions_estimate`` — the console's words from power_avg ÷ expected_power_w
  (:mod:`sunarchive.upstream.ps100_conditions`).
* ``alerts`` — JSON array of the alerts in force that second (NULL: none): a hot panel
  (temperature_max above 70 °C), fewer samples than 80 % of the profile's rate, a voltage
  above the panel's Voc, and sunarchive's events of that panel (or of no panel) whose span
  meets the second.

A second whose minute has no clear-sky row yet (``ps100_clearsky`` is filled by
:mod:`sunarchive.upstream.ps100_clearsky`) reads NULL in the clear-sky columns. The view is
made again when the registry's sensor series change (their joins are part of its SQL).

Why a view and not stored columns: storing them needed an ``UPDATE`` of every written second,
which cut bulk ingest to a quarter and grew the DuckDB row from 37 to 61 bytes. Filters on
``time`` and ``panel_id`` reach the table's scan through the view's left joins on both engines.
"""

from __future__ import annotations

import hashlib
import logging

from sunarchive.profiles.spec import Profile
from sunarchive.storage import upstream_schema
from sunarchive.storage.migrations import Schema
from sunarchive.upstream import ps100
from sunarchive.upstream.ps100_conditions import clearsky_sql, conditions_sql, expected_sql

log = logging.getLogger(__name__)

MIN_IRRADIANCE = 50.0
"""W/m²: below this no efficiency is given (dawn, dusk, night)."""
HOT_PANEL_C = 70.0
LOW_SAMPLE_SHARE = 0.8
META_KEY = "ps100_readings_view"
"""``sunarchive_meta`` key holding a digest of the view's SQL (made again when it changes)."""


def sensor_spec(text: str) -> tuple[str, str, dict[str, str]]:
    """``measurement.field tag=value ...`` → (measurement, field, tags); ValueError."""
    head, *pairs = text.split()
    measurement, dot, field = head.partition(".")
    if not dot or not measurement or not field:
        raise ValueError(f"irradiance_series {text!r}: write measurement.field, e.g. "
                         "irradiance_measurement.irradiance")
    tags = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq:
            raise ValueError(f"irradiance_series {text!r}: {pair!r} is not tag=value")
        tags[key] = value
    return measurement, field, tags


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _sensor_joins(s: Schema, panels: list[ps100.Panel], home: str) -> tuple[str, list[str]]:
    """LEFT JOINs of the configured sensor series, and their value expressions."""
    q = s.dialect.quote
    profile_of = {p.name: p for p in s.profiles}
    by_spec: dict[str, list[str]] = {}
    for panel in panels:
        spec = panel.values.get("irradiance_series")
        if spec:
            by_spec.setdefault(str(spec), []).append(panel.panel_id)
    joins, values = [], []
    for n, (spec, ids) in enumerate(sorted(by_spec.items())):
        try:
            measurement, field, tags = sensor_spec(spec)
            sensor = profile_of[measurement]
            column = sensor.field(field).stem + "_avg"
            where = " ".join(f"AND {q(sensor.tag_column(k))} = {_literal(v)}"
                             for k, v in tags.items() if k in sensor.tags)
        except (ValueError, KeyError):
            log.warning("ps100_panels: irradiance_series %r names no stored field; the "
                        "clear-sky model is used", spec)
            continue
        if s.table_type(sensor.table("1s")) is None:
            continue
        names = ", ".join(_literal(i) for i in ids)
        alias = f"sensor{n}"
        joins.append(f"LEFT JOIN (SELECT time, AVG({q(column)}) AS v FROM "
                     f"{home}.{q(sensor.table('1s'))} WHERE TRUE {where} GROUP BY time) "
                     f"{alias} ON {alias}.time = x.time AND x.panel_id IN ({names})")
        values.append(f"{alias}.v")
    return " ".join(joins), values


def alerts_sql(s: Schema, profile: Profile, home: str) -> str:
    """JSON array of the alerts of row ``i`` (NULL when none)."""
    obj = "jsonb_build_object" if s.postgres else "json_object"
    agg = "jsonb_agg(a)" if s.postgres else "json_group_array(a)"
    rate = profile.sample_rate_hz
    items = [
        (f"i.temperature_max > {HOT_PANEL_C!r}",
         f"{obj}('type', 'hot_panel', 'severity', 'warning', 'message', 'temperature ' || "
         f"CAST(ROUND(CAST(i.temperature_max AS NUMERIC), 1) AS {s.text}) || ' °C above "
         f"{HOT_PANEL_C:g} °C')"),
        ("i.voltage_max > i.voc_v",
         f"{obj}('type', 'over_voc', 'severity', 'error', 'message', 'voltage above the "
         "panel''s open-circuit voltage')"),
    ]
    if rate:
        items.append((f"i.sample_count < {LOW_SAMPLE_SHARE * rate!r} * i.covered_s",
                      f"{obj}('type', 'low_sample_rate', 'severity', 'info', 'message', "
                      f"CAST(i.sample_count AS {s.text}) || ' samples, fewer than "
                      f"{LOW_SAMPLE_SHARE:.0%} of {rate:g} Hz')"))
    rows = [f"SELECT CASE WHEN {cond} THEN {value} END AS a" for cond, value in items]
    rows.append(
        f"SELECT {obj}('type', ev.kind, 'severity', {ps100.severity_sql('ev.kind')}, "
        f"'message', ev.message) AS a FROM {home}.sunarchive_events ev WHERE ev.measurement = "
        f"'{ps100.MEASUREMENT}' AND (ev.series_id = i.series_id OR ev.series_id IS NULL) "
        f"AND ev.time < i.time + INTERVAL '1 second' AND COALESCE(ev.end_time, ev.time) >= "
        f"i.time")
    return (f"(SELECT {agg} FROM ({' UNION ALL '.join(rows)}) al WHERE a IS NOT NULL)")


def view_select(s: Schema, profile: Profile, panels: list[ps100.Panel], home: str) -> str:
    """The view's query: every column of the table, then the document's columns."""
    q = s.dialect.quote
    minute = s.dialect.bucket(60, "x.time")
    joins, sensors = _sensor_joins(s, panels, home)
    sensor = f"COALESCE({', '.join(sensors)})" if sensors else "CAST(NULL AS DOUBLE PRECISION)"
    inner = (
        f"SELECT x.*, p.voc_v, p.rated_power_w, p.area_m2, p.temp_coefficient_pct_per_c, "
        f"{clearsky_sql('c0.poa_w_m2', 'c1.poa_w_m2', 'x.time')} AS clearsky, "
        f"{sensor} AS sensor "
        f"FROM {home}.{q(ps100.READINGS)} x "
        f"LEFT JOIN {home}.{ps100.PANELS} p ON p.panel_id = x.panel_id "
        f"LEFT JOIN {home}.{ps100.CLEARSKY} c0 ON c0.panel_id = x.panel_id AND c0.time = "
        f"{minute} LEFT JOIN {home}.{ps100.CLEARSKY} c1 ON c1.panel_id = x.panel_id AND "
        f"c1.time = {minute} + INTERVAL '60 seconds' {joins}")
    irradiance = "COALESCE(i.sensor, i.clearsky)"
    expected = expected_sql("i.rated_power_w", "i.temp_coefficient_pct_per_c", "i.clearsky",
                            "i.temperature_avg")
    columns = ", ".join(f"i.{q(c)}" for c in table_columns(s))
    return (
        f"SELECT {columns}, i.power_max AS power_peak, "
        f"CASE WHEN {irradiance} >= {MIN_IRRADIANCE!r} AND i.area_m2 > 0 THEN "
        f"i.power_avg / ({irradiance} * i.area_m2) * 100.0 END AS efficiency_percent, "
        f"{conditions_sql('i.power_avg', expected, 'i.rated_power_w')} AS conditions_estimate,"
        f" {alerts_sql(s, profile, home)} AS alerts, {irradiance} AS irradiance_w_m2, "
        f"CASE WHEN i.sensor IS NOT NULL THEN 'sensor' WHEN i.clearsky IS NOT NULL THEN "
        f"'clearsky' END AS irradiance_source, {expected} AS expected_power_w "
        f"FROM ({inner}) i")


def table_columns(s: Schema) -> list[str]:
    """The columns of the table ``ps100_readings_1s``, in order."""
    return [str(r[0]) for r in s.fetch(
        "SELECT column_name FROM information_schema.columns WHERE table_name = "
        f"{s.p} AND table_schema = current_schema() ORDER BY ordinal_position",
        [ps100.READINGS])]


def ensure_view(s: Schema) -> list[str]:
    """Create or replace the view when its SQL changed (registry sensors, grown table);
    nothing without the table."""
    profile = next((p for p in s.profiles if p.name == ps100.MEASUREMENT), None)
    if profile is None or s.table_type(ps100.READINGS) != "BASE TABLE":
        return []
    home = s.dialect.quote(current_schema(s))
    schema = upstream_schema.ensure(s)
    select = view_select(s, profile, list(ps100.read_panels(s).values()), home)
    digest = hashlib.sha256(select.encode()).hexdigest()[:16]
    stored = s.fetch(f"SELECT value FROM sunarchive_meta WHERE key = {s.p}", [META_KEY])
    exists = bool(s.fetch(
        "SELECT 1 FROM information_schema.tables WHERE table_schema = "
        f"{s.p} AND table_name = {s.p}", [schema, ps100.READINGS]))
    if exists and stored and stored[0][0] == digest:
        return []
    name = f"{s.dialect.quote(schema)}.{s.dialect.quote(ps100.READINGS)}"
    s.execute(f"DROP VIEW IF EXISTS {name}", None)
    s.execute(f"CREATE VIEW {name} AS {select}", None)
    s.execute(f"DELETE FROM sunarchive_meta WHERE key = {s.p}", [META_KEY])
    s.execute(f"INSERT INTO sunarchive_meta (key, value) VALUES ({s.p}, {s.p})",
              [META_KEY, digest])
    return [f"{'made again' if exists else 'created'} view {schema}.{ps100.READINGS} "
            "(the PS100 document's columns; user SQL reads it under its own name)"]


def current_schema(s: Schema) -> str:
    return str(s.fetch("SELECT current_schema()", None)[0][0])
