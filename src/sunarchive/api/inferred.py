"""Profiles inferred from line protocol for measurements that have none.

Floats are gauges; integers are counters when the field name says so (``total``, ``count``,
``energy``, ``lifetime``, ``_wh``, ``kwh``), gauges otherwise; booleans are flags; strings are
states, stored as integer codes whose labels the store keeps (``sunarchive_state_labels``).

Names are kept exactly as written — ``kWh``, ``°C``, ``Active_Power``,
``com.docker.compose.project`` — and are the SQL names of their tables and columns (quoted);
only a name that would clash with another (SQL names are case-insensitive in DuckDB) or pass
PostgreSQL's 63 bytes gets a derived SQL name, recorded in the profile
(:mod:`sunarchive.profiles.sql_names`). The tag and field key ``time`` is refused, as
``influxd`` refuses it.

A field's line-protocol type is fixed by its first write, as in InfluxDB: the document
records it (``type``), and a later point giving the field another type is refused
(:func:`type_conflicts`). Profiles inferred before types were recorded accept any number.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from sunarchive.lineprotocol import ParsedMeasurement, stored_conflict
from sunarchive.model import FieldKind
from sunarchive.profiles import sql_names
from sunarchive.profiles.loader import exact_name, parse_profile
from sunarchive.profiles.spec import RESERVED_COLUMNS, FieldSpec, Profile
from sunarchive.profiles.sql_names import TIERS, folded

COUNTER_NAME = re.compile(r"(total|count|energy|lifetime|_wh$|kwh|counter)")
GENERIC_MAX_GAP_S = 3600.0
"""Generic writers (Home Assistant) send on change; an hour of silence is not yet a gap."""
NUMBERS = ("float", "int", "uint")


def is_inferred(profile: Profile) -> bool:
    """Was ``profile`` inferred from line protocol (and so grows with its data)?"""
    return profile.extra.get("inferred") is True


def storable_name(name: str) -> bool:
    """Can a tag or field key be kept (any text but ``time``, which InfluxDB refuses)?"""
    return name != "time" and exact_name(name)


def field_document(name: str, line_kind: str) -> dict[str, str]:
    """The profile entry of a field first written with the line-protocol type ``line_kind``
    (``float``, ``int``, ``uint``, ``bool`` or ``string``)."""
    if line_kind == "string":
        kind = "state"
    elif line_kind == "bool":
        kind = "flag"
    elif line_kind in ("int", "uint") and COUNTER_NAME.search(name):
        kind = "counter"
    else:
        kind = "gauge"
    doc = {"unit": "", "kind": kind, "description": f"inferred from line protocol "
                                                   f"({line_kind})"}
    if line_kind in NUMBERS:
        doc["type"] = line_kind
    return doc


def spec_of(m: ParsedMeasurement, profiles: Mapping[str, Profile] | None = None
            ) -> dict[str, Any]:
    """The profile document (as in a YAML profile file) for ``m``'s tags and fields, its
    tables clear of those of ``profiles`` (the store's)."""
    doc: dict[str, Any] = {
        "name": m.measurement, "description": "inferred from InfluxDB line protocol",
        "tags": [t for t in m.tag_keys if storable_name(t)],
        "fields": {name: field_document(name, parsed.kind)
                   for name, parsed in m.fields.items() if storable_name(name)},
        "max_gap_s": GENERIC_MAX_GAP_S, "extra": {"inferred": True}}
    taken = folded(p.table(tier) for p in (profiles or {}).values() for tier in TIERS)
    prefix = sql_names.table_prefix(m.measurement, taken)
    if prefix != m.measurement:
        doc["table"] = prefix
    name_columns(doc, None)
    return doc


def name_columns(doc: dict[str, Any], before: Profile | None) -> None:
    """Give the tags and fields of ``doc`` that ``before`` (the profile it grew from) lacks
    their SQL column names: their own unless that would clash (``tag_columns`` and a
    field's ``column`` record the others)."""
    taken = folded(RESERVED_COLUMNS)
    if before is not None:
        taken |= folded(before.tag_column_names)
        taken |= folded(c.name for c in before.stats_columns())
    old_tags = set(before.tags) if before is not None else set()
    for tag in doc["tags"]:
        if tag not in old_tags:
            chosen = sql_names.column(tag, [""], taken)
            if chosen != tag:
                doc.setdefault("tag_columns", {})[tag] = chosen
    old_fields = {f.name for f in before.fields} if before is not None else set()
    for name, entry in doc["fields"].items():
        if name not in old_fields:
            suffixes = [c.name for c in FieldSpec("", "", FieldKind(entry["kind"])).columns()]
            chosen = sql_names.column(name, suffixes, taken)
            if chosen != name:
                entry["column"] = chosen


def infer_profile(m: ParsedMeasurement, profiles: Mapping[str, Profile] | None = None
                  ) -> Profile:
    """A profile for ``m``; raises ConfigError (naming the field) when nothing is storable."""
    return parse_profile(spec_of(m, profiles), f"<inferred from line protocol: "
                                               f"{m.measurement}>")


def document_of(profile: Profile) -> dict[str, Any]:
    """The document of an inferred ``profile`` (what ``spec_of`` made, grown since)."""
    doc: dict[str, Any] = {
        "name": profile.name, "description": profile.description, "tags": list(profile.tags),
        "fields": {f.name: _field_entry(f) for f in profile.fields},
        "max_gap_s": profile.max_gap_s, "extra": dict(profile.extra)}
    if profile.table_prefix is not None:
        doc["table"] = profile.table_prefix
    columns = {t: c for t, c in zip(profile.tags, profile.tag_column_names, strict=True)
               if t != c}
    if columns:
        doc["tag_columns"] = columns
    return doc


def _field_entry(spec: FieldSpec) -> dict[str, str]:
    entry = {"unit": spec.unit, "kind": spec.kind.value, "description": spec.description}
    if spec.value_type is not None:
        entry["type"] = spec.value_type
    if spec.column is not None:
        entry["column"] = spec.column
    return entry


def first_type(spec: FieldSpec) -> str | None:
    """The line-protocol type that created an inferred field: ``string`` for a state,
    ``bool`` for a flag, else the recorded number type; None (any number) for a field
    inferred before types were recorded."""
    if spec.kind is FieldKind.STATE:
        return "string"
    if spec.kind is FieldKind.FLAG:
        return "bool"
    return spec.value_type


def carried(m: ParsedMeasurement, name: str) -> npt.NDArray[np.bool_]:
    """Which points of ``m`` give field ``name`` a value."""
    parsed = m.fields[name]
    if parsed.kind == "string":
        return np.array([v is not None for v in parsed.values], bool)
    return ~np.isnan(np.asarray(parsed.values, np.float64))


def tag_carried(m: ParsedMeasurement, key: str) -> npt.NDArray[np.bool_]:
    """Which points of ``m`` carry tag ``key`` (with a value)."""
    if key not in m.tag_keys:
        return np.zeros(len(m.time_ns), bool)
    at = m.tag_keys.index(key)
    has = np.array([bool(values[at]) for values in m.tag_sets], bool)
    return has[m.tag_index] if len(m.tag_index) else np.zeros(0, bool)


def stored_kinds(profiles: Mapping[str, Profile]) -> Callable[[str], dict[str, str]]:
    """For the parser: measurement → the type each field of its inferred profile was first
    written with (built-in profiles have their own rules: none)."""
    def kinds(measurement: str) -> dict[str, str]:
        profile = profiles.get(measurement)
        if profile is None or not is_inferred(profile):
            return {}
        return {f.name: kind for f in profile.fields if (kind := first_type(f)) is not None}
    return kinds


def type_conflicts(profile: Profile, m: ParsedMeasurement) -> dict[int, str]:
    """Point index → why, for the points of ``m`` that give a field of the inferred
    ``profile`` another type than its first write did (InfluxDB refuses them too)."""
    out: dict[int, str] = {}
    known = {f.name: f for f in profile.fields}
    for name, parsed in m.fields.items():
        spec = known.get(name)
        if spec is None:
            continue
        first = first_type(spec)
        if parsed.kind == first or (first is None and parsed.kind in NUMBERS):
            continue
        why = stored_conflict(name, parsed.kind, first or "a number")
        for i in np.flatnonzero(carried(m, name)).tolist():
            out.setdefault(int(i), why)
    return out
