"""Settings of a ``type: ina2xx`` source: INA226 / INA219 sensors on one I2C bus, one per
panel, sampled at ``sample_rate_hz`` into ``ps100_readings``.

Imports only pydantic (and the pure register maths, to refuse a panel a chip cannot
measure while the config is read); ``build`` imports the reader and ``smbus2`` lazily.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field, model_validator

from sunarchive.model import ConfigError
from sunarchive.sources.config import (
    MAX_FAILURES,
    MAX_INTERVAL_S,
    MAX_TIMEOUT_S,
    STRICT,
    SourceSettings,
)
from sunarchive.sources.ina2xx.chip import Calibration, calibrate

if TYPE_CHECKING:
    from sunarchive.sources.base import Source
    from sunarchive.sources.running import SourceContext


class PanelSettings(BaseModel):
    """One panel and the sensor chip measuring it."""

    model_config = STRICT

    panel_id: str = Field(min_length=1, description="`panel_id` tag of the readings.")
    address: int = Field(ge=0x40, le=0x4F, description="I2C address of the chip (0x40-0x4F; "
                         "YAML reads 0x41 as a number).")
    chip: Literal["ina226", "ina219"] = Field(default="ina226", description="Sensor chip. An "
                                              "INA219 reads at most 26 V.")
    shunt_ohm: float = Field(gt=0, le=1000, description="Shunt resistance, Ω (e.g. 0.01 on common "
                             "INA226 boards, 0.1 on INA219 boards).")
    max_current_a: float = Field(gt=0, le=10_000, description="Largest expected current, A; "
                                 "sets the current resolution (max_current_a / 32768 per "
                                 "bit).")
    voc_v: float = Field(gt=0, le=10_000, description="Panel open-circuit voltage, V; a chip "
                         "whose bus range is lower is refused.")

    def calibration(self) -> Calibration:
        """The chip configuration; :class:`ConfigError` if the chip cannot measure it."""
        return calibrate(self.chip, self.shunt_ohm, self.max_current_a, self.voc_v,
                         self.panel_id)

    @model_validator(mode="after")
    def _measurable(self) -> PanelSettings:
        try:
            self.calibration()
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return self


class Ina2xxSettings(SourceSettings):
    """A ``sources`` entry of ``type: ina2xx``: read bus voltage, current and power of every
    panel ``sample_rate_hz`` times a second into ``ps100_readings``."""

    type: Literal["ina2xx"] = Field(default="ina2xx", description="Source type.")
    bus: int = Field(default=1, ge=0, le=1023, description="I2C bus number (/dev/i2c-N).")
    panels: list[PanelSettings] = Field(min_length=1, description="The panels, one chip each.")
    sample_rate_hz: float = Field(default=10.0, gt=0, le=100, description="Readings per "
                                  "second per panel (deadlines on the monotonic clock).")
    batch_interval_s: float = Field(default=1.0, gt=0, le=MAX_TIMEOUT_S,
                                    description="Seconds of readings "
                                    "handed to the pipeline as one batch.")
    offline_after_failures: int = Field(default=10, ge=1, le=MAX_FAILURES,
                                        description="Consecutive rounds in "
                                        "which no panel could be read before the source is "
                                        "reported offline.")
    backoff_min_s: float = Field(default=1.0, gt=0, le=MAX_INTERVAL_S,
                                 description="First wait before opening "
                                 "the bus again after it failed; doubles each time.")
    backoff_max_s: float = Field(default=30.0, gt=0, le=MAX_INTERVAL_S,
                                 description="Longest wait between "
                                 "attempts to open the bus.")

    @model_validator(mode="after")
    def _distinct(self) -> Ina2xxSettings:
        for key in ("address", "panel_id"):
            seen = [getattr(p, key) for p in self.panels]
            twice = sorted({f"{v:#04x}" if isinstance(v, int) else v
                            for v in seen if seen.count(v) > 1})
            if twice:
                raise ValueError(f"two panels share the {key} {', '.join(twice)}")
        if self.backoff_max_s < self.backoff_min_s:
            raise ValueError("backoff_max_s must not be smaller than backoff_min_s")
        return self

    def build(self, context: SourceContext) -> Source:
        from sunarchive.sources.ina2xx.reader import Ina2xxSource, open_smbus

        return Ina2xxSource(self, context, lambda: open_smbus(self.bus))
