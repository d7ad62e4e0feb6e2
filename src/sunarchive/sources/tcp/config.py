"""Settings of a ``type: tcp`` source: a listening socket that accepts newline-delimited
records (JSON objects, CSV rows after a header line, or InfluxDB line protocol).

Imports only pydantic; ``build`` imports the asyncio receiver lazily.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator

from sunarchive.sources.config import MAX_TIMEOUT_S, SourceSettings

if TYPE_CHECKING:
    from sunarchive.sources.base import Source
    from sunarchive.sources.running import SourceContext


class TcpSettings(SourceSettings):
    """A ``sources`` entry of ``type: tcp``: listen on a port for newline-delimited records."""

    type: Literal["tcp"] = Field(default="tcp", description="Source type.")
    host: str = Field(default="127.0.0.1", min_length=1, description="Address to listen on; "
                      "`0.0.0.0` accepts connections from other machines.")
    port: int = Field(ge=1, le=65535, description="TCP port to listen on.")
    format: Literal["json", "csv", "lineprotocol"] = Field(
        default="json", description="Record format: `json` (one object per line), `csv` (the "
        "first line of each connection is the header) or `lineprotocol` (InfluxDB line "
        "protocol).")
    measurement: str | None = Field(
        default=None, min_length=1, description="Measurement (profile) the records belong "
        "to; required for json and csv. With lineprotocol, set = only lines of this "
        "measurement are accepted.")
    time_field: str = Field(default="time", min_length=1, description="JSON key or CSV column "
                            "holding the time: ISO 8601 with a UTC offset, or epoch seconds. "
                            "A record without it gets its arrival time.")
    precision: Literal["ns", "us", "ms", "s", "auto"] = Field(
        default="ns", description="Line protocol: unit of the timestamps.")
    batch_interval_s: float = Field(default=1.0, gt=0, le=MAX_TIMEOUT_S,
                                    description="Seconds between handing "
                                    "the collected records to the pipeline.")
    max_line_bytes: int = Field(default=65536, ge=64, le=64 * 2**20, description="Longest "
                                "accepted line; a longer one is reported and skipped as it "
                                "streams in (never held in memory whole).")
    idle_timeout_s: float = Field(default=300.0, gt=0, le=7 * 86400, description="A "
                                  "connection that completes no line for this many seconds "
                                  "(idle, or sending bytes without a newline) is closed.")

    @model_validator(mode="after")
    def _measurement_needed(self) -> TcpSettings:
        if self.format in ("json", "csv") and not self.measurement:
            raise ValueError(f"format {self.format} needs a measurement")
        return self

    def build(self, context: SourceContext) -> Source:
        from sunarchive.sources.tcp.receiver import TcpReceiver

        return TcpReceiver(self, context)
