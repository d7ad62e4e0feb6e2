"""Register maths of the TI INA226 and INA219 (pure; no I/O).

Both chips measure the shunt voltage and the bus voltage, and compute current and power
from a calibration value the driver writes:

===================  ==========================  ==========================
                     INA226                      INA219
===================  ==========================  ==========================
bus voltage (0x02)   1.25 mV/LSB, 0…36 V         4 mV/LSB in bits 15..3, ≤ 26 V
shunt (0x01)         2.5 µV/LSB, ±81.92 mV       10 µV/LSB, ±40…320 mV (PGA)
calibration (0x05)   0.00512 / (LSB_I × R)       0.04096 / (LSB_I × R), bit 0 unused
current (0x04)       shunt × cal / 2048          shunt × cal / 4096
power (0x03)         25 × LSB_I per bit          20 × LSB_I per bit
===================  ==========================  ==========================

``LSB_I`` (A per bit of the current register) is chosen as ``max_current_a / 32768``; the
calibration value is that formula truncated to an integer, so the driver decodes with the
*effective* LSB ``numerator / (cal × R)``, which makes the current register exactly the
shunt voltage divided by R. Registers are big-endian 16-bit; current and shunt voltage are
two's complement. The power register holds a magnitude; the driver gives it the current's
sign.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sunarchive.model import ConfigError

Chip = Literal["ina226", "ina219"]

REG_CONFIG, REG_SHUNT, REG_BUS, REG_POWER, REG_CURRENT, REG_CALIBRATION = range(6)
REG_MANUFACTURER, REG_DIE = 0xFE, 0xFF
INA226_MANUFACTURER = 0x5449   # "TI"
INA226_DIE = 0x226             # die id bits 15..4
CONFIG_RESET = 0x8000

INA226_CONFIG = 0x4000 | (0b010 << 9) | (0b100 << 6) | (0b100 << 3) | 0b111
"""16 averages, 1.1 ms bus and shunt conversions, continuous: a new value every 35 ms."""
INA219_ADC = (0b1100 << 7) | (0b1100 << 3) | 0b111
"""12-bit bus and shunt with 16 averages (8.5 ms each), continuous."""
INA219_BRNG_32V = 0x2000
INA219_PGA_V = (0.04, 0.08, 0.16, 0.32)
"""Shunt full scale for PGA gain /1, /2, /4, /8 (config bits 12..11)."""


@dataclass(frozen=True)
class ChipSpec:
    """Fixed properties of one chip type."""

    name: Chip
    cal_numerator: float
    cal_max: int
    power_per_current_lsb: float
    bus_lsb_v: float
    bus_shift: int
    shunt_lsb_v: float
    max_bus_v: float


SPECS: dict[Chip, ChipSpec] = {
    "ina226": ChipSpec("ina226", 0.00512, 0x7FFF, 25.0, 1.25e-3, 0, 2.5e-6, 36.0),
    "ina219": ChipSpec("ina219", 0.04096, 0xFFFE, 20.0, 4e-3, 3, 1e-5, 26.0),
}


@dataclass(frozen=True)
class Calibration:
    """What the driver writes to one chip and how it decodes the readings."""

    spec: ChipSpec
    config: int
    cal: int
    current_lsb_a: float
    """Effective A per bit of the current register."""

    @property
    def power_lsb_w(self) -> float:
        return self.spec.power_per_current_lsb * self.current_lsb_a


def calibrate(chip: Chip, shunt_ohm: float, max_current_a: float, voc_v: float,
              panel: str) -> Calibration:
    """The configuration for one panel; :class:`ConfigError` naming ``panel`` if the chip
    cannot measure it (voltage range, shunt range, calibration range)."""
    spec = SPECS[chip]
    where = f"panel {panel!r} ({chip.upper()})"
    if voc_v > spec.max_bus_v:
        hint = "; use an INA226 (0-36 V)" if chip == "ina219" else ""
        raise ConfigError(f"{where}: open-circuit voltage {voc_v:g} V exceeds the chip's "
                          f"{spec.max_bus_v:g} V bus range{hint}")
    shunt_max_v = max_current_a * shunt_ohm * (1 - 1e-9)   # 3.2 A × 0.1 Ω fits 320 mV
    full_scale = 0.08192 if chip == "ina226" else INA219_PGA_V[-1]
    if shunt_max_v > full_scale:
        raise ConfigError(f"{where}: {max_current_a:g} A through {shunt_ohm:g} Ω gives "
                          f"{shunt_max_v * 1e3:g} mV, more than the {full_scale * 1e3:g} mV "
                          "shunt range; use a smaller shunt")
    cal = int(spec.cal_numerator / (max_current_a / 32768 * shunt_ohm))
    if chip == "ina219":
        cal &= 0xFFFE
    if not 1 <= cal <= spec.cal_max:
        raise ConfigError(f"{where}: calibration {cal} is outside 1..{spec.cal_max}; "
                          "check shunt_ohm and max_current_a")
    return Calibration(spec, _config(chip, shunt_max_v), cal,
                       spec.cal_numerator / (cal * shunt_ohm))


def _config(chip: Chip, shunt_max_v: float) -> int:
    if chip == "ina226":
        return INA226_CONFIG
    gain = next(k for k, fs in enumerate(INA219_PGA_V) if shunt_max_v <= fs)
    return INA219_BRNG_32V | (gain << 11) | INA219_ADC


def signed16(raw: int) -> int:
    return raw - 0x10000 if raw & 0x8000 else raw


def swap16(word: int) -> int:
    """SMBus words are little-endian on the wire; the INA registers are big-endian."""
    return ((word & 0xFF) << 8) | (word >> 8)


def bus_voltage_v(cal: Calibration, raw: int) -> float:
    return (raw >> cal.spec.bus_shift) * cal.spec.bus_lsb_v


def overflow(cal: Calibration, raw_bus: int) -> bool:
    """INA219: the math overflow flag (bit 0 of the bus register); current and power are
    invalid while it is set. The INA226 has none (its current register saturates)."""
    return cal.spec.name == "ina219" and bool(raw_bus & 1)


def current_a(cal: Calibration, raw: int) -> float:
    return signed16(raw) * cal.current_lsb_a


def power_w(cal: Calibration, raw: int, raw_current: int) -> float:
    """The power register (a magnitude) with the current's sign."""
    magnitude = raw * cal.power_lsb_w
    return -magnitude if signed16(raw_current) < 0 else magnitude
