"""Pure decoding of SunSpec register images (no network).

A SunSpec device starts its register map with the marker ``"SunS"`` (0x5375 0x6E53) at a
base address (40000, 0 or 50000), followed by models: an ID register, a length register and
``length`` body registers each. ID 0xFFFF ends the list.

Decoded here: model 1 (common: manufacturer, model, serial), the inverter models 101/102/103
(integers with ``sunssf`` power-of-ten scale factors) and 111/112/113 (float32), and model 160
(multiple MPPT). Unimplemented values (0xFFFF uint16/enum16, 0x8000 int16 and sunssf,
0xFFFFFFFF uint32, 0 or 0xFFFFFFFF acc32, float NaN) become NaN — never zero.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

SUNS_MARKER = (0x5375, 0x6E53)
"""The registers holding ``"SunS"``."""
END_ID = 0xFFFF
BASE_ADDRESSES = (40000, 0, 50000)
"""Where devices put the marker, in probing order."""

COMMON = 1
INT_INVERTERS = frozenset({101, 102, 103})
FLOAT_INVERTERS = frozenset({111, 112, 113})
INVERTERS = INT_INVERTERS | FLOAT_INVERTERS
MPPT = 160
MPPT_HEADER = 8
MPPT_MODULE = 20

NAN = math.nan


@dataclass(frozen=True)
class ModelRef:
    """One model in the device's list: its ID, the address of its first body register and
    the body length in registers."""

    model_id: int
    address: int
    length: int


@dataclass(frozen=True)
class Identity:
    """Model 1 (common)."""

    manufacturer: str
    model: str
    serial: str
    version: str = ""


@dataclass
class InverterReading:
    """One reading of an inverter model, in the ``sunspec_inverter`` profile's field names."""

    model_id: int
    fields: dict[str, float] = field(default_factory=dict)


@dataclass
class MpptModule:
    """One module (tracker) of model 160."""

    module_id: str
    label: str
    fields: dict[str, float] = field(default_factory=dict)


# -- scalar decoders -----------------------------------------------------------------------
def uint16(reg: int) -> float:
    return NAN if reg == 0xFFFF else float(reg)


def int16(reg: int) -> float:
    if reg == 0x8000:
        return NAN
    return float(reg - 0x10000 if reg & 0x8000 else reg)


def sunssf(reg: int) -> float:
    """A scale factor: a signed power of ten; NaN when unimplemented."""
    return int16(reg)


def acc32(hi: int, lo: int) -> float:
    value = (hi << 16) | lo
    return NAN if value in (0, 0xFFFFFFFF) else float(value)


def uint32(hi: int, lo: int) -> float:
    value = (hi << 16) | lo
    return NAN if value == 0xFFFFFFFF else float(value)


def float32(hi: int, lo: int) -> float:
    value: float = struct.unpack(">f", struct.pack(">HH", hi, lo))[0]
    return value  # NaN (unimplemented) stays NaN


def string(regs: Sequence[int]) -> str:
    raw = b"".join(struct.pack(">H", r) for r in regs)
    return raw.split(b"\x00", 1)[0].decode("utf-8", errors="replace").strip()


def scaled(value: float, sf: float) -> float:
    """``value × 10**sf``; NaN if either is unimplemented."""
    if math.isnan(value) or math.isnan(sf):
        return NAN
    return value * 10.0 ** int(sf)


# -- model list ----------------------------------------------------------------------------
def is_marker(regs: Sequence[int]) -> bool:
    return tuple(regs[:2]) == SUNS_MARKER


def next_model(address: int, header: Sequence[int]) -> tuple[ModelRef | None, int]:
    """The model whose ID/length ``header`` was read at ``address`` (None at the end marker)
    and the address of the next model's header."""
    model_id, length = header[0], header[1]
    if model_id == END_ID or model_id == 0:
        return None, address
    return ModelRef(model_id, address + 2, length), address + 2 + length


# -- model decoders ------------------------------------------------------------------------
def decode_common(body: Sequence[int]) -> Identity:
    if len(body) < 64:
        raise ValueError(f"model 1 has {len(body)} registers, expected at least 64")
    return Identity(manufacturer=string(body[0:16]), model=string(body[16:32]),
                    version=string(body[40:48]), serial=string(body[48:64]))


def decode_inverter(model_id: int, body: Sequence[int]) -> InverterReading:
    if model_id in INT_INVERTERS:
        return _decode_int_inverter(model_id, body)
    if model_id in FLOAT_INVERTERS:
        return _decode_float_inverter(model_id, body)
    raise ValueError(f"model {model_id} is not an inverter model")


def _decode_int_inverter(model_id: int, b: Sequence[int]) -> InverterReading:
    if len(b) < 50:
        raise ValueError(f"model {model_id} has {len(b)} registers, expected 50")
    fields = {
        "ac_current": scaled(uint16(b[0]), sunssf(b[4])),
        "ac_voltage": scaled(uint16(b[8]), sunssf(b[11])),
        "ac_power": scaled(int16(b[12]), sunssf(b[13])),
        "ac_frequency": scaled(uint16(b[14]), sunssf(b[15])),
        "apparent_power": scaled(int16(b[16]), sunssf(b[17])),
        "reactive_power": scaled(int16(b[18]), sunssf(b[19])),
        "power_factor": scaled(int16(b[20]), sunssf(b[21])),
        "energy_total": scaled(acc32(b[22], b[23]), sunssf(b[24])),
        "dc_current": scaled(uint16(b[25]), sunssf(b[26])),
        "dc_voltage": scaled(uint16(b[27]), sunssf(b[28])),
        "dc_power": scaled(int16(b[29]), sunssf(b[30])),
        "cabinet_temperature": scaled(int16(b[31]), sunssf(b[35])),
        "operating_state": uint16(b[36]),
    }
    return InverterReading(model_id, fields)


def _decode_float_inverter(model_id: int, b: Sequence[int]) -> InverterReading:
    if len(b) < 60:
        raise ValueError(f"model {model_id} has {len(b)} registers, expected 60")

    def f(offset: int) -> float:
        return float32(b[offset], b[offset + 1])

    fields = {
        "ac_current": f(0), "ac_voltage": f(14), "ac_power": f(20), "ac_frequency": f(22),
        "apparent_power": f(24), "reactive_power": f(26), "power_factor": f(28),
        "energy_total": f(30), "dc_current": f(32), "dc_voltage": f(34), "dc_power": f(36),
        "cabinet_temperature": f(38), "operating_state": uint16(b[46]),
    }
    return InverterReading(model_id, fields)


def decode_mppt(body: Sequence[int]) -> list[MpptModule]:
    """Model 160: a header with the scale factors and the module count, then 20 registers
    per module."""
    if len(body) < MPPT_HEADER:
        raise ValueError(f"model 160 has {len(body)} registers, expected at least 8")
    dca_sf, dcv_sf, dcw_sf, dcwh_sf = (sunssf(r) for r in body[0:4])
    count = (len(body) - MPPT_HEADER) // MPPT_MODULE
    declared = body[6]
    if declared != 0xFFFF:
        count = min(count, declared)
    modules = []
    for i in range(count):
        m = body[MPPT_HEADER + i * MPPT_MODULE: MPPT_HEADER + (i + 1) * MPPT_MODULE]
        ident = m[0]
        module_id = str(ident) if ident != 0xFFFF else str(i + 1)
        modules.append(MpptModule(module_id, string(m[1:9]), {
            "dc_current": scaled(uint16(m[9]), dca_sf),
            "dc_voltage": scaled(uint16(m[10]), dcv_sf),
            "dc_power": scaled(uint16(m[11]), dcw_sf),
            "energy_total": scaled(acc32(m[12], m[13]), dcwh_sf),
            "temperature": int16(m[16]),
            "operating_state": uint16(m[17]),
        }))
    return modules


# -- encoders (for tests and simulators) -----------------------------------------------------
def encode_string(text: str, registers: int) -> list[int]:
    raw = text.encode("utf-8")[: registers * 2].ljust(registers * 2, b"\x00")
    return list(struct.unpack(f">{registers}H", raw))


def encode_float32(value: float) -> list[int]:
    hi, lo = struct.unpack(">HH", struct.pack(">f", value))
    return [hi, lo]


def encode_int16(value: int) -> int:
    return value & 0xFFFF
