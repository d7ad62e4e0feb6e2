"""Profiles inferred from line protocol for measurements that have none.

Floats are gauges; integers are counters when the field name says so (``total``, ``count``,
``energy``, ``lifetime``, ``_wh``, ``kwh``), gauges otherwise; booleans are flags; strings are
states, stored as integer codes whose labels the store keeps (``sunarchive_state_labels``).
Measurement names that are not SQL identifiers (Home Assistant writes ``W``, ``kWh``,
``°C``) get a sanitized table prefix.
"""

from __future__ import annotations

import re
from typing import Any

from sunarchive.lineprotocol import ParsedMeasurement
from sunarchive.profiles.loader import parse_profile
from sunarchive.profiles.spec import IDENTIFIER, Profile

COUNTER_NAME = re.compile(r"(total|count|energy|lifetime|_wh$|kwh|counter)")
GENERIC_MAX_GAP_S = 3600.0
"""Generic writers (Home Assistant) send on change; an hour of silence is not yet a gap."""


def table_prefix(measurement: str) -> str:
    """A valid, readable SQL identifier for a measurement name (``kWh`` → ``kwh``)."""
    text = measurement.lower().replace("°", "deg").replace("%", "percent")
    text = re.sub(r"[^a-z0-9_]+", "_", text).strip("_") or "measurement"
    if text[0].isdigit():
        text = "m_" + text
    return text


def spec_of(m: ParsedMeasurement) -> dict[str, Any]:
    """The profile document (as in a YAML profile file) for ``m``'s tags and fields."""
    fields: dict[str, dict[str, str]] = {}
    for name, parsed in m.fields.items():
        if not IDENTIFIER.match(name):
            continue
        if parsed.kind == "string":
            kind = "state"
        elif parsed.kind == "bool":
            kind = "flag"
        elif parsed.kind in ("int", "uint") and COUNTER_NAME.search(name):
            kind = "counter"
        else:
            kind = "gauge"
        fields[name] = {"unit": "", "kind": kind,
                        "description": f"inferred from line protocol ({parsed.kind})"}
    doc: dict[str, Any] = {
        "name": m.measurement, "description": "inferred from InfluxDB line protocol",
        "tags": [t for t in m.tag_keys if IDENTIFIER.match(t)], "fields": fields,
        "max_gap_s": GENERIC_MAX_GAP_S, "extra": {"inferred": True}}
    if not IDENTIFIER.match(m.measurement):
        doc["table"] = table_prefix(m.measurement)
    return doc


def infer_profile(m: ParsedMeasurement) -> Profile:
    """A profile for ``m``; raises ConfigError (naming the field) when nothing is storable."""
    doc = spec_of(m)
    return parse_profile(doc, f"<inferred from line protocol: {m.measurement}>")
