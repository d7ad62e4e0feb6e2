"""The SunSpec Modbus TCP poller (pymodbus, synchronous), run by
:class:`~sunarchive.sources.running.PolledSource`.

``connect`` opens the TCP connection, finds the ``"SunS"`` marker (the configured base
address, or 40000, 0 and 50000 in turn) and walks the model list once; ``poll`` reads the
inverter model and model 160 and returns ``sunspec_inverter`` / ``sunspec_mppt`` batches.

Errors: a Modbus exception response, a timeout or a broken connection is a transient
:class:`SourceError` (the wrapper closes, backs off and reconnects). A device that closed an
idle connection is reconnected once inside the same poll before that counts as a failure. A
device without the marker is a permanent error.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
from pymodbus.client import ModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

from sunarchive.model import SampleBatch
from sunarchive.sources.running import SourceError
from sunarchive.sources.sunspec import models
from sunarchive.sources.sunspec.models import Identity, ModelRef

log = logging.getLogger(__name__)

MAX_READ = 125
"""Registers per Modbus read request (the protocol's limit)."""
MAX_MODELS = 64
"""Models walked at most (guards against a register map without the end marker)."""
INVERTER_MEASUREMENT = "sunspec_inverter"
MPPT_MEASUREMENT = "sunspec_mppt"


class ModbusReadError(SourceError):
    """The device answered a read with a Modbus exception (e.g. illegal address)."""


@contextmanager
def _as_source_error() -> Iterator[None]:
    """pymodbus errors (timeouts, broken connections) become transient :class:`SourceError`;
    a register map that does not decode is a permanent one."""
    try:
        yield
    except SourceError:
        raise
    except ModbusException as exc:
        raise SourceError(f"Modbus: {exc}", transient=True) from exc
    except ValueError as exc:
        raise SourceError(f"unexpected SunSpec register map: {exc}", transient=False) from exc


class SunSpecPoller:
    """One SunSpec device behind Modbus TCP (one unit id)."""

    def __init__(self, host: str, port: int = 502, unit_id: int = 1,
                 base_address: int | None = None, fallback_serial: str = "") -> None:
        self.host, self.port, self.unit_id = host, port, unit_id
        self.base_address = base_address
        self.fallback_serial = fallback_serial
        self._client: ModbusTcpClient | None = None
        self.base: int | None = None
        self.models: list[ModelRef] = []
        self.identity: Identity | None = None
        self.reconnects = 0
        """Connections re-opened inside a poll (the device had dropped an idle one)."""

    # -- Poller ----------------------------------------------------------------------------
    def connect(self, timeout_s: float) -> None:
        self._open(timeout_s)
        if self.base is None:
            with _as_source_error():
                self._discover()

    def poll(self, timeout_s: float) -> list[SampleBatch]:
        with _as_source_error():
            try:
                return self._read_models()
            except (ConnectionException, ModbusIOException, OSError) as exc:
                # a device that dropped the idle connection: reconnect once and retry
                log.info("sunspec %s:%s: %s; reconnecting", self.host, self.port, exc)
                self.close()
                self._open(timeout_s)
                self.reconnects += 1
                return self._read_models()

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                client.close()  # type: ignore[no-untyped-call]
            except Exception:  # close must not raise
                log.debug("closing the Modbus client failed", exc_info=True)

    # -- connection and discovery ----------------------------------------------------------
    def _open(self, timeout_s: float) -> None:
        self.close()
        client = ModbusTcpClient(self.host, port=self.port, timeout=timeout_s, retries=0,
                                 reconnect_delay=0)
        if not client.connect():  # type: ignore[no-untyped-call]
            client.close()  # type: ignore[no-untyped-call]
            raise SourceError(f"cannot connect to {self.host}:{self.port}", transient=True)
        self._client = client

    def _discover(self) -> None:
        candidates = ((self.base_address,) if self.base_address is not None
                      else models.BASE_ADDRESSES)
        base = None
        for candidate in candidates:
            try:
                regs = self._read(candidate, 2)
            except ModbusReadError:
                continue        # an exception answer: nothing there, try the next address
            if models.is_marker(regs):
                base = candidate
                break
        if base is None:
            where = ", ".join(str(c) for c in candidates)
            raise SourceError(f"{self.host}:{self.port} unit {self.unit_id} is not a SunSpec "
                              f"device (no 'SunS' marker at {where})", transient=False)
        refs: list[ModelRef] = []
        address = base + 2
        for _ in range(MAX_MODELS):
            ref, address = models.next_model(address, self._read(address, 2))
            if ref is None:
                break
            refs.append(ref)
        common = next((r for r in refs if r.model_id == models.COMMON), None)
        identity = (models.decode_common(self._read(common.address, common.length))
                    if common is not None else Identity("", "", ""))
        self.base, self.models, self.identity = base, refs, identity
        log.info("sunspec %s:%s: base %d, models %s, %s %s serial %s", self.host, self.port,
                 base, [r.model_id for r in refs], identity.manufacturer, identity.model,
                 identity.serial)

    @property
    def serial(self) -> str:
        serial = self.identity.serial if self.identity is not None else ""
        return serial or self.fallback_serial

    # -- reading ---------------------------------------------------------------------------
    def _read(self, address: int, count: int) -> list[int]:
        """``count`` holding registers from ``address``, in requests of at most 125."""
        client = self._client
        if client is None:
            raise SourceError("not connected", transient=True)
        out: list[int] = []
        while count > 0:
            n = min(count, MAX_READ)
            rr = client.read_holding_registers(address, count=n, device_id=self.unit_id)
            if rr.isError():
                raise ModbusReadError(f"Modbus exception reading {n} registers at {address}: "
                                      f"{rr}", transient=True)
            regs: Sequence[int] = rr.registers
            if len(regs) < n:
                raise SourceError(f"short answer at {address}: {len(regs)} of {n} registers")
            out.extend(regs[:n])
            address += n
            count -= n
        return out

    def _read_models(self) -> list[SampleBatch]:
        batches: list[SampleBatch] = []
        serial = self.serial
        inverter = next((r for r in self.models if r.model_id in models.INVERTERS), None)
        if inverter is not None:
            body = self._read(inverter.address, inverter.length)
            now = time.time_ns()
            reading = models.decode_inverter(inverter.model_id, body)
            batches.append(SampleBatch(
                INVERTER_MEASUREMENT, [(serial,)], np.zeros(1, np.int32),
                np.array([now], np.int64),
                {k: np.array([v], np.float64) for k, v in reading.fields.items()}))
        mppt = next((r for r in self.models if r.model_id == models.MPPT), None)
        if mppt is not None:
            body = self._read(mppt.address, mppt.length)
            now = time.time_ns()
            modules = models.decode_mppt(body)
            if modules:
                n = len(modules)
                names = list(modules[0].fields)
                batches.append(SampleBatch(
                    MPPT_MEASUREMENT, [(serial, m.module_id) for m in modules],
                    np.arange(n, dtype=np.int32), np.full(n, now, np.int64),
                    {k: np.array([m.fields[k] for m in modules], np.float64)
                     for k in names}))
        return batches
