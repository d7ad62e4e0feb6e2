"""One INA226 / INA219 on an SMBus-like bus: configure, calibrate, read.

The bus is anything with ``smbus2.SMBus``'s ``read_word_data`` / ``write_word_data``
(:class:`I2CBus`), so tests drive the same code against a register model. SMBus words are
little-endian; the chip's registers are big-endian, so every word is byte-swapped.

Each reading first reads the calibration register back: a chip that lost power comes back
with calibration 0 and would report 0 A. The driver then writes its configuration again
and reports that reading's current and power as missing (NaN), never as zero.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Protocol

from sunarchive.sources.ina2xx import chip
from sunarchive.sources.ina2xx.chip import Calibration
from sunarchive.sources.running import SourceError


class I2CBus(Protocol):
    """The part of ``smbus2.SMBus`` the driver uses."""

    def read_word_data(self, i2c_addr: int, register: int) -> int: ...

    def write_word_data(self, i2c_addr: int, register: int, value: int) -> None: ...


class Reading(NamedTuple):
    voltage_v: float
    current_a: float
    power_w: float


class InaSensor:
    """The chip of one panel at ``address``."""

    def __init__(self, bus: I2CBus, address: int, calibration: Calibration,
                 panel_id: str) -> None:
        self.bus, self.address, self.cal, self.panel_id = bus, address, calibration, panel_id
        self.recalibrations = 0

    def setup(self) -> None:
        """Reset, check the chip type (INA226 has an id) and write config and calibration."""
        self._write(chip.REG_CONFIG, chip.CONFIG_RESET)
        if self.cal.spec.name == "ina226":
            maker = self._read(chip.REG_MANUFACTURER)
            die = self._read(chip.REG_DIE) >> 4
            if (maker, die) != (chip.INA226_MANUFACTURER, chip.INA226_DIE):
                raise SourceError(f"panel {self.panel_id!r}: the chip at {self.address:#04x} "
                                  f"is not an INA226 (id {maker:#06x}/{die:#05x})",
                                  transient=False)
        self._configure()

    def read(self) -> Reading:
        """Bus voltage (V), current (A, negative = reverse) and power (W, signed)."""
        calibrated = self._read(chip.REG_CALIBRATION) == self.cal.cal
        raw_bus = self._read(chip.REG_BUS)
        voltage = chip.bus_voltage_v(self.cal, raw_bus)
        if not calibrated:
            self.recalibrations += 1
            self._configure()
            return Reading(voltage, math.nan, math.nan)
        raw_current = self._read(chip.REG_CURRENT)
        raw_power = self._read(chip.REG_POWER)
        if chip.overflow(self.cal, raw_bus):
            return Reading(voltage, math.nan, math.nan)
        return Reading(voltage, chip.current_a(self.cal, raw_current),
                       chip.power_w(self.cal, raw_power, raw_current))

    def _configure(self) -> None:
        self._write(chip.REG_CONFIG, self.cal.config)
        self._write(chip.REG_CALIBRATION, self.cal.cal)

    def _read(self, register: int) -> int:
        return chip.swap16(self.bus.read_word_data(self.address, register))

    def _write(self, register: int, value: int) -> None:
        self.bus.write_word_data(self.address, register, chip.swap16(value))
