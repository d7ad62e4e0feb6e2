"""Synthetic per-second rows (``StatsRows``) of the ps100 panel profile, for writing straight
into a store without the reducer."""

from __future__ import annotations

import numpy as np

from sunarchive.model import StatsRows


def stats_rows(measurement: str, start_s: int, seconds: int, series: int = 1,
               power_w: float = 90.0, power_spread_w: float = 10.0) -> StatsRows:
    """``seconds`` rows from ``start_s`` (UTC epoch s) for series ids 1..``series``: 40 V,
    ``power_w`` W (min/max ± ``power_spread_w``), the energy of that power over 1 s."""
    times = np.repeat(np.arange(start_s, start_s + seconds, dtype=np.int64), series)
    ids = np.tile(np.arange(1, series + 1, dtype=np.int32), seconds)
    n = len(times)
    return StatsRows(measurement, times, ids, {
        "voltage_avg": np.full(n, 40.0), "voltage_min": np.full(n, 39.0),
        "voltage_max": np.full(n, 41.0), "voltage_stddev": np.full(n, 0.5),
        "voltage_count": np.full(n, 10.0), "power_avg": np.full(n, power_w),
        "power_min": np.full(n, power_w - power_spread_w),
        "power_max": np.full(n, power_w + power_spread_w),
        "power_stddev": np.full(n, 1.0), "power_count": np.full(n, 10.0),
        "energy_wh": np.full(n, power_w / 3600), "sample_count": np.full(n, 10.0),
        "covered_s": np.ones(n)})
