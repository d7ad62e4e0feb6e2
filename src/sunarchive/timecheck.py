"""Points stamped too far ahead of the wall clock, refused at the edge of live inputs.

One point from next year would move its measurement's watermark a year ahead, and every
later sample of every series would arrive "too late". Live inputs (the HTTP write endpoints,
and the MQTT and TCP sources) therefore refuse points more than ``max_future_s`` seconds
(a setting) ahead of the clock; imports and the simulator follow their own clock and do not
call this.

* :func:`ahead_of_clock` — the mask of such points in an array of UTC epoch nanoseconds;
* :func:`ahead_reason` — one sentence for a refused point;
* :func:`drop_ahead` — a parsed line-protocol body without those points, each one added to
  its errors with its line number;
* :func:`split_batch` — a :class:`~sunarchive.model.SampleBatch` without them, and the count.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from sunarchive.lineprotocol import LineError, ParseResult
from sunarchive.model import SampleBatch

NS_PER_S = 1_000_000_000


def limit_ns(now_ns: int, max_future_s: float) -> int:
    """The latest acceptable timestamp (UTC epoch ns), clamped to int64."""
    return int(min(now_ns + max_future_s * NS_PER_S, 2**63 - 1))


def ahead_of_clock(time_ns: npt.NDArray[np.int64], now_ns: int,
                   max_future_s: float) -> npt.NDArray[np.bool_]:
    """True where a timestamp (UTC epoch ns) is more than ``max_future_s`` s after ``now_ns``."""
    return np.asarray(time_ns, np.int64) > limit_ns(now_ns, max_future_s)


def ahead_reason(time_ns: int, now_ns: int, max_future_s: float) -> str:
    """Why a point stamped ``time_ns`` is refused, with its time and how far ahead it is."""
    when = datetime.fromtimestamp(time_ns // NS_PER_S, UTC).isoformat()
    ahead_s = (time_ns - now_ns) / NS_PER_S
    return (f"timestamp {when} is {_duration(ahead_s)} ahead of the clock (more than "
            f"max_future_s = {max_future_s:g} s)")


def _duration(seconds: float) -> str:
    if seconds >= 86400:
        return f"{seconds / 86400:.1f} days"
    return f"{seconds:.0f} s"


def drop_ahead(parsed: ParseResult, now_ns: int, max_future_s: float) -> ParseResult:
    """``parsed`` without the points ahead of the clock; each becomes a :class:`LineError`
    (``line`` left empty: the caller may fill in the original text)."""
    errors = list(parsed.errors)
    measurements = {}
    dropped = 0
    for name, m in parsed.measurements.items():
        ahead = ahead_of_clock(m.time_ns, now_ns, max_future_s)
        if ahead.any():
            errors += [_ahead_error(int(n), int(t), now_ns, max_future_s)
                       for n, t in zip(m.line_numbers[ahead], m.time_ns[ahead], strict=True)]
            dropped += int(ahead.sum())
            m = m.take(~ahead)
        if len(m.time_ns):
            measurements[name] = m
    errors.sort(key=lambda e: e.line_number)
    return replace(parsed, measurements=measurements, errors=errors,
                   points=parsed.points - dropped)


def _ahead_error(line_number: int, time_ns: int, now_ns: int, max_future_s: float
                 ) -> LineError:
    reason = ahead_reason(time_ns, now_ns, max_future_s)
    return LineError(line_number, "", f"line {line_number}: {reason}")


def split_batch(batch: SampleBatch, now_ns: int,
                max_future_s: float) -> tuple[SampleBatch | None, int]:
    """``batch`` without its samples ahead of the clock (None if none is left), and how many
    were refused."""
    ahead = ahead_of_clock(batch.time_ns, now_ns, max_future_s)
    refused = int(ahead.sum())
    if not refused:
        return batch, 0
    keep: Any = ~ahead
    if not keep.any():
        return None, refused
    return SampleBatch(batch.measurement, batch.tag_sets, batch.tag_index[keep],
                       batch.time_ns[keep], {k: v[keep] for k, v in batch.fields.items()}), \
        refused
