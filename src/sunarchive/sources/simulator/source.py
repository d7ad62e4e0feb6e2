"""The simulator as a source: simulated time advancing with the wall clock (or as fast as
possible), one batch of :class:`~sunarchive.sources.simulator.panels.PanelSimulator` rows per
chunk, waiting on a full queue."""

from __future__ import annotations

import math
import threading
import time
from datetime import UTC, datetime

from sunarchive.model import NS_PER_S, ConfigError, SampleBatch, require_aware
from sunarchive.pipeline.accumulator import QueueFullError
from sunarchive.sources.base import SampleSink
from sunarchive.sources.simulator.panels import PanelSimulator, SimulatorConfig


class SimulatorSource:
    """A :class:`~sunarchive.sources.base.Source` that replays :class:`PanelSimulator` output.

    Simulated time starts at ``start`` (aware datetime; ``None`` = now, UTC) and advances
    ``speed`` × the wall clock (``speed <= 0`` or ``math.inf``: as fast as possible, no
    sleeping). One batch covers ``chunk_s`` seconds of simulated time (chunk boundaries are
    aligned to multiples of ``chunk_s`` since the epoch); when it falls behind it sends bigger
    batches, up to 60 s of simulated time each. Stops when ``stop`` is set or after
    ``duration_s`` seconds of simulated time. Empty batches are not sent.
    """

    MAX_CHUNK_S = 60.0

    def __init__(self, config: SimulatorConfig, start: datetime | None = None,
                 speed: float = 1.0, chunk_s: float = 1.0,
                 duration_s: float | None = None, name: str | None = None) -> None:
        if start is None:
            start = datetime.now(UTC)
        self._start_ns = _datetime_ns(require_aware(start, "simulator start"))
        if not chunk_s > 0 or math.isinf(chunk_s):
            raise ConfigError(f"simulator: chunk_s must be a positive number, got {chunk_s}")
        if duration_s is not None and not duration_s >= 0:
            raise ConfigError(f"simulator: duration_s must be >= 0, got {duration_s}")
        if math.isnan(speed):
            raise ConfigError("simulator: speed must be a number")
        self.name = name or f"simulator:{config.measurement}"
        self.simulator = PanelSimulator(config)
        self.speed = speed
        self._chunk_ns = max(1, round(chunk_s * NS_PER_S))
        self._max_chunk_ns = max(self._chunk_ns, round(self.MAX_CHUNK_S * NS_PER_S))
        self._end_ns = (None if duration_s is None
                        else self._start_ns + round(duration_s * NS_PER_S))
        # warm up (clear-sky grid, first hour) now, so the first batch is on time
        self.simulator.generate(self._start_ns, self._start_ns + 1)

    def run(self, sink: SampleSink, stop: threading.Event) -> None:
        """Put batches into ``sink`` until ``stop`` is set or ``duration_s`` has been covered."""
        fast = self.speed <= 0 or math.isinf(self.speed)
        chunk, end = self._chunk_ns, self._end_ns
        pos = self._start_ns
        wall0 = time.monotonic()
        while not stop.is_set() and (end is None or pos < end):
            # the next aligned chunk boundary after pos
            target = (pos // chunk + 1) * chunk
            if fast:
                target = max(target, (pos + self._max_chunk_ns) // chunk * chunk)
            else:
                available = self._start_ns + int((time.monotonic() - wall0) * self.speed
                                                 * NS_PER_S)
                if available < target:
                    wait_s = (target - available) / NS_PER_S / self.speed
                    if stop.wait(wait_s):
                        break
                    continue
                # behind: catch up with bigger chunks (aligned, at most MAX_CHUNK_S)
                behind = min(available, pos + self._max_chunk_ns) // chunk * chunk
                target = max(target, behind)
            if end is not None:
                target = min(target, end)
            batch = self.simulator.generate(pos, target)
            pos = target
            if len(batch):
                _put_waiting(sink, batch, stop)


def _put_waiting(sink: SampleSink, batch: SampleBatch, stop: threading.Event) -> None:
    """Simulated data can wait: on a full queue, retry until accepted or stopped."""
    while True:
        try:
            sink.put(batch)
            return
        except QueueFullError:
            if stop.is_set():
                return


def _datetime_ns(value: datetime) -> int:
    """UTC epoch nanoseconds of an aware datetime (microsecond precision)."""
    delta = value - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * NS_PER_S + delta.microseconds * 1000
