"""Core data types: field kinds, sample batches and 1-second statistics rows.

Times inside the program are UTC. In the columnar types below they are integers:
``time_ns`` is nanoseconds since the Unix epoch (UTC) for raw samples, ``time_s`` is whole
seconds since the epoch (UTC) for the start of a statistics bucket. A naive ``datetime`` at an
API boundary is an error (see :func:`require_aware`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

import numpy as np
import numpy.typing as npt

# The errors live in sunarchive.errors; these names stay importable from here.
from sunarchive.errors import ConfigError as ConfigError
from sunarchive.errors import InputError as InputError
from sunarchive.errors import SunarchiveError as SunarchiveError
from sunarchive.errors import TransientStoreError as TransientStoreError

NS_PER_S = 1_000_000_000

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class FieldKind(StrEnum):
    """How a field is summarised and rolled up.

    * ``gauge`` — a level: mean, min, max, population stddev, count.
    * ``power`` — a gauge in watts whose time integral is energy in Wh.
    * ``counter`` — a monotonic total (lifetime or daily yield): first, last, increase
      (resets never produce negative or spiking increase), count.
    * ``state`` — an integer code: first, last, number of changes, min, max, count.
    * ``flag`` — a boolean: any true, number true, count.
    """

    GAUGE = "gauge"
    POWER = "power"
    COUNTER = "counter"
    STATE = "state"
    FLAG = "flag"


def require_aware(value: datetime, what: str = "time") -> datetime:
    """Return ``value`` converted to UTC; raise :class:`InputError` if it is naive."""
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise InputError(f"{what} {value.isoformat()} has no time zone offset; "
                         "give an explicit offset such as +00:00 or Z")
    return value.astimezone(UTC)


def to_epoch_s(value: datetime) -> int:
    """Whole seconds since the epoch (floor) for an aware datetime."""
    aware = require_aware(value)
    return int(np.floor(aware.timestamp()))


def from_epoch_s(seconds: float) -> datetime:
    """Aware UTC datetime for seconds since the epoch."""
    return datetime.fromtimestamp(seconds, tz=UTC)


@dataclass(frozen=True)
class SeriesKey:
    """A measurement plus its tag values, in the profile's tag order."""

    measurement: str
    tags: tuple[str, ...]


@dataclass
class SampleBatch:
    """Raw samples of one measurement, columnar.

    ``tag_sets`` lists the distinct tag-value tuples (profile tag order) used in this batch and
    ``tag_index[i]`` says which one sample ``i`` belongs to. ``time_ns`` is UTC epoch
    nanoseconds. ``fields`` maps a field name to float64 values; NaN means the field was not
    present in that sample (missing is not zero). State and counter values are exact as float64
    up to 2**53; flags are 0.0 / 1.0.
    """

    measurement: str
    tag_sets: list[tuple[str, ...]]
    tag_index: npt.NDArray[np.int32]
    time_ns: IntArray
    fields: dict[str, FloatArray]

    def __post_init__(self) -> None:
        n = len(self.time_ns)
        if len(self.tag_index) != n:
            raise InputError(f"{self.measurement}: tag_index has {len(self.tag_index)} entries, "
                             f"time_ns has {n}")
        for name, values in self.fields.items():
            if len(values) != n:
                raise InputError(f"{self.measurement}: field {name!r} has {len(values)} values, "
                                 f"time_ns has {n}")

    def __len__(self) -> int:
        return len(self.time_ns)

    @property
    def value_count(self) -> int:
        """Number of present (non-NaN) field values in the batch."""
        return int(sum(int(np.count_nonzero(~np.isnan(v))) for v in self.fields.values()))


@dataclass
class StatsRows:
    """Statistics rows of one measurement at one tier, columnar.

    ``time_s`` is the bucket start (UTC epoch seconds), ``series_id`` the compact series id and
    ``columns`` the statistics columns named as in the store (``voltage_avg``, ``energy_wh``,
    ``sample_count`` ...). Missing statistics are NaN (stored as NULL).
    """

    measurement: str
    time_s: IntArray
    series_id: npt.NDArray[np.int32]
    columns: dict[str, npt.NDArray[np.float64] | npt.NDArray[np.int64]] = field(
        default_factory=dict)

    def __len__(self) -> int:
        return len(self.time_s)

    @classmethod
    def empty(cls, measurement: str) -> StatsRows:
        return cls(measurement, np.empty(0, np.int64), np.empty(0, np.int32), {})


@dataclass(frozen=True)
class Event:
    """Something that happened: a gap in a series, a source going offline, a late sample."""

    time_s: float
    kind: str
    measurement: str
    message: str
    series_id: int | None = None
    end_s: float | None = None
