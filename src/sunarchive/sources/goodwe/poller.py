"""The GoodWe poller, run by :class:`~sunarchive.sources.running.PolledSource`.

``connect`` asks ``goodwe.connect`` for the inverter: with ``family: auto`` the library
discovers it (on UDP 8899 the aa55 ``010200`` probe names the model by its serial number,
otherwise it tries the ET, DT and ES Modbus register maps in turn); the family found is
remembered, so a reconnect after an outage only re-reads the device info. ``poll`` reads the
runtime data (ET: registers 35100+125, battery 37000+24, meter 36000+45, each a Modbus read
wrapped in ``AA55`` with a CRC-16) and maps it with
:data:`~sunarchive.sources.goodwe.mapping.VARIABLE_MAP`.

UDP is lossy: the library re-sends an unanswered request ``retries`` times after
``request_timeout_s``. A poll that still gets no answer raises a transient
:class:`SourceError`; the wrapper counts it and reports the source offline only after
``offline_after_failures`` of them in a row. A failed poll produces no sample at all, so the
series shows a gap (bridged by the profile's ``max_gap_s``), never zeros.

The library is asyncio-based; the poller runs its own event loop in the source's thread.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

import goodwe  # type: ignore[import-untyped]

from sunarchive.model import SampleBatch
from sunarchive.sources.goodwe.mapping import DATA_SOURCE, runtime_batches
from sunarchive.sources.running import SourceError

if TYPE_CHECKING:
    from sunarchive.sources.goodwe.config import GoodWeSettings

log = logging.getLogger(__name__)
T = TypeVar("T")


class GoodWePoller:
    """One GoodWe inverter."""

    def __init__(self, settings: GoodWeSettings) -> None:
        self.settings = settings
        self.family: str | None = None if settings.family == "auto" else settings.family
        """The family asked for or discovered (``ET``, ``ES``, ``DT`` ...)."""
        self.serial_number: str | None = None
        self.model_name: str | None = None
        self._inverter: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def connect(self, timeout_s: float) -> None:
        s = self.settings
        inverter = self._run(goodwe.connect(s.host, s.port, family=self.family,
                                            comm_addr=s.comm_addr,
                                            timeout=s.request_timeout_s, retries=s.retries),
                             timeout_s, "connect")
        if self.family is None:
            log.info("%s: discovered a GoodWe %s inverter %s (S/N %s)", s.name,
                     type(inverter).__name__, inverter.model_name, inverter.serial_number)
        self.family = self.family or type(inverter).__name__
        self.serial_number = str(inverter.serial_number or "") or None
        self.model_name = inverter.model_name
        self._inverter = inverter

    def poll(self, timeout_s: float) -> list[SampleBatch]:
        if self._inverter is None:
            raise SourceError("not connected")
        data = self._run(self._inverter.read_runtime_data(), timeout_s, "runtime data")
        device = self.settings.device_id or self.serial_number or self.settings.name
        return runtime_batches(data, (device, DATA_SOURCE, self.settings.location),
                               time.time_ns())

    def close(self) -> None:
        """Forget the inverter (the library opens a socket per request) and the loop."""
        self._inverter = None
        if self._loop is not None:
            self._loop.close()
            self._loop = None

    def _run(self, work: Coroutine[Any, Any, T], timeout_s: float, what: str) -> T:
        """Run one library call in this poller's loop; its errors become transient."""
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        try:
            return self._loop.run_until_complete(asyncio.wait_for(work, timeout_s))
        except TimeoutError:
            raise SourceError(f"{what}: no answer within {timeout_s:g} s") from None
        except goodwe.InverterError as exc:
            message = str(getattr(exc, "message", "") or exc) or type(exc).__name__
            raise SourceError(f"{what}: {message.splitlines()[0]}") from None
