"""The simulated panels: :class:`SimulatorConfig` and :class:`PanelSimulator`, which puts the
physics (:mod:`.physics`) and the sensors (:mod:`.sensor`) together one UTC hour at a time and
caches what it computed."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sunarchive.model import NS_PER_S, ConfigError, FloatArray, IntArray, SampleBatch
from sunarchive.sources.clearsky import Site, poa_minutes, poa_minutes_isolated
from sunarchive.sources.simulator.physics import (
    DAY_S,
    HOUR_S,
    S_NOISE,
    THERMAL_BIN_S,
    Clouds,
    air_temperature_c,
    cell_temperature_c,
    panel_at_mpp,
    panel_variation,
    stream_key,
    transmission,
    window_clouds,
)
from sunarchive.sources.simulator.sensor import read_ina226, read_latency_ns

_COARSE_STEP_S = 60
_THERMAL_WARMUP_S = 3600         # filter start-up error decays to e^-12 before the block
_PREFETCH_DAYS = 8


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
        if not (0.0 < self.sample_rate_hz <= 1000.0) or round(HOUR_S * self.sample_rate_hz) < 1:
            raise ConfigError(
                f"simulator: sample_rate_hz must be in (0, 1000], got {self.sample_rate_hz}")
        if not 0.0 <= self.drop_probability < 1.0:
            raise ConfigError("simulator: drop_probability must be in [0, 1), got "
                              f"{self.drop_probability}")
        if not -90.0 <= self.latitude <= 90.0:
            raise ConfigError(f"simulator: latitude must be in [-90, 90], got {self.latitude}")


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
        self._slots = round(HOUR_S * config.sample_rate_hz)
        period_ns = HOUR_S * NS_PER_S // self._slots
        # read latency stays well below the sample period so blocks never overlap in time
        self._latency_max_ns = min(8_000_000, period_ns // 4)
        self._site = Site(config.latitude, config.longitude, config.tilt_deg,
                          config.azimuth_deg)
        self._lock = threading.Lock()
        self._blocks: OrderedDict[int, _Block] = OrderedDict()
        self._days: OrderedDict[int, tuple[FloatArray, FloatArray]] = OrderedDict()
        self._poa_days: OrderedDict[int, FloatArray] = OrderedDict()
        self._clouds: OrderedDict[int, Clouds] = OrderedDict()
        self._panel_params = [panel_variation(config.seed, p) for p in range(config.panels)]

    # -- public ----------------------------------------------------------------------------

    def generate(self, start_ns: int, end_ns: int) -> SampleBatch:
        """Samples with ``start_ns <= time_ns < end_ns`` (UTC epoch ns), sorted by time, panel.

        Fields: ``voltage`` [V], ``current`` [A], ``power`` [W], ``temperature`` [°C].
        """
        start_ns, end_ns = int(start_ns), int(end_ns)
        parts: list[_Block] = []
        if end_ns > start_ns:
            hour_ns = HOUR_S * NS_PER_S
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

    # -- weather ---------------------------------------------------------------------------

    def _window_clouds(self, k: int) -> Clouds:
        """Clouds whose start lies in ``[k*600, (k+1)*600)`` s (cached)."""
        cached = self._clouds.get(k)
        if cached is not None:
            return cached
        clouds = window_clouds(self.config.seed, k)
        self._clouds[k] = clouds
        while len(self._clouds) > 64:
            self._clouds.popitem(last=False)
        return clouds

    def _transmission(self, t_s: FloatArray, delay_s: float, depth_offset: float) -> FloatArray:
        """Cloud transmission (0.1–1) at sorted absolute times ``t_s`` [s] for one panel."""
        return transmission(t_s, delay_s, depth_offset, self._window_clouds)

    # -- coarse clear-sky grid -------------------------------------------------------------

    def _day_grid(self, day: int) -> tuple[FloatArray, FloatArray]:
        """(clear-sky POA irradiance [W/m²], air temperature [°C]) each minute of a UTC day."""
        cached = self._days.get(day)
        if cached is not None:
            return cached
        cfg = self.config
        seconds = day * DAY_S + np.arange(0, DAY_S, _COARSE_STEP_S, dtype=np.int64)
        g = self._poa(day)
        result = (g, air_temperature_c(cfg.seed, day, seconds, cfg.longitude))
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
        days = range(first_s // DAY_S, last_s // DAY_S + 2)
        grids = [self._day_grid(d) for d in days]
        t = np.arange(days[0] * DAY_S, (days[-1] + 1) * DAY_S, _COARSE_STEP_S,
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
        base_s = h * HOUR_S
        base_ns = base_s * NS_PER_S
        n = self._slots
        nominal_ns = base_ns + (np.arange(n, dtype=np.int64) * (HOUR_S * NS_PER_S)) // n
        grid_t, grid_g, grid_air = self._coarse(base_s - _THERMAL_WARMUP_S - 1,
                                                base_s + HOUR_S + 1)
        # thermal grid: 1 s steps from the warm-up start to the block end, averaged to 10 s bins
        t1 = (base_s - _THERMAL_WARMUP_S) + np.arange(_THERMAL_WARMUP_S + HOUR_S,
                                                      dtype=np.float64) + 0.5
        g1_clear = np.interp(t1, grid_t, grid_g)
        air1 = np.interp(t1, grid_t, grid_air)
        bins = len(t1) // THERMAL_BIN_S
        bin_end = (base_s - _THERMAL_WARMUP_S) + THERMAL_BIN_S * np.arange(1, bins + 1,
                                                                          dtype=np.float64)

        times: list[IntArray] = []
        panels: list[npt.NDArray[np.int32]] = []
        fields: list[tuple[FloatArray, FloatArray, FloatArray, FloatArray]] = []
        for p, (pf, vf, t_off, delay, depth_off) in enumerate(self._panel_params):
            rng = np.random.default_rng(stream_key(cfg.seed, S_NOISE, p, h))
            latency = read_latency_ns(rng, n, self._latency_max_ns)
            noise_v = rng.standard_normal(n)
            noise_i = rng.standard_normal(n)
            noise_t = rng.standard_normal(n)
            keep = rng.random(n) >= cfg.drop_probability
            t_ns = nominal_ns + latency
            t_s = base_s + (t_ns - base_ns).astype(np.float64) / NS_PER_S

            g1 = g1_clear * self._transmission(t1, delay, depth_off)
            t_cell = cell_temperature_c(g1, air1, bin_end, t_s) + t_off
            g = np.interp(t_s, grid_t, grid_g) * self._transmission(t_s, delay, depth_off)
            _, voltage, current = panel_at_mpp(g, t_cell, pf, vf)
            read = read_ina226(voltage, current, t_cell, noise_v, noise_i, noise_t)

            times.append(t_ns[keep])
            panels.append(np.full(int(keep.sum()), p, np.int32))
            fields.append((read[0][keep], read[1][keep], read[2][keep], read[3][keep]))

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
