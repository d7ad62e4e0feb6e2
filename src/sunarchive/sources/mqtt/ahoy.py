"""AhoyDTU's MQTT layout mapped to the ``dtu``, ``inverter`` and ``port`` profiles.

AhoyDTU publishes under a base (default ``inverter/``) per inverter *name*:
``<name>/ch0/{U_AC,F_AC,Temp,P_AC,…}`` (AC side), ``<name>/ch1..4/{U_DC,I_DC,P_DC,YieldDay,
YieldTotal,Irradiation}`` (DC inputs), ``<name>/available`` (0 not reachable, 1 reachable,
2 producing), totals ``total/{P_AC,YieldDay,YieldTotal,P_DC}`` and its last will on ``mqtt``
(``connected`` / ``not connected``). YieldDay is in Wh, YieldTotal in kWh (scaled to Wh).

Values of an inverter whose last ``available`` was 0 are dropped (AhoyDTU can publish zeros
for unavailable inverters; missing is not zero).
"""

from __future__ import annotations

import re

from sunarchive.sources.mqtt.readings import Decoded, Reading, parse_number, scaled

#: AhoyDTU name → (profile field, scale), per topic group: ``ac`` (``ch0`` → ``inverter``),
#: ``dc`` (``ch1..`` → ``port``), ``total`` (``total/…`` → ``dtu``).
VARIABLE_MAP: dict[str, dict[str, tuple[str, float]]] = {
    "ac": {"U_AC": ("grid_voltage", 1.0), "F_AC": ("grid_frequency", 1.0),
           "Temp": ("temperature", 1.0)},
    "dc": {"U_DC": ("pv_voltage", 1.0), "I_DC": ("pv_current", 1.0),
           "P_DC": ("pv_power", 1.0), "YieldDay": ("today_production", 1.0),
           "YieldTotal": ("total_production", 1000.0)},
    "total": {"P_AC": ("pv_power", 1.0), "YieldDay": ("today_production", 1.0),
              "YieldTotal": ("total_production", 1000.0)},
}

CHANNEL = re.compile(r"^ch(\d+)$")
LWT = {"connected": True, "online": True, "not connected": False, "offline": False}


class AhoyLayout:
    """Decodes AhoyDTU topics; tracks which inverters are available."""

    def __init__(self, base: str, dtu_name: str, dtu_serial: str = "",
                 serials: dict[str, str] | None = None) -> None:
        self.base = base
        self.dtu_name = dtu_name
        self.dtu_serial = dtu_serial
        self.serials = dict(serials or {})
        self.unavailable: set[str] = set()

    def filters(self) -> list[str]:
        return [f"{self.base}#"]

    def decode(self, topic: str, payload: bytes) -> Decoded:
        if not topic.startswith(self.base):
            return Decoded()
        parts = topic[len(self.base):].split("/")
        if parts in (["mqtt"], ["status"]):
            text = payload.decode("utf-8", errors="replace").strip().lower()
            return Decoded(online=LWT.get(text))
        if len(parts) != 2 and len(parts) != 3:
            return Decoded()
        if parts[0] == "total" and len(parts) == 2:
            return _reading("dtu", (self.dtu_name, self.dtu_serial), "total", parts[1], topic,
                            payload)
        name = parts[0]
        serial = self.serials.get(name, name)
        if parts[1:] == ["available"]:
            return self._available(name, serial, topic, payload)
        match = CHANNEL.match(parts[1])
        if len(parts) != 3 or match is None or name in self.unavailable:
            return Decoded()
        channel = int(match.group(1))
        if channel == 0:
            return _reading("inverter", (serial, self.dtu_name), "ac", parts[2], topic, payload)
        return _reading("port", (serial, str(channel), self.dtu_name), "dc", parts[2], topic,
                        payload)

    def _available(self, name: str, serial: str, topic: str, payload: bytes) -> Decoded:
        code = parse_number(payload, topic)
        if code:
            self.unavailable.discard(name)
        else:
            self.unavailable.add(name)
        tags = (serial, self.dtu_name)
        return Decoded([Reading("inverter", tags, "link_status", 1.0 if code else 0.0),
                        Reading("inverter", tags, "operating_status", 1.0 if code >= 2 else 0.0)])


def _reading(measurement: str, tags: tuple[str, ...], group: str, name: str, topic: str,
             payload: bytes) -> Decoded:
    target = VARIABLE_MAP[group].get(name)
    if target is None:
        return Decoded()
    field, scale = target
    return Decoded([Reading(measurement, tags, field, scaled(parse_number(payload, topic), scale))])
