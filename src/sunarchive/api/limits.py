"""What one write may do to the store: the limits the write endpoints and ``sunarchive
import`` of line protocol both apply (settings of the same names; docs/api.md). Apart from the
API's context so an import does not load the web framework."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WriteLimits:
    """What one write may do to the store (settings of the same names; docs/api.md)."""

    max_future_s: float = 300.0
    """Points stamped further ahead of the clock (in seconds) are refused."""
    max_measurements: int = 1000
    """A write cannot create a measurement beyond this many."""
    max_tags_per_series: int = 64
    """Tags a point (and a new measurement) may have."""
    max_fields_per_measurement: int = 256
    """Fields a new measurement may have."""
