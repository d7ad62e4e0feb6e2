"""Settings shared by every source: the base of each ``sources`` entry, the poll/retry knobs
of the shared wrapper, and the simulator's entry.

Every source type is a pydantic model with a ``type: Literal[...]`` tag and a ``build`` method
that turns it into a running :class:`~sunarchive.sources.base.Source`. The model itself imports
only pydantic; ``build`` imports the adapter (and its device library) lazily, so loading the
settings never pulls in MQTT, Modbus or I2C libraries.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

if TYPE_CHECKING:
    from sunarchive.sources.base import Source
    from sunarchive.sources.running import SourceContext

STRICT = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
"""Unknown keys are errors; ``.inf`` and ``.nan`` are refused."""
MAX_INTERVAL_S = 86_400
"""Longest poll interval or wait between attempts, in seconds (a day)."""
MAX_TIMEOUT_S = 3600
"""Longest timeout or batching interval, in seconds (an hour)."""
MAX_FAILURES = 1_000_000
"""Largest count of failures before a source is reported offline."""


class SourceSettings(BaseModel):
    """Common keys of every ``sources`` entry."""

    model_config = STRICT

    name: str = Field(min_length=1, description="Unique source name (shown by `sunarchive "
                      "sources`, used in events).")

    def build(self, context: SourceContext) -> Source:
        """The running source for this entry."""
        raise NotImplementedError(f"source type {type(self).__name__} cannot be built")


class PolledSourceSettings(SourceSettings):
    """Keys of a source that asks its device every ``poll_interval_s``."""

    poll_interval_s: float = Field(default=10.0, gt=0, le=MAX_INTERVAL_S,
                                   description="Seconds between polls.")
    timeout_s: float = Field(default=5.0, gt=0, le=MAX_TIMEOUT_S, description="Seconds one "
                             "poll may take before it counts as failed.")
    backoff_min_s: float = Field(default=1.0, gt=0, le=MAX_INTERVAL_S, description="First wait "
                                 "after a failed poll or connection; doubles on each further "
                                 "failure.")
    backoff_max_s: float = Field(default=60.0, gt=0, le=MAX_INTERVAL_S, description="Longest "
                                 "wait between attempts while the device is unreachable.")
    offline_after_failures: int = Field(default=3, ge=1, le=MAX_FAILURES, description="Consecutive "
                                        "failed polls after which the source is reported "
                                        "offline (an event; the series shows a gap, never "
                                        "zeros).")

    @model_validator(mode="after")
    def _backoff_order(self) -> PolledSourceSettings:
        if self.backoff_max_s < self.backoff_min_s:
            raise ValueError("backoff_max_s must not be smaller than backoff_min_s")
        return self


class SimulatorSettings(BaseModel):
    """The built-in PV plant simulator."""

    model_config = STRICT

    panels: int = Field(default=4, gt=0, le=10_000, description="Number of simulated panels "
                        "(inverter channels).")
    seed: int = Field(default=42, ge=0, le=2**63 - 1, description="Random seed; the same seed "
                      "gives the same data.")
    speed: float = Field(default=1.0, ge=0, le=1_000_000, description="Playback speed as a "
                         "multiple of real time; 0 = as fast as possible.")
    start: AwareDatetime | None = Field(
        default=None,
        description="Simulated start time, ISO 8601 with a UTC offset (e.g. "
                    "2024-06-21T04:00:00+02:00); unset = now.")
    sample_rate_hz: float = Field(default=10.0, gt=0, le=1000, description="Samples per "
                                  "second per measurement (PS100's SENSOR_READ_INTERVAL, in "
                                  "seconds, sets it to 1/interval when not given).")
    latitude_deg: float = Field(default=52.52, ge=-90, le=90, description="Site latitude, "
                                "north positive.")
    longitude_deg: float = Field(default=13.405, ge=-180, le=180, description="Site longitude, "
                                 "east positive.")
    tilt_deg: float = Field(default=35.0, ge=0, le=90, description="Panel tilt from horizontal.")
    azimuth_deg: float = Field(default=180.0, ge=0, le=360, description="Panel azimuth, "
                               "clockwise from north (180 = south).")
    drop_probability: float = Field(default=0.001, ge=0, lt=1, description="Probability that a "
                                    "sample is dropped, to exercise gap handling.")


class SimulatorSource(SimulatorSettings, SourceSettings):
    """A ``sources`` entry of ``type: simulator`` (built by the app, which knows the demo's
    start and speed)."""

    type: Literal["simulator"] = Field(default="simulator", description="Source type.")
    name: str = Field(default="simulator", min_length=1, description="Unique source name.")
