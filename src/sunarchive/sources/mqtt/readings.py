"""What a decoded MQTT message gives (readings, an online/offline state) and how readings of
one device or channel are grouped into one sample.

MQTT devices such as OpenDTU publish one topic per value. A :class:`Grouper` collects the
values of one series (measurement + tags) into one open sample and closes it when a field
already in it arrives again (the next publish cycle) or when no value came for ``quiet_s``
seconds; so one 5-second cycle gives one row with all fields, not one row per field.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

import numpy as np

from sunarchive.model import InputError, SampleBatch

SeriesId = tuple[str, tuple[str, ...]]
"""A measurement and its tag values in the profile's tag order."""

_WORDS = {"true": 1.0, "false": 0.0, "on": 1.0, "off": 0.0}


@dataclass(frozen=True)
class Reading:
    """One value of one field of one series."""

    measurement: str
    tags: tuple[str, ...]
    field: str
    value: float


@dataclass
class Decoded:
    """What one message says: readings, and whether the device is now online (``None`` =
    the message says nothing about it)."""

    readings: list[Reading] = field(default_factory=list)
    online: bool | None = None


class Layout(Protocol):
    """Turns messages of one topic layout into readings (pure, keeps only learned state such
    as inverter names and reachability)."""

    def filters(self) -> list[str]:
        """MQTT topic filters to subscribe to."""

    def decode(self, topic: str, payload: bytes) -> Decoded:
        """Readings and state in one message; :class:`InputError` for a malformed payload."""


def parse_number(value: object, where: str) -> float:
    """A finite float from a payload or JSON value: numbers, ``true``/``false``, ``on``/``off``.
    Raises :class:`InputError` naming ``where`` (the topic) otherwise."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in _WORDS:
            return _WORDS[text.lower()]
        value = text
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InputError(f"{where}: {str(value)[:40]!r} is not a number") from None
    if not math.isfinite(number):
        raise InputError(f"{where}: {number} is not a finite number")
    return number


def scaled(value: float, scale: float) -> float:
    """``value × scale`` in decimal arithmetic, so 412.318 kWh × 1000 is exactly 412318 Wh
    (binary floats would give 412318.00000000006 and break integer counters)."""
    if scale == 1.0:
        return value
    return float(Decimal(repr(value)) * Decimal(repr(scale)))


@dataclass
class Sample:
    """One grouped sample: the values of one series at one time (UTC epoch ns)."""

    series: SeriesId
    time_ns: int
    values: dict[str, float]


@dataclass
class _Open:
    sample: Sample
    last_arrival_s: float


class Grouper:
    """Groups readings of one series into samples (see the module docstring)."""

    def __init__(self, quiet_s: float = 0.5) -> None:
        self.quiet_s = quiet_s
        self._open: dict[SeriesId, _Open] = {}

    def add(self, reading: Reading, time_ns: int, now_s: float) -> list[Sample]:
        """Add a reading that arrived at ``time_ns`` (UTC epoch ns) / ``now_s`` (monotonic
        seconds); returns the sample it closed, if any."""
        series = (reading.measurement, reading.tags)
        closed: list[Sample] = []
        current = self._open.get(series)
        if current is not None and reading.field in current.sample.values:
            closed.append(self._open.pop(series).sample)
            current = None
        if current is None:
            current = self._open[series] = _Open(Sample(series, time_ns, {}), now_s)
        current.sample.values[reading.field] = reading.value
        current.last_arrival_s = now_s
        return closed

    def due(self, now_s: float) -> list[Sample]:
        """Close and return the samples that got no value for ``quiet_s`` seconds."""
        quiet = [s for s, o in self._open.items() if now_s - o.last_arrival_s >= self.quiet_s]
        return [self._open.pop(series).sample for series in quiet]

    def drain(self) -> list[Sample]:
        """Close and return every open sample."""
        samples = [o.sample for o in self._open.values()]
        self._open.clear()
        return samples


def to_batches(samples: Iterable[Sample]) -> list[SampleBatch]:
    """One :class:`SampleBatch` per measurement, fields missing in a sample as NaN."""
    by_measurement: dict[str, list[Sample]] = {}
    for sample in samples:
        by_measurement.setdefault(sample.series[0], []).append(sample)
    batches = []
    for measurement, group in by_measurement.items():
        group.sort(key=lambda s: s.time_ns)
        tag_sets = list(dict.fromkeys(s.series[1] for s in group))
        index = {tags: i for i, tags in enumerate(tag_sets)}
        names = list(dict.fromkeys(name for s in group for name in s.values))
        fields = {name: np.array([s.values.get(name, np.nan) for s in group], np.float64)
                  for name in names}
        batches.append(SampleBatch(
            measurement, tag_sets, np.array([index[s.series[1]] for s in group], np.int32),
            np.array([s.time_ns for s in group], np.int64), fields))
    return batches
