"""An in-process fake Hoymiles DTU on a loopback port for the ``hoymiles`` source tests.

It speaks the DTU's framing as ``hoymiles-wifi`` does (``"HM"``, a 2-byte command, sequence,
CRC-16/MODBUS of the body, total length, then a protobuf body; AES-GCM encrypted bodies when
the DTU says so in ``dfs`` bit 25) and answers the app-information and ``RealDataNew``
requests with the library's own generated protobuf messages, split into ``ap`` pages when
asked to. Modes: ``answer`` (normal), ``silent`` (reads the request, never answers) and
``garbage`` (answers with a bad CRC).
"""

from __future__ import annotations

import socket
import socketserver
import struct
import threading
from dataclasses import dataclass, field

from crcmod import mkCrcFun  # type: ignore[import-untyped]
from hoymiles_wifi.crypt_util import crypt_data  # type: ignore[import-untyped]
from hoymiles_wifi.protobuf import (  # type: ignore[import-untyped]
    APPInfomationData_pb2,
    RealDataNew_pb2,
)

crc16 = mkCrcFun(0x18005, rev=True, initCrc=0xFFFF, xorOut=0x0000)

APP_INFO_REQUEST = 0xA301
APP_INFO_ANSWER = 0xA201
REAL_DATA_REQUEST = 0xA311
REAL_DATA_ANSWER = 0xA211
ENCRYPTED_BIT = 1 << 25


@dataclass
class Port:
    number: int
    voltage: int        # 0.1 V
    current: int        # 0.01 A
    power: int          # 0.1 W
    energy_total: int   # Wh
    energy_daily: int   # Wh
    error_code: int = 0


@dataclass
class Inverter:
    serial: int
    voltage: int        # 0.1 V
    frequency: int      # 0.01 Hz
    temperature: int    # 0.1 °C
    active_power: int   # 0.1 W
    warning_number: int
    link_status: int
    ports: list[Port] = field(default_factory=list)


DTU_SERIAL = "414312345678"
INVERTERS = [
    Inverter(0x116180012345, 2301, 4998, 312, 8123, 0, 1, [
        Port(1, 342, 612, 2093, 1234567, 1510), Port(2, 338, 598, 2021, 1200001, 1490),
        Port(3, 351, 630, 2211, 1300000, 1600), Port(4, 344, 540, 1858, 1111111, 1390)]),
    Inverter(0x112180054321, 2315, 5001, 287, 2788, 2, 1, [
        Port(1, 301, 455, 1370, 456789, 700), Port(2, 305, 466, 1421, 456000, 720, 141)]),
]
DTU_POWER = 12345          # 0.1 W
DTU_DAILY_ENERGY = 9012    # Wh


def real_data(inverters: list[Inverter], page: int, pages: int) -> bytes:
    """Page ``page`` of ``pages`` of a ``RealDataNewReqDTO`` (inverters split round-robin)."""
    msg = RealDataNew_pb2.RealDataNewReqDTO()
    msg.device_serial_number = DTU_SERIAL
    msg.timestamp = 1_781_000_000
    msg.ap, msg.cp = pages, page
    msg.dtu_power, msg.dtu_daily_energy = DTU_POWER, DTU_DAILY_ENERGY
    for inv in inverters[page::pages]:
        sgs = msg.sgs_data.add()
        sgs.serial_number = inv.serial
        sgs.voltage, sgs.frequency, sgs.temperature = inv.voltage, inv.frequency, inv.temperature
        sgs.active_power, sgs.warning_number = inv.active_power, inv.warning_number
        sgs.link_status = inv.link_status
        for p in inv.ports:
            pv = msg.pv_data.add()
            pv.serial_number, pv.port_number = inv.serial, p.number
            pv.voltage, pv.current, pv.power = p.voltage, p.current, p.power
            pv.energy_total, pv.energy_daily = p.energy_total, p.energy_daily
            pv.error_code = p.error_code
    data: bytes = msg.SerializeToString()
    return data


def app_info(enc_rand: bytes | None) -> bytes:
    msg = APPInfomationData_pb2.APPInfoDataReqDTO()
    msg.dtu_serial_number = DTU_SERIAL
    msg.device_number = len(INVERTERS)
    msg.dtu_info.device_kind = 1
    if enc_rand is not None:
        msg.dtu_info.dfs = ENCRYPTED_BIT
        msg.dtu_info.enc_rand = enc_rand
    data: bytes = msg.SerializeToString()
    return data


def frame(tag: int, seq: int, body: bytes, enc_rand: bytes | None = None) -> bytes:
    """One DTU answer; encrypted bodies carry the 16-byte GCM tag beyond ``length``."""
    if enc_rand is None:
        return struct.pack(">2sHHHH", b"HM", tag, seq, crc16(body), len(body) + 10) + body
    cipher: bytes = crypt_data(True, enc_rand, tag, seq, body)
    return struct.pack(">2sHHHH", b"HM", tag, seq, crc16(cipher[:-16]),
                       len(cipher) - 16 + 10) + cipher


@dataclass
class Request:
    command: int
    seq: int
    encrypted: bool
    cp: int | None = None


class FakeDTU:
    """A DTU on ``127.0.0.1:port``; ``stop``/``start`` keep the port."""

    def __init__(self, port: int = 0, pages: int = 1, enc_rand: bytes | None = None) -> None:
        self.port, self.pages, self.enc_rand = port, pages, enc_rand
        self.inverters = INVERTERS
        self.mode = "answer"
        self.requests: list[Request] = []
        self.errors: list[str] = []
        self._wake = threading.Event()
        self._server: socketserver.ThreadingTCPServer | None = None

    def start(self) -> FakeDTU:
        fake = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                fake.serve(self.request)

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        server = socketserver.ThreadingTCPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        server.block_on_close = False
        self.port = server.server_address[1]
        self._server = server
        self._wake.clear()
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        self._wake.set()
        if server is not None:
            server.shutdown()
            server.server_close()

    def silence(self, silent: bool) -> None:
        self.mode = "silent" if silent else "answer"
        if not silent:
            self._wake.set()
            self._wake = threading.Event()

    # -- one connection: one request, one answer ---------------------------------------------
    def serve(self, sock: socket.socket) -> None:
        sock.settimeout(5)
        try:
            request = self._read(sock)
        except (OSError, ValueError) as exc:
            self.errors.append(str(exc))
            return
        self.requests.append(request)
        if self.mode == "silent":
            self._wake.wait(10)       # hold the connection open without answering
            return
        if request.command == APP_INFO_REQUEST:
            answer = frame(APP_INFO_ANSWER, request.seq, app_info(self.enc_rand))
        elif request.command == REAL_DATA_REQUEST:
            body = real_data(self.inverters, request.cp or 0, self.pages)
            answer = frame(REAL_DATA_ANSWER, request.seq, body, self.enc_rand)
        else:
            self.errors.append(f"unexpected command {request.command:#06x}")
            return
        if self.mode == "garbage":
            answer = answer[:6] + b"\x00\x00" + answer[8:]
        sock.sendall(answer)

    def _read(self, sock: socket.socket) -> Request:
        head = _recv(sock, 10)
        magic, command, seq, crc, length = struct.unpack(">2sHHHH", head)
        if magic != b"HM":
            raise ValueError(f"bad magic {magic!r}")
        encrypted = self.enc_rand is not None and command != APP_INFO_REQUEST
        body = _recv(sock, length - 10 + (16 if encrypted else 0))
        if crc16(body[:-16] if encrypted else body) != crc:
            raise ValueError("request CRC mismatch")
        if encrypted:
            assert self.enc_rand is not None
            body = crypt_data(False, self.enc_rand, command, seq, body)
        cp = None
        if command == REAL_DATA_REQUEST:
            cp = RealDataNew_pb2.RealDataNewResDTO.FromString(body).cp
        return Request(command, seq, encrypted, cp)


def _recv(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ValueError(f"connection closed after {len(data)} of {n} bytes")
        data += chunk
    return data
