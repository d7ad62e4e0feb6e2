"""A deterministic simulator of PS100-class 100 W panels read at 10 Hz by INA226 sensors.

Physics (per panel):

* clear-sky irradiance from pvlib (Ineichen, bundled Linke turbidity, no network), transposed
  to the plane of array (Hay-Davies, albedo 0.2) on a one-minute grid and interpolated
  linearly to the sample times; POA irradiance in W/m²;
* passing clouds (seeded, a pure function of seed and simulated time) that attenuate the
  irradiance to 20–40 % with edges of a few seconds; all panels see the same clouds with a small
  per-panel delay (0–2 s) and depth offset;
* air temperature [°C] with a seasonal and diurnal curve (clear days warmer), wind 2 m/s, cell
  temperature [°C] from the Faiman model (pvlib's coefficients) smoothed with a first-order thermal
  time constant of 5 minutes;
* pvwatts-style DC power [W] (100 W STC, −0.44 %/°C, 3 % losses, ±2 % per-panel mismatch),
  maximum-power voltage [V] from Vmp 27.25 V with −0.5 %/°C and a log-irradiance term, current
  [A] = power / voltage. Night gives 0 W, 0 A and a few mV of noise floored at 0 V.

Sensor: Gaussian noise, then INA226 quantisation — bus voltage 1.25 mV/LSB (clipped to the
40.96 V register range), current 0.125 mA/LSB (calibration 4096 with a 10 mΩ shunt, full scale
4.096 A, enough for the 3.99 A short-circuit current of the panel), power register
``floor(current_reg × bus_reg / 20000)`` at 25 × the current LSB = 3.125 mW/LSB; temperature
quantised to 0.0625 °C. Samples sit on the nominal grid (100 ms at 10 Hz) plus a small
non-negative read latency (≈ 0.5–8 ms); a dropped sample has no row.

Everything random is derived from the seed and absolute simulated time (one RNG stream per
panel and UTC hour), so :meth:`PanelSimulator.generate` returns identical rows however a span is
split into calls.

pvlib runs in a short-lived child process once per eight simulated days (see
:mod:`sunarchive.sources.clearsky`), so a long-running collector does not carry pvlib, pandas
and scipy in memory; ``SimulatorConfig.isolate_pvlib=False`` runs it in-process.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

from sunarchive.model import (
    NS_PER_S,
    ConfigError,
    FloatArray,
    IntArray,
    SampleBatch,
    require_aware,
)
from sunarchive.pipeline.accumulator import QueueFullError
from sunarchive.sources.base import SampleSink
from sunarchive.sources.clearsky import (
    Site,
    faiman_cell_temperature,
    poa_minutes,
    poa_minutes_isolated,
)

__all__ = ["PanelSimulator", "SimulatorConfig", "SimulatorSource"]

# --- INA226 and temperature sensor resolution ---------------------------------------------
BUS_VOLTAGE_LSB_V = 0.00125
"""INA226 bus voltage LSB [V]."""
CURRENT_LSB_A = 0.000125
"""Calibrated INA226 current LSB [A] (full scale 32767 LSB = 4.096 A)."""
POWER_LSB_W = 25 * CURRENT_LSB_A
"""INA226 power LSB [W] (25 × current LSB)."""
TEMPERATURE_LSB_C = 0.0625
"""Temperature sensor resolution [°C]."""
_REG_MAX = 32767

# --- PS100 panel figures ------------------------------------------------------------------
_P_STC_W = 27.25 * 3.67          # ≈ 100 W
_VMP_STC_V = 27.25
_GAMMA_P = -0.0044               # power temperature coefficient [1/°C]
_BETA_VMP = -0.0050              # Vmp temperature coefficient [1/°C]
_VMP_LOG_G_V = 1.0               # Vmp change per e-fold of irradiance at 25 °C [V]
_SYSTEM_LOSS = 0.97              # wiring, soiling, MPPT tracking
_LOW_LIGHT_G = 2.0               # [W/m²] below this the voltage collapses towards 0
_WIND_M_S = 2.0
_THERMAL_TAU_S = 300.0

# --- time structure -----------------------------------------------------------------------
_HOUR_S = 3600
_DAY_S = 86_400
_COARSE_STEP_S = 60
_CLOUD_WINDOW_S = 600
_CLOUD_MAX_DURATION_S = 400.0    # < _CLOUD_WINDOW_S: clouds spill into one window at most
_THERMAL_WARMUP_S = 3600         # filter start-up error decays to e^-12 before the block
_THERMAL_BIN_S = 10
_PREFETCH_DAYS = 8
_U64 = (1 << 64) - 1

# RNG stream identifiers (second entropy word), so the streams never overlap.
_S_NOISE, _S_DAY, _S_HOUR, _S_CLOUDS, _S_PANEL = 1, 2, 3, 4, 5


def _key(*words: int) -> list[int]:
    """SeedSequence entropy from possibly negative integers."""
    return [w & _U64 for w in words]


@dataclass(frozen=True)
class SimulatorConfig:
    """Simulator settings.

    ``panels`` panels tagged ``panel_1`` … ``panel_N``; ``sample_rate_hz`` samples per second per
    panel; ``latitude``/``longitude`` in degrees (north/east positive); ``tilt_deg`` from
    horizontal and ``azimuth_deg`` clockwise from north (180 = south); ``drop_probability`` is
    the chance [0, 1) that a sample is lost.
    """

    panels: int = 4
    seed: int = 42
    sample_rate_hz: float = 10.0
    latitude: float = 52.52
    longitude: float = 13.405
    tilt_deg: float = 35.0
    azimuth_deg: float = 180.0
    drop_probability: float = 0.001
    measurement: str = "ps100_readings"
    isolate_pvlib: bool = True

    def __post_init__(self) -> None:
        if self.panels < 1:
            raise ConfigError(f"simulator: panels must be at least 1, got {self.panels}")
        if not (0.0 < self.sample_rate_hz <= 1000.0) or round(_HOUR_S * self.sample_rate_hz) < 1:
            raise ConfigError(
                f"simulator: sample_rate_hz must be in (0, 1000], got {self.sample_rate_hz}")
        if not 0.0 <= self.drop_probability < 1.0:
            raise ConfigError("simulator: drop_probability must be in [0, 1), got "
                              f"{self.drop_probability}")
        if not -90.0 <= self.latitude <= 90.0:
            raise ConfigError(f"simulator: latitude must be in [-90, 90], got {self.latitude}")


@dataclass(frozen=True)
class _Clouds:
    """Clouds starting in one 10-minute window; times in absolute epoch seconds."""

    start: FloatArray
    duration: FloatArray
    edge: FloatArray
    depth: FloatArray       # transmission inside the cloud (0.2–0.4)
    ripple_period: FloatArray
    ripple_phase: FloatArray


@dataclass(frozen=True)
class _Block:
    """All surviving samples of one UTC hour, sorted by (time, panel)."""

    time_ns: IntArray
    panel: npt.NDArray[np.int32]
    voltage: FloatArray
    current: FloatArray
    power: FloatArray
    temperature: FloatArray


class PanelSimulator:
    """Generates :class:`SampleBatch` rows of simulated panels for any time span.

    :meth:`generate` is deterministic: the same config and span give the same rows, and a span
    split into several calls gives the concatenation of the same rows. Safe to call from several
    threads. Work is done per UTC hour (about 25 ms per panel-hour) and the last few hours are
    cached, so many short calls are cheap.
    """

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.tag_sets: list[tuple[str, ...]] = [(f"panel_{i + 1}",) for i in range(config.panels)]
        self._slots = round(_HOUR_S * config.sample_rate_hz)
        period_ns = _HOUR_S * NS_PER_S // self._slots
        # read latency stays well below the sample period so blocks never overlap in time
        self._latency_max_ns = min(8_000_000, period_ns // 4)
        self._site = Site(config.latitude, config.longitude, config.tilt_deg,
                          config.azimuth_deg)
        self._lock = threading.Lock()
        self._blocks: OrderedDict[int, _Block] = OrderedDict()
        self._days: OrderedDict[int, tuple[FloatArray, FloatArray]] = OrderedDict()
        self._poa_days: OrderedDict[int, FloatArray] = OrderedDict()
        self._clouds: OrderedDict[int, _Clouds] = OrderedDict()
        self._panel_params = [self._panel(p) for p in range(config.panels)]

    # -- public ----------------------------------------------------------------------------

    def generate(self, start_ns: int, end_ns: int) -> SampleBatch:
        """Samples with ``start_ns <= time_ns < end_ns`` (UTC epoch ns), sorted by time, panel.

        Fields: ``voltage`` [V], ``current`` [A], ``power`` [W], ``temperature`` [°C].
        """
        start_ns, end_ns = int(start_ns), int(end_ns)
        parts: list[_Block] = []
        if end_ns > start_ns:
            hour_ns = _HOUR_S * NS_PER_S
            for h in range(start_ns // hour_ns, (end_ns - 1) // hour_ns + 1):
                block = self._block(h)
                lo, hi = np.searchsorted(block.time_ns, [start_ns, end_ns], side="left")
                if hi > lo:
                    parts.append(_Block(block.time_ns[lo:hi], block.panel[lo:hi],
                                        block.voltage[lo:hi], block.current[lo:hi],
                                        block.power[lo:hi], block.temperature[lo:hi]))

        def cat(arrays: list[FloatArray]) -> FloatArray:
            return np.concatenate(arrays) if arrays else np.empty(0, np.float64)

        return SampleBatch(
            measurement=self.config.measurement,
            tag_sets=list(self.tag_sets),
            tag_index=(np.concatenate([b.panel for b in parts]) if parts
                       else np.empty(0, np.int32)),
            time_ns=(np.concatenate([b.time_ns for b in parts]) if parts
                     else np.empty(0, np.int64)),
            fields={
                "voltage": cat([b.voltage for b in parts]),
                "current": cat([b.current for b in parts]),
                "power": cat([b.power for b in parts]),
                "temperature": cat([b.temperature for b in parts]),
            },
        )

    # -- per-panel constants ---------------------------------------------------------------

    def _panel(self, p: int) -> tuple[float, float, float, float, float]:
        """(power factor, voltage factor, temperature offset °C, cloud delay s, depth offset)."""
        rng = np.random.default_rng(_key(self.config.seed, _S_PANEL, p))
        return (float(rng.uniform(0.98, 1.02)), float(rng.uniform(0.99, 1.01)),
                float(rng.uniform(-1.0, 1.0)), float(rng.uniform(0.0, 2.0)),
                float(rng.uniform(-0.05, 0.05)))

    # -- weather ---------------------------------------------------------------------------

    def _day_cloudiness(self, day: int) -> float:
        """0 for a clear day, else 0.15–1 (how cloudy the UTC day is)."""
        rng = np.random.default_rng(_key(self.config.seed, _S_DAY, day))
        clear = rng.random() < 0.3
        value = float(rng.uniform(0.15, 1.0))
        return 0.0 if clear else value

    def _hour_cover(self, hour: int) -> float:
        """Fraction of time the sun is behind a cloud during a UTC hour (0–0.85)."""
        base = self._day_cloudiness(math.floor(hour * _HOUR_S / _DAY_S))
        if base == 0.0:
            return 0.0
        rng = np.random.default_rng(_key(self.config.seed, _S_HOUR, hour))
        return float(min(0.85, 0.75 * base * rng.uniform(0.4, 1.4)))

    def _window_clouds(self, k: int) -> _Clouds:
        """Clouds whose start lies in ``[k*600, (k+1)*600)`` s (cached)."""
        cached = self._clouds.get(k)
        if cached is not None:
            return cached
        cover = self._hour_cover(k * _CLOUD_WINDOW_S // _HOUR_S)
        rng = np.random.default_rng(_key(self.config.seed, _S_CLOUDS, k))
        mean_duration = 40.0
        n = int(rng.poisson(cover * _CLOUD_WINDOW_S / mean_duration)) if cover > 0 else 0
        edge = rng.uniform(1.5, 6.0, n)
        duration = np.clip(rng.lognormal(math.log(30.0), 0.8, n), 2 * edge + 2.0,
                           _CLOUD_MAX_DURATION_S)
        clouds = _Clouds(
            start=k * _CLOUD_WINDOW_S + rng.uniform(0.0, _CLOUD_WINDOW_S, n),
            duration=duration,
            edge=edge,
            depth=rng.uniform(0.2, 0.4, n),
            ripple_period=rng.uniform(8.0, 40.0, n),
            ripple_phase=rng.uniform(0.0, 2 * math.pi, n),
        )
        self._clouds[k] = clouds
        while len(self._clouds) > 64:
            self._clouds.popitem(last=False)
        return clouds

    def _transmission(self, t_s: FloatArray, delay_s: float, depth_offset: float) -> FloatArray:
        """Cloud transmission (0.1–1) at sorted absolute times ``t_s`` [s] for one panel."""
        tt = t_s - delay_s
        out = np.ones_like(tt)
        if len(tt) == 0:
            return out
        first = math.floor(float(tt[0]) / _CLOUD_WINDOW_S) - 1
        last = math.floor(float(tt[-1]) / _CLOUD_WINDOW_S)
        for k in range(first, last + 1):
            c = self._window_clouds(k)
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

    # -- coarse clear-sky grid -------------------------------------------------------------

    def _day_grid(self, day: int) -> tuple[FloatArray, FloatArray]:
        """(clear-sky POA irradiance [W/m²], air temperature [°C]) each minute of a UTC day."""
        cached = self._days.get(day)
        if cached is not None:
            return cached
        cfg = self.config
        seconds = day * _DAY_S + np.arange(0, _DAY_S, _COARSE_STEP_S, dtype=np.int64)
        g = self._poa(day)

        # air temperature: seasonal mean, diurnal swing peaking at 14:30 solar time; clear
        # days swing more and run warmer. Day parameters blend linearly over the day.
        frac = (seconds - day * _DAY_S) / _DAY_S
        c = (1 - frac) * self._day_cloudiness(day) + frac * self._day_cloudiness(day + 1)
        day_of_year = datetime.fromtimestamp(day * _DAY_S, UTC).timetuple().tm_yday
        doy = day_of_year + frac
        season = np.sin(2 * np.pi * (doy - 105.0) / 365.25)    # +1 late July, −1 January
        mean = 10.0 + 9.0 * season + (1 - c) * (2.5 + 1.5 * season)
        amplitude = 4.0 + 5.0 * (1 - c)
        solar_hour = frac * 24.0 + cfg.longitude / 15.0
        t_air = mean + amplitude * np.cos(2 * np.pi * (solar_hour - 14.5) / 24.0)
        result = (g, np.asarray(t_air, np.float64))
        self._days[day] = result
        while len(self._days) > 8:
            self._days.popitem(last=False)
        return result

    def _poa(self, day: int) -> FloatArray:
        """Clear-sky POA [W/m²] per minute of a UTC day; fetched eight days at a time."""
        cached = self._poa_days.get(day)
        if cached is not None:
            return cached
        days = list(range(day, day + _PREFETCH_DAYS))
        compute = poa_minutes_isolated if self.config.isolate_pvlib else poa_minutes
        self._poa_days.update(compute(self._site, days))
        while len(self._poa_days) > 4 * _PREFETCH_DAYS:
            self._poa_days.popitem(last=False)
        return self._poa_days[day]

    def _coarse(self, first_s: int, last_s: int) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Minute grid (absolute s), POA [W/m²] and air temperature [°C] covering a range."""
        days = range(first_s // _DAY_S, last_s // _DAY_S + 2)
        grids = [self._day_grid(d) for d in days]
        t = np.arange(days[0] * _DAY_S, (days[-1] + 1) * _DAY_S, _COARSE_STEP_S,
                      dtype=np.float64)
        return (t, np.concatenate([g[0] for g in grids]),
                np.concatenate([g[1] for g in grids]))

    # -- one hour of samples ---------------------------------------------------------------

    def _block(self, h: int) -> _Block:
        with self._lock:
            cached = self._blocks.get(h)
            if cached is not None:
                self._blocks.move_to_end(h)
                return cached
            block = self._compute_block(h)
            self._blocks[h] = block
            while len(self._blocks) > 2:
                self._blocks.popitem(last=False)
            return block

    def _compute_block(self, h: int) -> _Block:
        cfg = self.config
        base_s = h * _HOUR_S
        base_ns = base_s * NS_PER_S
        n = self._slots
        nominal_ns = base_ns + (np.arange(n, dtype=np.int64) * (_HOUR_S * NS_PER_S)) // n
        grid_t, grid_g, grid_air = self._coarse(base_s - _THERMAL_WARMUP_S - 1,
                                                base_s + _HOUR_S + 1)
        # thermal grid: 1 s steps from the warm-up start to the block end, averaged to 10 s bins
        t1 = (base_s - _THERMAL_WARMUP_S) + np.arange(_THERMAL_WARMUP_S + _HOUR_S,
                                                      dtype=np.float64) + 0.5
        g1_clear = np.interp(t1, grid_t, grid_g)
        air1 = np.interp(t1, grid_t, grid_air)
        bins = len(t1) // _THERMAL_BIN_S
        bin_end = (base_s - _THERMAL_WARMUP_S) + _THERMAL_BIN_S * np.arange(1, bins + 1,
                                                                           dtype=np.float64)
        alpha = 1.0 - math.exp(-_THERMAL_BIN_S / _THERMAL_TAU_S)

        times: list[IntArray] = []
        panels: list[npt.NDArray[np.int32]] = []
        fields: list[tuple[FloatArray, FloatArray, FloatArray, FloatArray]] = []
        for p, (pf, vf, t_off, delay, depth_off) in enumerate(self._panel_params):
            rng = np.random.default_rng(_key(cfg.seed, _S_NOISE, p, h))
            latency = np.minimum(500_000 + rng.exponential(1_500_000.0, n),
                                 self._latency_max_ns).astype(np.int64)
            noise_v = rng.standard_normal(n)
            noise_i = rng.standard_normal(n)
            noise_t = rng.standard_normal(n)
            keep = rng.random(n) >= cfg.drop_probability
            t_ns = nominal_ns + latency
            t_s = base_s + (t_ns - base_ns).astype(np.float64) / NS_PER_S

            # cell temperature: Faiman steady state, first-order lag on 10 s bins
            g1 = g1_clear * self._transmission(t1, delay, depth_off)
            steady = faiman_cell_temperature(g1, air1, _WIND_M_S)
            steady_bins = steady[: bins * _THERMAL_BIN_S].reshape(bins, _THERMAL_BIN_S).mean(1)
            cell_bins = _first_order_lag(steady_bins, alpha)
            t_cell = np.interp(t_s, bin_end, cell_bins) + t_off

            # electrical model at maximum power
            g = np.interp(t_s, grid_t, grid_g) * self._transmission(t_s, delay, depth_off)
            dt = t_cell - 25.0
            power = _P_STC_W * _SYSTEM_LOSS * pf * (g / 1000.0) * (1.0 + _GAMMA_P * dt)
            log_term = (_VMP_LOG_G_V * (t_cell + 273.15) / 298.15
                        * np.log(np.maximum(g, 1e-3) / 1000.0))
            voltage = ((_VMP_STC_V * (1.0 + _BETA_VMP * dt) + log_term) * vf
                       * g / (g + _LOW_LIGHT_G))
            voltage = np.maximum(voltage, 0.0)
            current = np.divide(power, voltage, out=np.zeros_like(power), where=voltage > 0.01)
            current = np.where(voltage > 0.01, current, 0.0)

            # sensor noise and INA226 quantisation
            v_meas = voltage + noise_v * (0.003 + 0.0004 * voltage)
            i_meas = current + noise_i * np.where(current > 0, 0.0003 + 0.001 * current, 0.0)
            v_reg = np.clip(np.rint(v_meas / BUS_VOLTAGE_LSB_V), 0, _REG_MAX).astype(np.int64)
            i_reg = np.clip(np.rint(i_meas / CURRENT_LSB_A), 0, _REG_MAX).astype(np.int64)
            p_reg = (i_reg * v_reg) // 20000
            temp_q = np.rint((t_cell + 0.03 * noise_t) / TEMPERATURE_LSB_C) * TEMPERATURE_LSB_C

            times.append(t_ns[keep])
            panels.append(np.full(int(keep.sum()), p, np.int32))
            fields.append(((v_reg[keep] * BUS_VOLTAGE_LSB_V).astype(np.float64),
                           (i_reg[keep] * CURRENT_LSB_A).astype(np.float64),
                           (p_reg[keep] * POWER_LSB_W).astype(np.float64),
                           temp_q[keep].astype(np.float64)))

        all_t = np.concatenate(times)
        all_p = np.concatenate(panels)
        order = np.lexsort((all_p, all_t))
        return _Block(
            time_ns=all_t[order],
            panel=all_p[order],
            voltage=np.concatenate([f[0] for f in fields])[order],
            current=np.concatenate([f[1] for f in fields])[order],
            power=np.concatenate([f[2] for f in fields])[order],
            temperature=np.concatenate([f[3] for f in fields])[order],
        )


def _first_order_lag(x: FloatArray, alpha: float) -> FloatArray:
    """Exponential smoothing ``y[n] = y[n-1] + alpha (x[n] - y[n-1])`` started at ``x[0]``."""
    out = np.empty_like(x)
    y = float(x[0]) if len(x) else 0.0
    keep = 1.0 - alpha
    for i, v in enumerate(x.tolist()):
        y = keep * y + alpha * v
        out[i] = y
    return out


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
