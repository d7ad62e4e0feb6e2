"""A fake SunSpec device: register images of the common, inverter (103, 113) and MPPT (160)
models, served by pymodbus' own Modbus TCP server in-process on a loopback port."""

from __future__ import annotations

import asyncio
import math
import threading

from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from sunarchive.sources.sunspec import models
from sunarchive.sources.sunspec.models import encode_float32, encode_int16, encode_string
from tests.support.ports import free_port

NOT_IMPL_U16 = 0xFFFF
NOT_IMPL_I16 = 0x8000
NAN_F32 = [0x7FC0, 0x0000]


# -- register images --------------------------------------------------------------------------
def common_model(serial: str, manufacturer: str = "Acme", model: str = "PV-5000") -> list[int]:
    body = (encode_string(manufacturer, 16) + encode_string(model, 16) + encode_string("", 8)
            + encode_string("1.2.3", 8) + encode_string(serial, 16) + [1, 0x8000])
    assert len(body) == 66
    return [1, 66, *body]


def int_inverter_model() -> list[int]:
    """Model 103 with scale factors and some unimplemented values."""
    b = [NOT_IMPL_U16] * 50
    b[0], b[4] = 123, encode_int16(-1)                  # A 12.3
    b[1] = b[2] = b[3] = 41
    b[8], b[11] = 2301, encode_int16(-1)                # PhVphA 230.1
    b[12], b[13] = 2500, 0                              # W 2500
    b[14], b[15] = 5002, encode_int16(-2)               # Hz 50.02
    b[16], b[17] = 26, 2                                # VA 2600
    b[18], b[19] = encode_int16(-150), 0                # VAr -150
    b[20], b[21] = encode_int16(-9850), encode_int16(-2)  # PF -98.5
    b[22], b[23], b[24] = 0x0012, 0xD687, 0             # WH 1234567
    b[25], b[26] = NOT_IMPL_U16, encode_int16(-2)       # DCA unimplemented
    b[27], b[28] = 4000, encode_int16(-1)               # DCV 400.0
    b[29], b[30] = 2600, NOT_IMPL_I16                   # DCW with an unimplemented SF
    b[31], b[35] = NOT_IMPL_I16, encode_int16(-1)       # TmpCab unimplemented
    b[36] = 4                                           # St MPPT
    return [103, 50, *b]


def mppt_model() -> list[int]:
    header = [encode_int16(-2), encode_int16(-1), 0, 0, 0, 0, 2, NOT_IMPL_U16]
    m1 = ([1, *encode_string("String A", 8), 550, 3800, 2090, 0x0009, 0x27C0,
           0, 0, 35, 4, 0, 0])
    m2 = ([2, *encode_string("String B", 8), NOT_IMPL_U16, 3700, NOT_IMPL_U16, 0, 0,
           0, 0, NOT_IMPL_I16, 7, 0, 0])
    body = header + m1 + m2
    assert len(body) == 48
    return [160, 48, *body]


def float_inverter_model() -> list[int]:
    values = [10.5, 10.5, math.nan, math.nan, math.nan, math.nan, math.nan, 231.5, math.nan,
              math.nan, 2400.0, 49.98, 2410.0, math.nan, 99.0, 5.0e6, 6.25, 410.0, 2500.0,
              41.5, math.nan, math.nan, math.nan]
    body: list[int] = []
    for v in values:
        body += NAN_F32 if math.isnan(v) else encode_float32(v)
    body += [8, NOT_IMPL_U16]                   # St standby, StVnd
    body += [0] * (60 - len(body))
    assert len(body) == 60
    return [113, 60, *body]


def image(*model_lists: list[int]) -> list[int]:
    regs = list(models.SUNS_MARKER)
    for m in model_lists:
        regs += m
    return [*regs, 0xFFFF, 0]


DEVICE_103 = image(common_model("SN103-0001"), int_inverter_model(), mppt_model())
DEVICE_113 = image(common_model("FL-113", "Floaty", "F1"), float_inverter_model())


# -- in-process Modbus server ------------------------------------------------------------------
class ModbusServer:
    """pymodbus' TCP server in a thread with its own event loop; restartable on one port."""

    def __init__(self, base: int, registers: list[int], port: int | None = None,
                 unit_id: int = 1) -> None:
        self.base, self.registers, self.unit_id = base, registers, unit_id
        self.port = port or free_port()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: ModbusTcpServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> ModbusServer:
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)

            async def begin() -> None:
                device = SimDevice(self.unit_id, simdata=[SimData(
                    self.base, values=self.registers, datatype=DataType.REGISTERS)])
                self._server = ModbusTcpServer(device, address=("127.0.0.1", self.port))
                await self._server.serve_forever(background=True)

            try:
                loop.run_until_complete(begin())
            except BaseException as exc:  # reported to the test thread
                errors.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        assert ready.wait(10), "the Modbus server did not start"
        if errors:
            raise errors[0]
        return self

    def stop(self) -> None:
        loop, server = self._loop, self._server
        if loop is None or server is None:
            return
        stopping = server.shutdown()  # type: ignore[no-untyped-call]
        asyncio.run_coroutine_threadsafe(stopping, loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop = self._server = None
