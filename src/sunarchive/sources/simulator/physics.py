"""The physics of a simulated PS100-class 100 W panel, as pure functions of the seed and the
simulated time (UTC epoch seconds).

* clear-sky irradiance from pvlib (:mod:`sunarchive.sources.clearsky`: Ineichen, bundled Linke
  turbidity, no network), transposed to the plane of array (Hay-Davies, albedo 0.2) on a
  one-minute grid and interpolated linearly to the sample times; POA irradiance in W/m²;
* passing clouds (seeded, a pure function of seed and simulated time) that attenuate the
  irradiance to 20–40 % with edges of a few seconds; all panels see the same clouds with a small
  per-panel delay (0–2 s) and depth offset (:func:`window_clouds`, :func:`transmission`);
* air temperature [°C] with a seasonal and diurnal curve (clear days warmer), wind 2 m/s, cell
  temperature [°C] from the Faiman model (pvlib's coefficients) smoothed with a first-order
  thermal time constant of 5 minutes (:func:`air_temperature_c`, :func:`cell_temperature_c`);
* pvwatts-style DC power [W] (100 W STC, −0.44 %/°C, 3 % losses, ±2 % per-panel mismatch),
  maximum-power voltage [V] from Vmp 27.25 V with −0.5 %/°C and a log-irradiance term, current
  [A] = power / voltage. Night gives 0 W, 0 A (:func:`panel_at_mpp`).

Everything random comes from one RNG stream per (seed, stream id, index) (:func:`stream_key`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from sunarchive.model import FloatArray, IntArray
from sunarchive.sources.clearsky import faiman_cell_temperature

# --- PS100 panel figures ------------------------------------------------------------------
P_STC_W = 27.25 * 3.67
"""Power at standard test conditions [W] (Vmp × Imp ≈ 100 W)."""
VMP_STC_V = 27.25
"""Maximum-power voltage at standard test conditions [V]."""
GAMMA_P_PER_C = -0.0044
"""Power temperature coefficient [1/°C]."""
BETA_VMP_PER_C = -0.0050
"""Vmp temperature coefficient [1/°C]."""
VMP_LOG_G_V = 1.0
"""Vmp change per e-fold of irradiance at 25 °C [V]."""
SYSTEM_LOSS = 0.97
"""Fraction kept after wiring, soiling and MPPT tracking losses [1]."""
LOW_LIGHT_G_W_M2 = 2.0
"""Below this irradiance [W/m²] the voltage collapses towards 0."""
WIND_M_S = 2.0
"""Wind speed of the cell temperature model [m/s]."""
THERMAL_TAU_S = 300.0
"""Thermal time constant of the cell [s]."""
THERMAL_BIN_S = 10
"""The cell temperature is filtered on bins of this many seconds [s]."""

# --- weather ------------------------------------------------------------------------------
HOUR_S = 3600
DAY_S = 86_400
CLOUD_WINDOW_S = 600
"""Clouds are drawn per window of this many seconds [s]."""
CLOUD_MAX_DURATION_S = 400.0
"""Longest cloud [s]; < CLOUD_WINDOW_S, so clouds spill into one window at most."""

_U64 = (1 << 64) - 1
# RNG stream identifiers (second entropy word), so the streams never overlap.
S_NOISE, S_DAY, S_HOUR, S_CLOUDS, S_PANEL = 1, 2, 3, 4, 5


def stream_key(*words: int) -> list[int]:
    """SeedSequence entropy from possibly negative integers."""
    return [w & _U64 for w in words]


@dataclass(frozen=True)
class Clouds:
    """Clouds starting in one 10-minute window; times in absolute epoch seconds."""

    start: FloatArray
    duration: FloatArray
    edge: FloatArray
    depth: FloatArray       # transmission inside the cloud (0.2–0.4)
    ripple_period: FloatArray
    ripple_phase: FloatArray


def panel_variation(seed: int, p: int) -> tuple[float, float, float, float, float]:
    """Panel ``p``'s own figures: (power factor, voltage factor, temperature offset [°C],
    cloud delay [s], cloud depth offset)."""
    rng = np.random.default_rng(stream_key(seed, S_PANEL, p))
    return (float(rng.uniform(0.98, 1.02)), float(rng.uniform(0.99, 1.01)),
            float(rng.uniform(-1.0, 1.0)), float(rng.uniform(0.0, 2.0)),
            float(rng.uniform(-0.05, 0.05)))


def day_cloudiness(seed: int, day: int) -> float:
    """0 for a clear day, else 0.15–1 (how cloudy the UTC day is)."""
    rng = np.random.default_rng(stream_key(seed, S_DAY, day))
    clear = rng.random() < 0.3
    value = float(rng.uniform(0.15, 1.0))
    return 0.0 if clear else value


def hour_cover(seed: int, hour: int) -> float:
    """Fraction of time the sun is behind a cloud during a UTC hour (0–0.85)."""
    base = day_cloudiness(seed, math.floor(hour * HOUR_S / DAY_S))
    if base == 0.0:
        return 0.0
    rng = np.random.default_rng(stream_key(seed, S_HOUR, hour))
    return float(min(0.85, 0.75 * base * rng.uniform(0.4, 1.4)))


def window_clouds(seed: int, k: int) -> Clouds:
    """Clouds whose start lies in ``[k*600, (k+1)*600)`` s."""
    cover = hour_cover(seed, k * CLOUD_WINDOW_S // HOUR_S)
    rng = np.random.default_rng(stream_key(seed, S_CLOUDS, k))
    mean_duration = 40.0
    n = int(rng.poisson(cover * CLOUD_WINDOW_S / mean_duration)) if cover > 0 else 0
    edge = rng.uniform(1.5, 6.0, n)
    duration = np.clip(rng.lognormal(math.log(30.0), 0.8, n), 2 * edge + 2.0,
                       CLOUD_MAX_DURATION_S)
    return Clouds(
        start=k * CLOUD_WINDOW_S + rng.uniform(0.0, CLOUD_WINDOW_S, n),
        duration=duration,
        edge=edge,
        depth=rng.uniform(0.2, 0.4, n),
        ripple_period=rng.uniform(8.0, 40.0, n),
        ripple_phase=rng.uniform(0.0, 2 * math.pi, n),
    )


def transmission(t_s: FloatArray, delay_s: float, depth_offset: float,
                 clouds_in: Callable[[int], Clouds]) -> FloatArray:
    """Cloud transmission (0.1–1) at sorted absolute times ``t_s`` [s] for one panel whose
    clouds come ``delay_s`` [s] late; ``clouds_in(k)`` gives the clouds of window ``k``."""
    tt = t_s - delay_s
    out = np.ones_like(tt)
    if len(tt) == 0:
        return out
    first = math.floor(float(tt[0]) / CLOUD_WINDOW_S) - 1
    last = math.floor(float(tt[-1]) / CLOUD_WINDOW_S)
    for k in range(first, last + 1):
        c = clouds_in(k)
        if len(c.start) == 0:
            continue
        los = np.searchsorted(tt, c.start, side="left")
        his = np.searchsorted(tt, c.start + c.duration, side="left")
        for j in np.nonzero(his > los)[0]:
            lo, hi = int(los[j]), int(his[j])
            x = tt[lo:hi] - c.start[j]
            ramp = np.clip(np.minimum(x, c.duration[j] - x) / c.edge[j], 0.0, 1.0)
            shape = 0.5 - 0.5 * np.cos(np.pi * ramp)
            depth = c.depth[j] + 0.05 * np.sin(2 * np.pi * x / c.ripple_period[j]
                                               + c.ripple_phase[j])
            value = 1.0 - (1.0 - depth) * (1.0 + depth_offset) * shape
            np.minimum(out[lo:hi], value, out=out[lo:hi])
    return np.clip(out, 0.1, 1.0)


def air_temperature_c(seed: int, day: int, seconds: IntArray, longitude: float) -> FloatArray:
    """Air temperature [°C] at ``seconds`` (UTC epoch s) of a UTC day: seasonal mean, diurnal
    swing peaking at 14:30 solar time at ``longitude`` [degrees east]; clear days swing more
    and run warmer. Day parameters blend linearly over the day."""
    frac = (seconds - day * DAY_S) / DAY_S
    c = (1 - frac) * day_cloudiness(seed, day) + frac * day_cloudiness(seed, day + 1)
    day_of_year = datetime.fromtimestamp(day * DAY_S, UTC).timetuple().tm_yday
    doy = day_of_year + frac
    season = np.sin(2 * np.pi * (doy - 105.0) / 365.25)    # +1 late July, −1 January
    mean = 10.0 + 9.0 * season + (1 - c) * (2.5 + 1.5 * season)
    amplitude = 4.0 + 5.0 * (1 - c)
    solar_hour = frac * 24.0 + longitude / 15.0
    t_air = mean + amplitude * np.cos(2 * np.pi * (solar_hour - 14.5) / 24.0)
    return np.asarray(t_air, np.float64)


def cell_temperature_c(poa_w_m2: FloatArray, air_c: FloatArray, bin_end_s: FloatArray,
                       at_s: FloatArray) -> FloatArray:
    """Cell temperature [°C] at ``at_s`` [s]: the Faiman steady state of POA irradiance
    [W/m²] and air temperature [°C] given on a 1 s grid, averaged to ``THERMAL_BIN_S`` bins
    ending at ``bin_end_s`` [s] and lagged with the time constant ``THERMAL_TAU_S``."""
    bins = len(poa_w_m2) // THERMAL_BIN_S
    alpha = 1.0 - math.exp(-THERMAL_BIN_S / THERMAL_TAU_S)
    steady = faiman_cell_temperature(poa_w_m2, air_c, WIND_M_S)
    steady_bins = steady[: bins * THERMAL_BIN_S].reshape(bins, THERMAL_BIN_S).mean(1)
    cell_bins = first_order_lag(steady_bins, alpha)
    return np.interp(at_s, bin_end_s, cell_bins)


def first_order_lag(x: FloatArray, alpha: float) -> FloatArray:
    """Exponential smoothing ``y[n] = y[n-1] + alpha (x[n] - y[n-1])`` started at ``x[0]``."""
    out = np.empty_like(x)
    y = float(x[0]) if len(x) else 0.0
    keep = 1.0 - alpha
    for i, v in enumerate(x.tolist()):
        y = keep * y + alpha * v
        out[i] = y
    return out


def panel_at_mpp(poa_w_m2: FloatArray, cell_c: FloatArray, power_factor: float,
                 voltage_factor: float) -> tuple[FloatArray, FloatArray, FloatArray]:
    """The panel at its maximum power point for POA irradiance [W/m²] and cell temperature
    [°C]: (DC power [W], voltage [V], current [A]); current is 0 A where the voltage has
    collapsed (≤ 10 mV)."""
    dt = cell_c - 25.0
    power = (P_STC_W * SYSTEM_LOSS * power_factor * (poa_w_m2 / 1000.0)
             * (1.0 + GAMMA_P_PER_C * dt))
    log_term = (VMP_LOG_G_V * (cell_c + 273.15) / 298.15
                * np.log(np.maximum(poa_w_m2, 1e-3) / 1000.0))
    voltage = ((VMP_STC_V * (1.0 + BETA_VMP_PER_C * dt) + log_term) * voltage_factor
               * poa_w_m2 / (poa_w_m2 + LOW_LIGHT_G_W_M2))
    voltage = np.maximum(voltage, 0.0)
    current = np.divide(power, voltage, out=np.zeros_like(power), where=voltage > 0.01)
    current = np.where(voltage > 0.01, current, 0.0)
    return power, voltage, current
