"""A fake GoodWe ET inverter on UDP port 8899 of a private loopback address.

It answers the ``goodwe`` library's requests byte for byte from recorded request/response
pairs in ``tests/data/goodwe_et_udp.hex`` (one ``request response`` pair of hex strings per
line). The pairs were constructed from an ET register image (below) with the framing real
dongles use, independently of the library's own code:

* aa55 discovery: ``AA55C07F 010200 <sum16>`` → ``AA55 7FC0 0182 <len> <payload> <sum16>``;
  the payload carries the model name at 5..15 and the serial number at 31..47.
* Modbus RTU over UDP: ``F7 03 <reg16> <count16> <crc16 LE>`` →
  ``AA55 F7 03 <bytes> <data> <crc16 LE>`` (CRC-16/Modbus over everything after ``AA55``);
  a register range the inverter does not have → exception ``AA55 F7 83 02 <crc16>``.

Regenerate the file with ``python -m tests.support.goodwe_fake``. The fake binds 127.x.y.z:8899
because the library speaks UDP only to port 8899 (any other port means Modbus TCP).
"""

from __future__ import annotations

import random
import socket
import sys
import threading
from pathlib import Path

DATA_FILE = Path(__file__).resolve().parents[1] / "data" / "goodwe_et_udp.hex"
GOODWE_PORT = 8899
SERIAL = "9010KETU21AW0001"
MODEL = "GW10K-ET"
COMM_ADDR = 0xF7

#: What the recorded runtime data says, as the library decodes it (V, A, W, Hz, °C, %, kWh).
EXPECTED = {
    "vpv1": 350.5, "ipv1": 8.2, "ppv1": 2874, "vpv2": 340.0, "ipv2": 7.9, "ppv2": 2686,
    "ppv": 5560, "vgrid": 235.1, "igrid": 9.1, "fgrid": 50.01, "active_power": 1850,
    "load_ptotal": 1200, "temperature": 45.5, "vbattery1": 412.3, "ibattery1": -6.1,
    "pbattery1": -2510, "battery_soc": 64, "battery_temperature": 27.5,
    "e_total": 12345.6, "e_day": 18.4, "e_total_exp": 8000.1, "e_day_exp": 7.3,
    "e_total_imp": 2100.5, "e_day_imp": 1.2, "e_load_total": 6543.2, "e_load_day": 9.8,
    "e_bat_charge_total": 3123.4, "e_bat_charge_day": 4.5, "e_bat_discharge_total": 2876.5,
    "e_bat_discharge_day": 2.1,
}


# -- framing ---------------------------------------------------------------------------------
def crc16_modbus(data: bytes) -> int:
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def modbus_read_request(register: int, count: int, addr: int = COMM_ADDR) -> bytes:
    body = bytes([addr, 0x03]) + register.to_bytes(2, "big") + count.to_bytes(2, "big")
    return body + crc16_modbus(body).to_bytes(2, "little")


def modbus_read_response(words: list[int], addr: int = COMM_ADDR) -> bytes:
    body = bytes([addr, 0x03, 2 * len(words)]) + b"".join(w.to_bytes(2, "big") for w in words)
    return b"\xaa\x55" + body + crc16_modbus(body).to_bytes(2, "little")


def modbus_exception(code: int = 2, addr: int = COMM_ADDR) -> bytes:
    body = bytes([addr, 0x83, code])
    return b"\xaa\x55" + body + crc16_modbus(body).to_bytes(2, "little")


def discovery_request() -> bytes:
    frame = bytes.fromhex("AA55C07F010200")
    return frame + sum(frame).to_bytes(2, "big")


def discovery_response() -> bytes:
    payload = bytearray(76)
    payload[5:15] = MODEL.ljust(10).encode()
    payload[31:47] = SERIAL.encode()
    frame = bytes.fromhex("AA557FC00182") + bytes([len(payload)]) + payload
    return frame + (sum(frame) & 0xFFFF).to_bytes(2, "big")


# -- the register image ------------------------------------------------------------------------
def _put(regs: dict[int, int], register: int, value: int, words: int = 1,
         signed: bool = False) -> None:
    raw = value.to_bytes(2 * words, "big", signed=signed)
    for k in range(words):
        regs[register + k] = int.from_bytes(raw[2 * k:2 * k + 2], "big")


def _text(regs: dict[int, int], register: int, text: str, words: int) -> None:
    raw = text.ljust(2 * words).encode()
    for k in range(words):
        regs[register + k] = int.from_bytes(raw[2 * k:2 * k + 2], "big")


def register_image() -> dict[int, int]:
    """ET registers: device info 35000+, runtime 35100+, meter 36000+, battery 37000+."""
    r: dict[int, int] = {}
    _put(r, 35000, 2)                       # modbus protocol version
    _put(r, 35001, 10000)                   # rated power, W
    _put(r, 35002, 1)                       # three phase, four wire
    _text(r, 35003, SERIAL, 8)
    _text(r, 35011, MODEL, 5)
    for k, v in enumerate((19, 19, 400, 22, 500)):
        _put(r, 35016 + k, v)               # DSP/ARM versions
    _text(r, 35021, "04029-19-S11", 6)
    _text(r, 35027, "02041-22-S00", 6)
    r[35100], r[35101], r[35102] = 0x1A06, 0x150C, 0x0000   # 2026-06-21 12:00:00
    for reg, v in ((35103, 3505), (35104, 82), (35107, 3400), (35108, 79)):
        _put(r, reg, v)
    _put(r, 35105, 2874, 2)
    _put(r, 35109, 2686, 2)
    for reg, v in ((35121, 2351), (35122, 91), (35123, 5001), (35125, 2100), (35136, 1),
                   (35138, 3050), (35140, 1850), (35172, 1200), (35174, 412), (35176, 455),
                   (35180, 4123), (35184, 3), (35187, 1)):
        _put(r, reg, v, signed=True)
    _put(r, 35181, -61, signed=True)
    _put(r, 35182, -2510, 2, signed=True)
    for reg, v in ((35191, 123456), (35193, 184), (35195, 80001), (35200, 21005),
                   (35203, 65432), (35206, 31234), (35209, 28765)):
        _put(r, reg, v, 2)                  # 0.1 kWh
    for reg, v in ((35199, 73), (35202, 12), (35205, 98), (35208, 45), (35211, 21)):
        _put(r, reg, v)
    _put(r, 36004, 1)                       # meter communication OK
    _put(r, 36008, 1850, signed=True)       # meter active power total
    _put(r, 36014, 5001)
    for reg, v in ((37000, 1), (37002, 1), (37003, 275), (37004, 25), (37005, 25),
                   (37007, 64), (37008, 98), (37009, 4)):
        _put(r, reg, v)
    return r


READS = ((35000, 0x21), (35100, 0x7D), (37000, 0x18), (36000, 0x2D))
"""Register ranges the ET inverter answers; 47547+6 and 47589+6 (newer firmware settings)
are answered with ILLEGAL DATA ADDRESS, as on an older ET."""


def recorded_pairs() -> list[tuple[bytes, bytes]]:
    regs = register_image()
    pairs = [(discovery_request(), discovery_response())]
    pairs += [(modbus_read_request(start, count),
               modbus_read_response([regs.get(start + k, 0) for k in range(count)]))
              for start, count in READS]
    pairs += [(modbus_read_request(start, 6), modbus_exception(2)) for start in (47547, 47589)]
    return pairs


def write_recorded(path: Path = DATA_FILE) -> None:
    lines = ["# GoodWe ET over UDP 8899: request response (hex); see tests/support/goodwe_fake.py"]
    lines += [f"{req.hex()} {resp.hex()}" for req, resp in recorded_pairs()]
    path.write_text("\n".join(lines) + "\n")


def load_recorded(path: Path = DATA_FILE) -> dict[bytes, bytes]:
    pairs = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            request, response = line.split()
            pairs[bytes.fromhex(request)] = bytes.fromhex(response)
    return pairs


# -- the server --------------------------------------------------------------------------------
class FakeGoodWe:
    """Answers recorded requests on ``host``:8899 until :meth:`stop`; ``silent`` drops all."""

    def __init__(self, answers: dict[bytes, bytes] | None = None) -> None:
        self.answers = load_recorded() if answers is None else answers
        self.requests: list[bytes] = []
        self.silent = False
        self.sock = _bind_private_loopback()
        self.host: str = self.sock.getsockname()[0]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="fake-goodwe", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.05)
        while not self._stop.is_set():
            try:
                request, peer = self.sock.recvfrom(2048)
            except TimeoutError:
                continue
            self.requests.append(request)
            answer = self.answers.get(request)
            if answer is not None and not self.silent:
                self.sock.sendto(answer, peer)

    def count(self, request: bytes) -> int:
        return sum(1 for r in list(self.requests) if r == request)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


def _bind_private_loopback() -> socket.socket:
    """A UDP socket on 127.a.b.c:8899 for a random free loopback address."""
    last: OSError | None = None
    for _ in range(50):
        host = f"127.{random.randint(1, 254)}.{random.randint(0, 255)}.{random.randint(2, 254)}"
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind((host, GOODWE_PORT))
            return sock
        except OSError as exc:
            sock.close()
            last = exc
    raise RuntimeError(f"no free loopback address for UDP {GOODWE_PORT}: {last}")


if __name__ == "__main__":
    write_recorded(Path(sys.argv[1]) if len(sys.argv) > 1 else DATA_FILE)
