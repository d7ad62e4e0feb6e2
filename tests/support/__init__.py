"""Helpers shared by the tests; test files import from here, never from one another.

* ``cli`` — ``python -m sunarchive`` in a subprocess with a clean environment; the demo's
  constants.
* ``ports`` — a free loopback port.
* ``waiting`` — wait, bounded, until a state holds (never a fixed sleep).
* ``sinks`` — ``ListSink``, the sink a source under test hands its batches to.
* ``serving`` — ``sunarchive serve`` in a subprocess; reading its store once stopped.
* ``collector_run`` — ``sunarchive run --config`` in a subprocess and its sources.
* ``importing`` — ``sunarchive import`` and reading the DuckDB file it wrote.
* ``reference`` — the naive reference computations the reducer and rollups must equal.
* ``scenarios`` — the hypothesis scenarios of raw samples the property tests share.
* ``stats_rows`` — synthetic per-second rows for writing straight into a store.
* ``timescale_panels`` — a PostgreSQL store with two panels and their rows.
* servers: ``pg_server`` (PostgreSQL), ``pglite_server`` (PGlite + TimescaleDB),
  ``mosquitto`` (MQTT broker), ``influxdb1_server`` (InfluxDB 1.x).
* fakes of devices: ``goodwe_fake``, ``hoymiles_fake``, ``ina_fake``, ``sunspec_fake``,
  ``influx_fake`` (an InfluxDB 3 write endpoint); ``tcp_receiver`` drives the TCP source;
  ``mirror_batches`` holds the batches the mirror tests send.
"""
