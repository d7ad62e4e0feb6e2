"""The running TCP line receiver: an asyncio server in the source's thread.

* One task per connection; every connection has its own line numbers (1-based) and, for CSV,
  its own header (the connection's first non-empty line).
* A malformed record is reported as ``status.error("<peer> line <n>: <reason>")``; the
  connection stays open and later lines are kept. An unknown key is reported too, but the
  record's known fields are kept.
* Records are collected per measurement and handed to the sink every ``batch_interval_s``
  (and when the source stops).
* A connection that completes no line for ``idle_timeout_s`` (idle, or dripping bytes
  without a newline) is closed; a line longer than ``max_line_bytes`` is reported and
  skipped while it streams in, so neither idle clients nor endless lines hold memory.
* A time or value the store cannot hold (:mod:`sunarchive.bounds`) rejects its record like
  any other malformed record; nothing a client sends can stop the source.
* A record stamped more than ``max_future_s`` (the setting, through the
  :class:`~sunarchive.sources.running.SourceContext`) ahead of the wall clock is refused with
  its line (:mod:`sunarchive.timecheck`): it would make every later sample "too late".
* The status is ``connected`` while the port is listening. If the port cannot be bound the
  source is ``offline`` and retries with capped backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import json
import logging
import math
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from sunarchive.bounds import TIME_RANGE_TEXT, check_time_ns, check_value
from sunarchive.errors import SourceError
from sunarchive.lineprotocol import parse_lines
from sunarchive.model import NS_PER_S, ConfigError, InputError, SampleBatch, require_aware
from sunarchive.sources.push import PushSource
from sunarchive.sources.running import Backoff, SourceContext, SourceStatus
from sunarchive.sources.tcp.config import TcpSettings
from sunarchive.timecheck import ahead_reason, limit_ns

if TYPE_CHECKING:
    from sunarchive.profiles.spec import Profile
    from sunarchive.sources.base import SampleSink

log = logging.getLogger(__name__)

TICK_S = 0.05
"""How often ``stop`` and the batch interval are looked at."""
READ_CHUNK = 65536


@dataclass
class Record:
    """One decoded record: tag values in the profile's order, time and field values."""

    measurement: str
    tags: tuple[str, ...]
    time_ns: int
    fields: dict[str, float]


@dataclass
class Decoded:
    """What one line gave: records (possibly none) and problems to report."""

    records: list[Record] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


class LineDecoder:
    """Turns the lines of one connection into records (stateful for the CSV header)."""

    def __init__(self, settings: TcpSettings, profiles: Mapping[str, Profile]) -> None:
        self.settings = settings
        self.profiles = profiles
        self.header: list[str] | None = None

    def decode(self, line: str, now_ns: int) -> Decoded:
        """Decode one non-empty line; a line that gives no record has at least one problem."""
        fmt = self.settings.format
        try:
            if fmt == "json":
                return self._json(line, now_ns)
            if fmt == "csv":
                return self._csv(line, now_ns)
            return self._lineprotocol(line, now_ns)
        except InputError as exc:
            return Decoded(problems=[str(exc)])
        except (ValueError, OverflowError, RecursionError) as exc:   # never end the source
            return Decoded(problems=[f"cannot decode the line: {exc}"])

    # -- json / csv ------------------------------------------------------------------------
    def _json(self, line: str, now_ns: int) -> Decoded:
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"invalid JSON: {exc.msg} at column {exc.colno}") from None
        if not isinstance(value, dict):
            raise InputError(f"expected a JSON object, got {type(value).__name__}")
        return self._record(value, now_ns)

    def _csv(self, line: str, now_ns: int) -> Decoded:
        cells = next(csv.reader([line]))
        if self.header is None:
            return self._take_header([c.strip() for c in cells])
        if len(cells) != len(self.header):
            raise InputError(f"{len(cells)} columns, the header has {len(self.header)}")
        return self._record(dict(zip(self.header, cells, strict=True)), now_ns)

    def _take_header(self, names: list[str]) -> Decoded:
        assert self.settings.measurement is not None
        profile = self.profiles[self.settings.measurement]
        if len(set(names)) != len(names):
            raise InputError(f"CSV header {names} repeats a column")
        fields = {f.name for f in profile.fields}
        if not fields & set(names):
            raise InputError(f"CSV header has none of the fields of {profile.name} "
                             f"({', '.join(sorted(fields))})")
        self.header = names
        unknown = [n for n in names if n != self.settings.time_field
                   and n not in profile.tags and n not in fields]
        return Decoded(problems=[f"unknown column(s) {', '.join(unknown)} (ignored)"]
                       if unknown else [])

    def _record(self, values: Mapping[str, Any], now_ns: int) -> Decoded:
        assert self.settings.measurement is not None
        profile = self.profiles[self.settings.measurement]
        known_fields = {f.name for f in profile.fields}
        time_key = self.settings.time_field
        stamp = values.get(time_key)
        time_ns = now_ns if stamp is None or stamp == "" else _time_ns(stamp)
        tags = tuple(_tag(k, values.get(k)) for k in profile.tags)
        fields: dict[str, float] = {}
        unknown: list[str] = []
        for key, value in values.items():
            if key in known_fields:
                number = _number(key, value)
                if not math.isnan(number):
                    fields[key] = number
            elif key != time_key and key not in profile.tags:
                unknown.append(key)
        decoded = Decoded()
        if unknown and self.settings.format == "json":
            decoded.problems.append(f"unknown key(s) {', '.join(unknown)} (ignored; "
                                    f"{profile.name} has no such tag or field)")
        if not fields:
            decoded.problems.append("no field values")
        else:
            decoded.records.append(Record(profile.name, tags, time_ns, fields))
        return decoded

    # -- line protocol -----------------------------------------------------------------------
    def _lineprotocol(self, line: str, now_ns: int) -> Decoded:
        result = parse_lines(line, self.settings.precision, now_ns=now_ns,
                             max_line_bytes=self.settings.max_line_bytes)
        decoded = Decoded()
        for error in result.errors:
            message = error.message
            prefix = f"line {error.line_number}: "
            decoded.problems.append(message[len(prefix):] if message.startswith(prefix)
                                    else message)
        for name, parsed in result.measurements.items():
            wanted = self.settings.measurement
            if wanted is not None and name != wanted:
                raise InputError(f"measurement {name!r} is not {wanted!r}")
            profile = self.profiles.get(name)
            if profile is None:
                raise InputError(f"measurement {name!r} has no profile")
            unknown = [k for k in parsed.tag_keys if k not in profile.tags]
            known_fields = {f.name for f in profile.fields}
            unknown += [k for k in parsed.fields if k not in known_fields]
            if unknown:
                decoded.problems.append(f"unknown key(s) {', '.join(unknown)} (ignored; "
                                        f"{name} has no such tag or field)")
            for i in range(len(parsed.time_ns)):
                tagmap = dict(zip(parsed.tag_keys, parsed.tag_sets[int(parsed.tag_index[i])],
                                  strict=True))
                fields: dict[str, float] = {}
                for key, column in parsed.fields.items():
                    if key not in known_fields:
                        continue
                    if column.kind == "string":
                        raise InputError(f"field {key!r} is a string, not a number")
                    number = float(column.values[i])
                    if not math.isnan(number):
                        fields[key] = check_value(number, f"field {key!r} value {number:g}")
                if not fields:
                    decoded.problems.append("no field values")
                    continue
                stamp = int(parsed.time_ns[i])
                decoded.records.append(Record(
                    name, tuple(tagmap.get(k, "") for k in profile.tags),
                    check_time_ns(stamp, f"timestamp {stamp} ns"), fields))
        return decoded


def _time_ns(value: Any) -> int:
    """Epoch ns from epoch seconds (a number or numeric text) or ISO 8601 with an offset."""
    if isinstance(value, bool):
        raise InputError(f"time {value!r} is not a time")
    if isinstance(value, int | float):
        seconds = _float(value, f"time {value!r}")
    elif isinstance(value, str):
        text = value.strip()
        try:
            seconds = float(text)
        except ValueError:
            return check_time_ns(_iso_ns(value, text), f"time {value!r}")
    else:
        raise InputError(f"time {value!r} is not a time")
    if not math.isfinite(seconds):
        raise InputError(f"time {value!r} is not finite")
    whole = math.floor(seconds)   # a Python int: checked before anything could overflow
    return check_time_ns(whole * NS_PER_S + round((seconds - whole) * 1e9), f"time {value!r}")


def _float(value: int | float, what: str) -> float:
    """A JSON number as float64 (an integer of hundreds of digits does not fit)."""
    try:
        return float(value)
    except OverflowError:
        raise InputError(f"{what[:60]} is beyond float64") from None


def _iso_ns(value: Any, text: str) -> int:
    """Epoch ns of ISO 8601 text with an offset."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(f"time {value!r} is neither ISO 8601 nor epoch seconds") from None
    try:
        aware = require_aware(parsed)
    except OverflowError:   # year 1 with a positive offset is before year 1 in UTC
        raise InputError(f"time {value!r} is outside the storable range "
                         f"{TIME_RANGE_TEXT}") from None
    return int(aware.timestamp()) * NS_PER_S + aware.microsecond * 1000


def _tag(key: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str | int | float):
        return str(value)
    raise InputError(f"tag {key!r} is {type(value).__name__}, not a string or number")


def _number(key: str, value: Any) -> float:
    """A field value as float64; NaN = missing (null, empty CSV cell)."""
    if value is None:
        return math.nan
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        number = _float(value, f"field {key!r} value {value!r}")
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            return math.nan
        try:
            number = float(text)
        except ValueError:
            raise InputError(f"field {key!r} value {value!r} is not a number") from None
    else:
        raise InputError(f"field {key!r} is {type(value).__name__}, not a number")
    if math.isnan(number):
        return number   # NaN is missing
    return check_value(number, f"field {key!r} value {value!r}")


class _Pending:
    """Records of one measurement waiting for the next flush."""

    def __init__(self) -> None:
        self.records: list[Record] = []

    def batch(self, measurement: str) -> SampleBatch:
        sets: dict[tuple[str, ...], int] = {}
        index = np.array([sets.setdefault(r.tags, len(sets)) for r in self.records], np.int32)
        times = np.array([r.time_ns for r in self.records], np.int64)
        names = sorted({k for r in self.records for k in r.fields})
        fields = {name: np.array([r.fields.get(name, math.nan) for r in self.records],
                                 np.float64) for name in names}
        return SampleBatch(measurement, list(sets), index, times, fields)


class TcpReceiver(PushSource):
    """A push source listening on a TCP port (see the module docstring); its sessions (a
    bound port) run in the shared push wrapper (:class:`~sunarchive.sources.push.PushSource`):
    a port that cannot be bound is retried with backoff."""

    backoff_max_s = 30.0

    def __init__(self, settings: TcpSettings, context: SourceContext) -> None:
        self.name = settings.name
        self.settings = settings
        self.profiles = context.profiles
        self.max_future_s = context.max_future_s
        """Records stamped more than this many seconds ahead of the clock are refused."""
        if settings.measurement is not None and settings.measurement not in context.profiles:
            raise ConfigError(f"source {settings.name}: measurement "
                              f"{settings.measurement!r} has no profile")
        self.status = SourceStatus(settings.name, "tcp", context.events,
                                   settings.measurement or "")
        self.listening = threading.Event()
        """Set while the port is bound (for tests and the CLI)."""
        self.connections = 0
        """Connections open right now."""
        self.records = 0
        """Records accepted so far."""
        self._pending: dict[str, _Pending] = {}

    # -- lifecycle -----------------------------------------------------------------------------
    def drain(self, sink: SampleSink) -> None:
        self.listening.clear()
        self._flush(sink)

    async def session(self, sink: SampleSink, stop: threading.Event, backoff: Backoff) -> None:
        """The port bound until ``stop``; a port that cannot be bound is a transient
        :class:`SourceError`."""
        s = self.settings
        tasks: set[asyncio.Task[None]] = set()

        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            tasks.add(task)
            try:
                await self._connection(reader, writer)
            except asyncio.CancelledError:
                pass   # the source is stopping: end quietly (asyncio would log a traceback)
            finally:
                tasks.discard(task)

        try:
            server = await asyncio.start_server(accept, s.host, s.port, limit=s.max_line_bytes)
        except OSError as exc:
            raise SourceError(f"cannot listen on {s.host}:{s.port}: {exc}") from exc
        backoff.reset()
        log.info("source %s: listening on %s:%d (%s)", self.name, s.host, s.port, s.format)
        self.status.connected(f"listening on {s.host}:{s.port}")
        self.listening.set()
        try:
            next_flush = time.monotonic() + s.batch_interval_s
            while not stop.is_set():
                await asyncio.sleep(TICK_S)
                if time.monotonic() >= next_flush:
                    self._flush(sink)
                    next_flush = time.monotonic() + s.batch_interval_s
        finally:
            self.listening.clear()
            server.close()
            for task in list(tasks):
                task.cancel()
            if tasks:
                await asyncio.wait(list(tasks), timeout=2.0)
            await server.wait_closed()

    # -- one connection ------------------------------------------------------------------------
    async def _connection(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        address = writer.get_extra_info("peername")
        peer = (f"{address[0]}:{address[1]}" if isinstance(address, tuple) and len(address) >= 2
                else str(address))
        decoder = LineDecoder(self.settings, self.profiles)
        self.connections += 1
        log.info("source %s: connection from %s", self.name, peer)
        buffer = b""
        number = 0
        skipping = False   # inside an over-long line, dropping bytes up to its newline
        limit = self.settings.max_line_bytes
        idle_s = self.settings.idle_timeout_s
        deadline = time.monotonic() + idle_s   # for the next complete line
        try:
            while True:
                try:
                    chunk = await asyncio.wait_for(reader.read(READ_CHUNK),
                                                   max(deadline - time.monotonic(), 0.0))
                except TimeoutError:
                    log.info("source %s: %s sent no complete line for %g s; closing",
                             self.name, peer, idle_s)
                    break
                if not chunk:
                    break
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                if lines:
                    deadline = time.monotonic() + idle_s
                for raw in lines:
                    number += 1
                    if skipping:
                        skipping = False
                        continue
                    self._line(peer, number, raw, decoder)
                if len(buffer) > limit and not skipping:
                    self.status.error(f"{peer} line {number + 1}: longer than {limit} "
                                      "bytes (skipped)")
                    skipping = True
                if skipping:
                    buffer = b""
            if buffer and not skipping:
                self._line(peer, number + 1, buffer, decoder)
        except (ConnectionError, OSError) as exc:
            log.info("source %s: connection from %s lost: %s", self.name, peer, exc)
        finally:
            self.connections -= 1
            log.info("source %s: %s closed the connection", self.name, peer)
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    def _line(self, peer: str, number: int, raw: bytes, decoder: LineDecoder) -> None:
        text = raw.decode("utf-8", errors="replace").strip()
        if not text:
            return
        if len(raw) > self.settings.max_line_bytes:
            self.status.error(f"{peer} line {number}: longer than "
                              f"{self.settings.max_line_bytes} bytes (skipped)")
            return
        now_ns = time.time_ns()
        decoded = self._in_time(decoder.decode(text, now_ns), now_ns)
        for problem in decoded.problems:
            self.status.error(f"{peer} line {number}: {problem}")
        for record in decoded.records:
            self._pending.setdefault(record.measurement, _Pending()).records.append(record)
            self.records += 1

    def _in_time(self, decoded: Decoded, now_ns: int) -> Decoded:
        """``decoded`` without the records ahead of the clock, each one a problem."""
        latest = limit_ns(now_ns, self.max_future_s)
        kept = Decoded(problems=list(decoded.problems))
        for record in decoded.records:
            if record.time_ns > latest:
                kept.problems.append(ahead_reason(record.time_ns, now_ns, self.max_future_s))
            else:
                kept.records.append(record)
        return kept

    def _flush(self, sink: SampleSink) -> None:
        pending, self._pending = self._pending, {}
        for measurement, waiting in pending.items():
            if waiting.records:
                sink.put(waiting.batch(measurement))   # the agent's sink counts it
