"""The sensors of a simulated panel: an INA226 current/voltage monitor and a temperature
sensor, as PS100 rigs read them.

Gaussian noise, then INA226 quantisation — bus voltage 1.25 mV/LSB (clipped to the 40.96 V
register range), current 0.125 mA/LSB (calibration 4096 with a 10 mΩ shunt, full scale 4.096 A,
enough for the 3.99 A short-circuit current of the panel), power register
``floor(current_reg × bus_reg / 20000)`` at 25 × the current LSB = 3.125 mW/LSB; temperature
quantised to 0.0625 °C. A read lands a small non-negative latency (≈ 0.5–8 ms) after its slot
on the nominal grid; a dropped read has no row.
"""

from __future__ import annotations

import numpy as np

from sunarchive.model import FloatArray, IntArray

BUS_VOLTAGE_LSB_V = 0.00125
"""INA226 bus voltage LSB [V]."""
CURRENT_LSB_A = 0.000125
"""Calibrated INA226 current LSB [A] (full scale 32767 LSB = 4.096 A)."""
POWER_LSB_W = 25 * CURRENT_LSB_A
"""INA226 power LSB [W] (25 × current LSB)."""
TEMPERATURE_LSB_C = 0.0625
"""Temperature sensor resolution [°C]."""
REG_MAX = 32767
"""Largest value of an INA226 register [LSB]."""


def read_latency_ns(rng: np.random.Generator, n: int, latency_max_ns: int) -> IntArray:
    """Read latency of ``n`` reads [ns]: 0.5 ms plus an exponential tail (mean 1.5 ms), at
    most ``latency_max_ns``."""
    return np.minimum(500_000 + rng.exponential(1_500_000.0, n),
                      latency_max_ns).astype(np.int64)


def read_ina226(voltage_v: FloatArray, current_a: FloatArray, cell_c: FloatArray,
                noise_v: FloatArray, noise_i: FloatArray, noise_t: FloatArray,
                ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """What the sensors report for the true bus voltage [V], current [A] and cell temperature
    [°C], given standard normal noise draws for each: (voltage [V], current [A], power [W],
    temperature [°C]), each a multiple of its LSB."""
    v_meas = voltage_v + noise_v * (0.003 + 0.0004 * voltage_v)
    i_meas = current_a + noise_i * np.where(current_a > 0, 0.0003 + 0.001 * current_a, 0.0)
    v_reg = np.clip(np.rint(v_meas / BUS_VOLTAGE_LSB_V), 0, REG_MAX).astype(np.int64)
    i_reg = np.clip(np.rint(i_meas / CURRENT_LSB_A), 0, REG_MAX).astype(np.int64)
    p_reg = (i_reg * v_reg) // 20000
    temp_q = np.rint((cell_c + 0.03 * noise_t) / TEMPERATURE_LSB_C) * TEMPERATURE_LSB_C
    return ((v_reg * BUS_VOLTAGE_LSB_V).astype(np.float64),
            (i_reg * CURRENT_LSB_A).astype(np.float64),
            (p_reg * POWER_LSB_W).astype(np.float64),
            temp_q.astype(np.float64))
