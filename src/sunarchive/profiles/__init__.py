"""Measurement profiles: named schemas shipped as YAML data, user-extensible.

A profile file looks like::

    name: ps100_readings
    description: 100 W panel sampled at 10 Hz by an INA226
    tags: [panel_id]
    sample_rate_hz: 10        # nominal, for completeness figures
    max_gap_s: 5              # a hold longer than this contributes no energy and is a gap
    chunk_interval: 1 day
    fields:
      voltage: {unit: V, kind: gauge, decimals: 3, description: bus voltage}
      power: {unit: W, kind: power, energy_column: energy_wh}

``decimals`` (gauge and power fields) rounds the stored statistics to the sensor's
resolution, and energy to µWh. Field kinds are described in :class:`sunarchive.model.FieldKind`.
``type`` (``int``, ``float`` or ``bool``) is the value type written to InfluxDB line protocol
by the mirror; by default flags are booleans, states integers and everything else floats.
"""

from __future__ import annotations

from sunarchive.profiles.loader import load_profile_file, load_profiles
from sunarchive.profiles.spec import ColumnSpec, FieldSpec, Profile

__all__ = ["ColumnSpec", "FieldSpec", "Profile", "load_profile_file", "load_profiles"]
