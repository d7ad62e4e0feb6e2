"""OpenDTU's MQTT layout mapped to the ``dtu``, ``inverter`` and ``port`` profiles.

OpenDTU publishes one retained topic per value under a base (default ``solar/``):
``<serial>/0/<field>`` for the AC side, ``<serial>/<n>/<field>`` for DC input n ≥ 1,
``<serial>/status/{reachable,producing,last_update}``, ``<serial>/name``, totals
``ac/{power,yieldday,yieldtotal}`` and ``dc/power``, and ``dtu/status`` = ``online`` /
``offline`` (its last will). ``yieldday`` is in Wh, ``yieldtotal`` in kWh; the profiles count
Wh, so yieldtotal is scaled by 1000.

While an inverter reports ``status/reachable 0`` its values are dropped (OpenDTU can be set to
publish zeros for unreachable inverters; missing is not zero).
"""

from __future__ import annotations

import re

from sunarchive.sources.mqtt.readings import Decoded, Reading, parse_number, scaled

#: OpenDTU name → (profile field, scale), per topic group. ``ac``: ``<serial>/0/…`` →
#: ``inverter``; ``dc``: ``<serial>/<n>/…`` → ``port``; ``status``: ``<serial>/status/…`` →
#: ``inverter``; ``total``: ``ac/…`` → ``dtu``.
VARIABLE_MAP: dict[str, dict[str, tuple[str, float]]] = {
    "ac": {"voltage": ("grid_voltage", 1.0), "frequency": ("grid_frequency", 1.0),
           "temperature": ("temperature", 1.0)},
    "dc": {"voltage": ("pv_voltage", 1.0), "current": ("pv_current", 1.0),
           "power": ("pv_power", 1.0), "yieldday": ("today_production", 1.0),
           "yieldtotal": ("total_production", 1000.0)},
    "status": {"reachable": ("link_status", 1.0), "producing": ("operating_status", 1.0)},
    "total": {"power": ("pv_power", 1.0), "yieldday": ("today_production", 1.0),
              "yieldtotal": ("total_production", 1000.0)},
}

SERIAL = re.compile(r"^[0-9A-Fa-f]{8,16}$")
"""Inverter serial numbers as OpenDTU prints them in topics."""


class OpenDTULayout:
    """Decodes OpenDTU topics; learns inverter names and reachability on the way."""

    def __init__(self, base: str, dtu_name: str, dtu_serial: str = "") -> None:
        self.base = base
        self.dtu_name = dtu_name
        self.dtu_serial = dtu_serial
        self.names: dict[str, str] = {}
        """Inverter names by serial (from ``<serial>/name``)."""
        self.unreachable: set[str] = set()

    def filters(self) -> list[str]:
        return [f"{self.base}#"]

    def decode(self, topic: str, payload: bytes) -> Decoded:
        if not topic.startswith(self.base):
            return Decoded()
        parts = topic[len(self.base):].split("/")
        if parts == ["dtu", "status"]:
            text = payload.decode("utf-8", errors="replace").strip().lower()
            return Decoded(online={"online": True, "offline": False}.get(text))
        if len(parts) == 2 and parts[0] == "ac":
            return self._reading("dtu", (self.dtu_name, self.dtu_serial), "total", parts[1],
                                 topic, payload)
        if not SERIAL.match(parts[0]) or len(parts) < 2:
            return Decoded()
        serial = parts[0]
        if parts[1:] == ["name"]:
            self.names[serial] = payload.decode("utf-8", errors="replace").strip()
            return Decoded()
        if len(parts) != 3:
            return Decoded()
        if parts[1] == "status":
            return self._status(serial, parts[2], topic, payload)
        if serial in self.unreachable or not parts[1].isdigit():
            return Decoded()
        channel = int(parts[1])
        if channel == 0:
            return self._reading("inverter", (serial, self.dtu_name), "ac", parts[2], topic,
                                 payload)
        return self._reading("port", (serial, str(channel), self.dtu_name), "dc", parts[2],
                             topic, payload)

    def _status(self, serial: str, name: str, topic: str, payload: bytes) -> Decoded:
        decoded = self._reading("inverter", (serial, self.dtu_name), "status", name, topic,
                                payload)
        if name == "reachable" and decoded.readings:
            if decoded.readings[0].value:
                self.unreachable.discard(serial)
            else:
                self.unreachable.add(serial)
        return decoded

    @staticmethod
    def _reading(measurement: str, tags: tuple[str, ...], group: str, name: str, topic: str,
                 payload: bytes) -> Decoded:
        target = VARIABLE_MAP[group].get(name)
        if target is None:
            return Decoded()
        field, scale = target
        value = scaled(parse_number(payload, topic), scale)
        return Decoded([Reading(measurement, tags, field, value)])
