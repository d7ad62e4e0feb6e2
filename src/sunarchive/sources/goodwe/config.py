"""Settings of a ``type: goodwe`` source (GoodWe inverters through the ``goodwe`` library).

Imports only pydantic; ``build`` imports the poller (and ``goodwe``) lazily.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from sunarchive.sources.config import MAX_INTERVAL_S, MAX_TIMEOUT_S, PolledSourceSettings

if TYPE_CHECKING:
    from sunarchive.sources.base import Source
    from sunarchive.sources.running import SourceContext

Family = Literal["auto", "ET", "EH", "BT", "BH", "ES", "EM", "BP", "DT", "MS", "NS", "XS"]


class GoodWeSettings(PolledSourceSettings):
    """A ``sources`` entry of ``type: goodwe``: poll a GoodWe inverter's runtime data into the
    ``energy_data`` (powers, state of charge) and ``energy_detail`` (strings, grid and battery
    electrics, energy counters) measurements."""

    type: Literal["goodwe"] = Field(default="goodwe", description="Source type.")
    host: str = Field(min_length=1, description="Inverter (WiFi/LAN dongle) host name or "
                      "address.")
    port: int = Field(default=8899, ge=1, le=65535, description="8899 = the UDP protocol of "
                      "the WiFi/LAN dongle; any other port (e.g. 502) = Modbus TCP.")
    family: Family = Field(default="auto", description="Inverter family; `auto` discovers it "
                           "(aa55 probe on UDP 8899, then the ET, DT and ES protocols).")
    comm_addr: int = Field(default=0, ge=0, le=255, description="Modbus address of the "
                           "inverter; 0 = the family's default (0xF7 ET/ES, 0x7F DT).")
    device_id: str | None = Field(default=None, min_length=1, description="`device_id` tag; "
                                  "unset = the inverter's serial number.")
    location: str = Field(default="", description="`location` tag (free text).")
    request_timeout_s: float = Field(default=1.0, gt=0, le=60, description="Seconds to wait "
                                     "for one answer before the request is sent again.")
    retries: int = Field(default=3, ge=0, le=10, description="Times one request is sent again "
                         "before the poll counts as failed.")
    poll_interval_s: float = Field(default=10.0, gt=0, le=MAX_INTERVAL_S,
                                   description="Seconds between polls.")
    timeout_s: float = Field(default=10.0, gt=0, le=MAX_TIMEOUT_S,
                             description="Seconds one poll (three to five "
                             "requests with their retries) may take before it counts as "
                             "failed.")

    def build(self, context: SourceContext) -> Source:
        from sunarchive.sources.goodwe.poller import GoodWePoller
        from sunarchive.sources.running import PolledSource, SourceStatus

        status = SourceStatus(self.name, "goodwe", context.events, measurement="energy_data")
        return PolledSource(self.name, GoodWePoller(self), self, status)
