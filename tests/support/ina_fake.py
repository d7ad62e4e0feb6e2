"""A fake I2C bus with INA226 / INA219 register models, for tests of the ina2xx source.

Each chip holds a true bus voltage and current (settable while the source runs) and answers
register reads the way the datasheets describe: the shunt and bus registers quantise the
true values (INA226: 2.5 µV and 1.25 mV per bit; INA219: 10 µV and 4 mV per bit in bits
15..3, conversion-ready bit 1, overflow bit 0), and the current and power registers are
computed from them with the calibration register the driver wrote (0 after power-on, so an
uncalibrated chip reads 0 A as the real one does). Words travel little-endian like SMBus.
"""

from __future__ import annotations

import errno
import threading
from collections.abc import Callable
from typing import ClassVar


def swap16(word: int) -> int:
    return ((word & 0xFF) << 8) | (word >> 8)


def _clip(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


class FakeIna:
    """One chip: ``ina226`` or ``ina219`` with a shunt of ``shunt_ohm``."""

    DEFAULT_CONFIG: ClassVar[dict[str, int]] = {"ina226": 0x4127, "ina219": 0x399F}

    def __init__(self, chip: str, shunt_ohm: float, voltage_v: float = 0.0,
                 current_a: float = 0.0) -> None:
        self.chip, self.shunt_ohm = chip, shunt_ohm
        self.voltage_v, self.current_a = voltage_v, current_a
        self.config, self.cal = self.DEFAULT_CONFIG[chip], 0
        self.writes: list[tuple[int, int]] = []

    def power_cycle(self) -> None:
        self.config, self.cal = self.DEFAULT_CONFIG[self.chip], 0

    # -- registers (big-endian values) -----------------------------------------------------
    def shunt(self) -> int:
        volts = self.current_a * self.shunt_ohm
        if self.chip == "ina226":
            return _clip(round(volts / 2.5e-6), -32768, 32767)
        full_scale = (4000, 8000, 16000, 32000)[(self.config >> 11) & 3]
        return _clip(round(volts / 1e-5), -full_scale, full_scale)

    def bus(self) -> int:
        if self.chip == "ina226":
            return _clip(round(self.voltage_v / 1.25e-3), 0, 0x7FFF)
        counts = _clip(round(self.voltage_v / 4e-3), 0, 8000 if self.config & 0x2000 else 4000)
        overflow = abs(self.shunt() * self.cal) // 4096 > 32767
        return (counts << 3) | 0b10 | int(overflow)

    def current(self) -> int:
        divisor = 2048 if self.chip == "ina226" else 4096
        return _clip(int(self.shunt() * self.cal / divisor), -32768, 32767)

    def power(self) -> int:
        if self.chip == "ina226":
            return _clip(int(abs(self.current()) * self.bus() / 20000), 0, 0xFFFF)
        return _clip(int(abs(self.current()) * (self.bus() >> 3) / 5000), 0, 0xFFFF)

    def read(self, register: int) -> int:
        value: dict[int, Callable[[], int]] = {
            0: lambda: self.config, 1: self.shunt, 2: self.bus, 3: self.power,
            4: self.current, 5: lambda: self.cal}
        if self.chip == "ina226":
            value |= {0xFE: lambda: 0x5449, 0xFF: lambda: 0x2260}
        return value.get(register, lambda: 0)() & 0xFFFF     # the INA219 has no id

    def write(self, register: int, value: int) -> None:
        self.writes.append((register, value))
        if register == 0:
            if value & 0x8000:
                self.power_cycle()
            else:
                self.config = value
        elif register == 5:
            self.cal = value & (0x7FFF if self.chip == "ina226" else 0xFFFE)
        else:
            raise OSError(errno.EIO, f"register {register} is read-only")


class FakeBus:
    """``read_word_data`` / ``write_word_data`` / ``close`` like ``smbus2.SMBus``; an
    address without a chip (or in ``unplugged``) answers with EREMOTEIO like Linux."""

    def __init__(self, chips: dict[int, FakeIna]) -> None:
        self.chips = chips
        self.unplugged: set[int] = set()
        self.reads = 0
        self.opened = 0
        self.closed = 0
        self.lock = threading.Lock()

    def _chip(self, address: int) -> FakeIna:
        if address not in self.chips or address in self.unplugged:
            raise OSError(errno.EREMOTEIO, "Remote I/O error")
        return self.chips[address]

    def read_word_data(self, i2c_addr: int, register: int) -> int:
        with self.lock:
            self.reads += 1
            return swap16(self._chip(i2c_addr).read(register))

    def write_word_data(self, i2c_addr: int, register: int, value: int) -> None:
        with self.lock:
            self._chip(i2c_addr).write(register, swap16(value))

    def open(self) -> FakeBus:
        """The bus factory the source calls (counts openings)."""
        self.opened += 1
        return self

    def close(self) -> None:
        self.closed += 1
