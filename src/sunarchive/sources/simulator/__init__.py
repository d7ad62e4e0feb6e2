"""A deterministic simulator of PS100-class 100 W panels read at 10 Hz by INA226 sensors.

* ``physics.py``: clear-sky irradiance, clouds, air and cell temperature, the panel at its
  maximum power point — pure functions of the seed and simulated time, units in docstrings;
* ``sensor.py``: what the INA226 and the temperature sensor report (noise, quantisation, read
  latency);
* ``panels.py``: :class:`PanelSimulator`, the physics and the sensors put together one UTC
  hour at a time. Samples sit on the nominal grid (100 ms at 10 Hz) plus the read latency; a
  dropped sample has no row;
* ``source.py``: :class:`SimulatorSource`, the simulator as a source running with the clock.

Everything random is derived from the seed and absolute simulated time (one RNG stream per
panel and UTC hour), so :meth:`PanelSimulator.generate` returns identical rows however a span is
split into calls.

pvlib runs in a short-lived child process once per eight simulated days (see
:mod:`sunarchive.sources.clearsky`), so a long-running collector does not carry pvlib, pandas
and scipy in memory; ``SimulatorConfig.isolate_pvlib=False`` runs it in-process.
"""

from sunarchive.sources.simulator.panels import PanelSimulator, SimulatorConfig
from sunarchive.sources.simulator.sensor import (
    BUS_VOLTAGE_LSB_V,
    CURRENT_LSB_A,
    POWER_LSB_W,
    TEMPERATURE_LSB_C,
)
from sunarchive.sources.simulator.source import SimulatorSource

__all__ = [
    "BUS_VOLTAGE_LSB_V",
    "CURRENT_LSB_A",
    "POWER_LSB_W",
    "TEMPERATURE_LSB_C",
    "PanelSimulator",
    "SimulatorConfig",
    "SimulatorSource",
]
