"""The upstream setups' environment variable names, honoured when the sunarchive names do
not give the setting: ``DATABASE_URL`` and ``TIMESCALE_*`` (the store), ``INFLUXDB_*`` (the
mirror) and PS100's ``SENSOR_READ_INTERVAL`` (the sample rate)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote

from sunarchive.model import ConfigError
from sunarchive.settings.layers import Layers
from sunarchive.settings.schema import SECRET_FILE_SUFFIX, union_members
from sunarchive.sinks.config import UPSTREAM_PREFIX, InfluxSettings

UPSTREAM_DATABASE_VARS = ("DATABASE_URL", "TIMESCALE_HOST", "TIMESCALE_PORT", "TIMESCALE_USER",
                          "TIMESCALE_PASSWORD", "TIMESCALE_PASSWORD_FILE", "TIMESCALE_DATABASE")


def apply_upstream_database_env(layers: Layers, env: Mapping[str, str]) -> None:
    """Honour the upstream setups' variables when ``database_url`` was not given otherwise.

    ``DATABASE_URL`` wins; else ``TIMESCALE_HOST`` (with ``TIMESCALE_PORT`` 5432,
    ``TIMESCALE_USER`` postgres, ``TIMESCALE_DATABASE`` postgres) builds a ``postgresql://`` URL
    and ``TIMESCALE_PASSWORD`` or ``TIMESCALE_PASSWORD_FILE`` gives ``database_password``.
    """
    if "database_url" in layers.data:
        return
    if env.get("DATABASE_URL"):
        layers.set(("database_url",), env["DATABASE_URL"], "environment variable DATABASE_URL")
        return
    host = env.get("TIMESCALE_HOST")
    if not host:
        return
    port = env.get("TIMESCALE_PORT", "5432")
    user = quote(env.get("TIMESCALE_USER", "postgres"), safe="")
    database = quote(env.get("TIMESCALE_DATABASE", "postgres"), safe="")
    layers.set(("database_url",), f"postgresql://{user}@{host}:{port}/{database}",
               "environment variables TIMESCALE_*")
    if "database_password" in layers.data:
        return
    if env.get("TIMESCALE_PASSWORD"):
        layers.set(("database_password",), env["TIMESCALE_PASSWORD"],
                   "environment variable TIMESCALE_PASSWORD")
    elif env.get("TIMESCALE_PASSWORD_FILE"):
        path = Path(env["TIMESCALE_PASSWORD_FILE"])
        try:
            secret = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"environment variable TIMESCALE_PASSWORD_FILE: cannot read "
                              f"{path}: {exc.strerror}") from None
        layers.set(("database_password",), secret, "environment variable "
                   "TIMESCALE_PASSWORD_FILE")


def apply_upstream_sensor_env(layers: Layers, env: Mapping[str, str]) -> None:
    """PS100's ``SENSOR_READ_INTERVAL`` (seconds between sensor reads, e.g. 0.1 = 10 Hz) sets
    ``simulator.sample_rate_hz`` and the ``sample_rate_hz`` of ``ina2xx`` sources, unless
    given otherwise."""
    text = env.get("SENSOR_READ_INTERVAL")
    if text is None:
        return
    origin = "environment variable SENSOR_READ_INTERVAL"
    try:
        interval_s = float(text)
    except ValueError:
        raise ConfigError(f"{origin}: {text!r} is not a number of seconds") from None
    if not 0 < interval_s < math.inf:
        raise ConfigError(f"{origin}: {text!r} must be a positive number of seconds")
    rate_hz = 1.0 / interval_s
    simulator = layers.data.get("simulator")
    if not (isinstance(simulator, dict) and "sample_rate_hz" in simulator):
        layers.set(("simulator", "sample_rate_hz"), rate_hz, origin)
    sources = layers.data.get("sources")
    for source in sources if isinstance(sources, list) else []:
        if isinstance(source, dict) and source.get("type") == "ina2xx":
            source.setdefault("sample_rate_hz", rate_hz)


def apply_upstream_influxdb_env(layers: Layers, env: Mapping[str, str]) -> None:
    """Honour ``INFLUXDB_<NAME>`` (``INFLUXDB_ENABLED``, ``INFLUXDB_HOST``, ``INFLUXDB_TOKEN`` or
    ``INFLUXDB_TOKEN_FILE``, ``INFLUXDB_DATABASE``, ``INFLUXDB_ORG``, ...) for each mirror
    setting not given otherwise (config file, ``.env`` or ``SUNARCHIVE_INFLUXDB__*``)."""
    given = layers.data.get("influxdb")
    given = given if isinstance(given, dict) else {}
    for name, info in InfluxSettings.model_fields.items():
        var = UPSTREAM_PREFIX + name.upper()
        if name in given:
            continue
        secret = info.json_schema_extra == {"secret": True}
        raw, file_name = env.get(var), env.get(var + SECRET_FILE_SUFFIX) if secret else None
        if raw is not None and file_name is not None:
            raise ConfigError(f"environment variable {var}: influxdb.{name}: set either {var} "
                              f"or {var}{SECRET_FILE_SUFFIX}, not both")
        if file_name is not None:
            try:
                raw = Path(file_name).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(f"environment variable {var}{SECRET_FILE_SUFFIX}: "
                                  f"influxdb.{name}: cannot read secret file {file_name}: "
                                  f"{exc.strerror or exc}") from None
            var += SECRET_FILE_SUFFIX
        if raw is None:
            continue
        value = None if raw == "" and type(None) in union_members(info.annotation) else raw
        layers.set(("influxdb", name), value, f"environment variable {var}")
