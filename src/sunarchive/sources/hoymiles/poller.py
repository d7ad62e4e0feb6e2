"""The Hoymiles DTU poller (``hoymiles-wifi``, asyncio), run by
:class:`~sunarchive.sources.running.PolledSource` on the source's thread.

``connect`` asks the DTU for its app information (serial number, and whether it encrypts:
bit 25 of ``dfs``; encrypted DTUs hand out the ``enc_rand`` the library derives its AES key
from); ``poll`` asks for ``RealDataNew`` (the library fetches further pages while ``ap`` says
there are more) and maps it with :func:`~sunarchive.sources.hoymiles.mapping.real_data_batches`.

The library opens one TCP connection per request, waits at least 2 s between requests and
returns ``None`` instead of raising; ``None`` becomes a transient :class:`SourceError` that
says whether the DTU did not answer (refused, timed out) or answered garbage (length, CRC,
protobuf), so the wrapper backs off and reports the DTU offline after repeated failures —
and no rows are written for the outage.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from typing import Any

from hoymiles_wifi.const import DTU_PORT  # type: ignore[import-untyped]
from hoymiles_wifi.dtu import DTU, NetworkState  # type: ignore[import-untyped]
from hoymiles_wifi.hoymiles import is_encrypted_dtu  # type: ignore[import-untyped]

from sunarchive.model import SampleBatch
from sunarchive.sources.hoymiles.mapping import real_data_batches
from sunarchive.sources.running import SourceError

log = logging.getLogger(__name__)

GUARD_REQUESTS = 4
"""A whole poll may take this many request timeouts (plus the library's 2 s spacing) before
it is abandoned; each request is bounded by the library itself."""


class PortDTU(DTU):  # type: ignore[misc]
    """The library's DTU on a configurable port (its high-level calls always use 10081)."""

    def __init__(self, host: str, port: int, timeout_s: float) -> None:
        super().__init__(host, timeout=timeout_s)
        self.port = port

    async def async_send_request(self, command: bytes, request: Any, response_type: Any,
                                 dtu_port: int = DTU_PORT, **kwargs: Any) -> Any:
        return await super().async_send_request(command, request, response_type,
                                                dtu_port=self.port, **kwargs)


class HoymilesPoller:
    """One DTU and the inverters behind it."""

    def __init__(self, host: str, port: int = DTU_PORT, dtu_name: str = "") -> None:
        self.host, self.port, self.dtu_name = host, port, dtu_name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._dtu: PortDTU | None = None
        self.dtu_serial = ""
        self.encrypted = False

    # -- Poller ----------------------------------------------------------------------------
    def connect(self, timeout_s: float) -> None:
        self.close()
        self._loop = asyncio.new_event_loop()
        dtu = PortDTU(self.host, self.port, timeout_s)
        info = self._ask(dtu, dtu.async_app_information_data(), "app information", timeout_s)
        self.dtu_serial = str(info.dtu_serial_number)
        dfs = int(info.dtu_info.dfs)
        self.encrypted = bool(is_encrypted_dtu(dfs))
        if self.encrypted:
            dtu.is_encrypted, dtu.enc_rand = True, bytes(info.dtu_info.enc_rand)
        self._dtu = dtu
        log.info("hoymiles %s:%s: DTU %s%s", self.host, self.port, self.dtu_serial,
                 " (encrypted)" if self.encrypted else "")

    def poll(self, timeout_s: float) -> list[SampleBatch]:
        dtu = self._dtu
        if dtu is None:
            raise SourceError("not connected", transient=True)
        data = self._ask(dtu, dtu.async_get_real_data_new(), "real data", timeout_s)
        return real_data_batches(data, self.dtu_name, time.time_ns(), self.dtu_serial)

    def close(self) -> None:
        loop, self._loop, self._dtu = self._loop, None, None
        if loop is not None:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()
            except Exception:  # close must not raise
                log.debug("closing the event loop failed", exc_info=True)

    # -- requests --------------------------------------------------------------------------
    def _ask(self, dtu: PortDTU, call: Coroutine[Any, Any, Any], what: str,
             timeout_s: float) -> Any:
        """Run one library call; its ``None`` (the library never raises) becomes a transient
        :class:`SourceError` naming the cause."""
        loop = self._loop
        if loop is None:
            call.close()
            raise SourceError("not connected", transient=True)
        guard = GUARD_REQUESTS * (timeout_s + 2.0)
        try:
            answer = loop.run_until_complete(asyncio.wait_for(call, guard))
        except TimeoutError as exc:
            raise SourceError(f"DTU {self.host}:{self.port} gave no {what} within {guard:g} s",
                              transient=True) from exc
        if answer is not None:
            return answer
        state = dtu.get_state()
        if state == NetworkState.Offline:
            raise SourceError(f"DTU {self.host}:{self.port} did not answer the {what} request "
                              f"(refused or no answer within {timeout_s:g} s)", transient=True)
        if state == NetworkState.Online:
            raise SourceError(f"DTU {self.host}:{self.port} answered the {what} request "
                              "without data", transient=True)
        raise SourceError(f"DTU {self.host}:{self.port} sent an unreadable {what} answer "
                          "(length, CRC, key or protobuf mismatch)", transient=True)
