"""Settings of a ``type: sunspec`` source (SunSpec over Modbus TCP).

Imports only pydantic; ``build`` imports the pymodbus-based poller lazily.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from sunarchive.sources.config import MAX_INTERVAL_S, PolledSourceSettings

if TYPE_CHECKING:
    from sunarchive.sources.base import Source
    from sunarchive.sources.running import SourceContext


class SunSpecSettings(PolledSourceSettings):
    """A ``sources`` entry of ``type: sunspec``: poll a SunSpec inverter over Modbus TCP into
    the ``sunspec_inverter`` and ``sunspec_mppt`` measurements."""

    type: Literal["sunspec"] = Field(default="sunspec", description="Source type.")
    host: str = Field(min_length=1, description="Device host name or address.")
    port: int = Field(default=502, ge=1, le=65535, description="Modbus TCP port.")
    unit_id: int = Field(default=1, ge=0, le=255, description="Modbus unit (slave) id.")
    base_address: int | None = Field(
        default=None, ge=0, le=65533, description="Register address of the 'SunS' marker; "
        "unset = probe 40000, 0 and 50000.")
    poll_interval_s: float = Field(default=5.0, gt=0, le=MAX_INTERVAL_S,
                                   description="Seconds between polls.")

    def build(self, context: SourceContext) -> Source:
        from sunarchive.sources.running import PolledSource, SourceStatus
        from sunarchive.sources.sunspec.poller import SunSpecPoller

        poller = SunSpecPoller(self.host, self.port, self.unit_id, self.base_address,
                               fallback_serial=self.name)
        return PolledSource(self.name, poller, self,
                            SourceStatus(self.name, "sunspec", context.events))
