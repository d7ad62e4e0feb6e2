"""The ``ina2xx`` source: every panel's chip read ``sample_rate_hz`` times a second.

Scheduling is drift-free: round *k* is due at ``start + k / sample_rate_hz`` on the
monotonic clock, whatever each round took; a round that could not start in time is skipped
(counted in :attr:`Ina2xxSource.skipped_rounds`) rather than run in a burst. Each reading is
stamped with the wall clock (UTC ns) when it was taken. Readings are collected for
``batch_interval_s`` and handed over as one ``ps100_readings`` batch for all panels.

Failures: a panel that cannot be read gives no sample for that round (missing, not zero)
and is reported once per streak. After ``offline_after_failures`` rounds in which no panel
answered, the source reports itself offline, closes the bus and opens it again with capped
backoff. A chip that is not what the config says stops the source.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from sunarchive.model import SampleBatch
from sunarchive.sources.ina2xx.driver import I2CBus, InaSensor, Reading
from sunarchive.sources.running import Backoff, SourceContext, SourceError, SourceStatus

if TYPE_CHECKING:
    from sunarchive.sources.base import SampleSink
    from sunarchive.sources.ina2xx.config import Ina2xxSettings

MEASUREMENT = "ps100_readings"
BusFactory = Callable[[], I2CBus]


def open_smbus(bus: int) -> I2CBus:
    """The real bus, ``/dev/i2c-<bus>``."""
    from smbus2 import SMBus

    return SMBus(bus)


class _Pending:
    """Readings collected for the next batch (columnar lists)."""

    def __init__(self, panel_ids: list[str]) -> None:
        self.tag_sets = [(p,) for p in panel_ids]
        self.clear()

    def clear(self) -> None:
        self.index: list[int] = []
        self.time_ns: list[int] = []
        self.rows: list[Reading] = []

    def add(self, panel: int, time_ns: int, reading: Reading) -> None:
        self.index.append(panel)
        self.time_ns.append(time_ns)
        self.rows.append(reading)

    def take(self) -> SampleBatch | None:
        if not self.rows:
            return None
        columns = np.array(self.rows, np.float64).reshape(-1, 3)
        batch = SampleBatch(MEASUREMENT, list(self.tag_sets), np.array(self.index, np.int32),
                            np.array(self.time_ns, np.int64),
                            {"voltage": columns[:, 0].copy(), "current": columns[:, 1].copy(),
                             "power": columns[:, 2].copy()})
        self.clear()
        return batch


class Ina2xxSource:
    """All panels of one I2C bus."""

    def __init__(self, settings: Ina2xxSettings, context: SourceContext,
                 bus_factory: BusFactory) -> None:
        self.name = settings.name
        self.settings = settings
        self.status = SourceStatus(settings.name, "ina2xx", context.events, MEASUREMENT)
        self.skipped_rounds = 0
        self._bus_factory = bus_factory
        self._calibrations = [p.calibration() for p in settings.panels]
        self._backoff = Backoff(settings.backoff_min_s, settings.backoff_max_s)

    def run(self, sink: SampleSink, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                bus: I2CBus | None = None
                try:
                    bus = self._bus_factory()
                    sensors = self._setup(bus)
                except OSError as exc:
                    self.status.error(f"bus {self.settings.bus}: {exc}")
                    self.status.offline(str(exc))
                    _close(bus)
                    if self._backoff.wait(stop):
                        break
                    continue
                except SourceError as exc:
                    _close(bus)
                    self.status.failed(str(exc))
                    raise
                self._backoff.reset()
                try:
                    self._sample(sensors, sink, stop)
                finally:
                    _close(bus)
                if not stop.is_set() and self._backoff.wait(stop):
                    break
        finally:
            self.status.stopped()

    def _setup(self, bus: I2CBus) -> list[InaSensor]:
        sensors = [InaSensor(bus, p.address, cal, p.panel_id)
                   for p, cal in zip(self.settings.panels, self._calibrations, strict=True)]
        for sensor in sensors:
            sensor.setup()
        return sensors

    def _sample(self, sensors: list[InaSensor], sink: SampleSink,
                stop: threading.Event) -> None:
        """Read rounds until ``stop`` or until no panel answered for too long."""
        period = 1.0 / self.settings.sample_rate_hz
        pending = _Pending([s.panel_id for s in sensors])
        failing = [False] * len(sensors)
        dead_rounds = 0
        deadline = time.monotonic()
        next_flush = deadline + self.settings.batch_interval_s
        try:
            while True:
                late = time.monotonic() - deadline
                if late < 0 and stop.wait(-late):
                    return
                if stop.is_set():
                    return
                if late > period:
                    missed = int(late / period)
                    self.skipped_rounds += missed
                    deadline += missed * period
                answered = self._round(sensors, pending, failing)
                dead_rounds = 0 if answered else dead_rounds + 1
                if dead_rounds >= self.settings.offline_after_failures:
                    self.status.offline(f"no panel answered in {dead_rounds} rounds")
                    return
                deadline += period
                if time.monotonic() >= next_flush:
                    next_flush += self.settings.batch_interval_s
                    self._flush(pending, sink)
        finally:
            self._flush(pending, sink)

    def _round(self, sensors: list[InaSensor], pending: _Pending, failing: list[bool]) -> int:
        """Read every panel once; the number that answered."""
        answered = 0
        for k, sensor in enumerate(sensors):
            before = sensor.recalibrations
            try:
                reading = sensor.read()
            except OSError as exc:
                if not failing[k]:
                    self.status.error(f"panel {sensor.panel_id!r} at {sensor.address:#04x}: "
                                      f"{exc}")
                failing[k] = True
                continue
            failing[k] = False
            answered += 1
            pending.add(k, time.time_ns(), reading)
            if sensor.recalibrations != before:
                self.status.error(f"panel {sensor.panel_id!r}: the chip lost its calibration "
                                  "(power cycle?); written again, that current is missing")
        if answered:
            self.status.connected()
        return answered

    def _flush(self, pending: _Pending, sink: SampleSink) -> None:
        batch = pending.take()
        if batch is not None:
            sink.put(batch)


def _close(bus: object) -> None:
    close = getattr(bus, "close", None)
    if callable(close):
        with contextlib.suppress(OSError):
            close()
