"""Mirror settings: SUNARCHIVE_INFLUXDB__*, the upstream INFLUXDB_* names, the config file."""

from __future__ import annotations

from pathlib import Path

import pytest

from sunarchive.model import ConfigError
from sunarchive.settings import load_settings
from sunarchive.sinks.transport import Transport, base_url

pytestmark = pytest.mark.unit


def test_disabled_by_default() -> None:
    settings = load_settings(env={}, dotenv_file=None)
    assert settings.influxdb.enabled is False
    assert settings.influxdb.database == "sunarchive" and settings.influxdb.write_api == "v3"
    assert settings.influxdb.send == "raw"


def test_upstream_variables(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("from-a-file\n")
    settings = load_settings(env={
        "INFLUXDB_ENABLED": "true", "INFLUXDB_HOST": "influx.example:8181",
        "INFLUXDB_TOKEN_FILE": str(token), "INFLUXDB_DATABASE": "solar",
        "INFLUXDB_ORG": "home", "INFLUXDB_MEASUREMENTS": "dtu, port"}, dotenv_file=None)
    influx = settings.influxdb
    assert influx.enabled and influx.host == "influx.example:8181"
    assert influx.token is not None and influx.token.get_secret_value() == "from-a-file"
    assert (influx.database, influx.org, influx.measurements) == ("solar", "home",
                                                                   ["dtu", "port"])
    assert "from-a-file" not in repr(settings)


def test_sunarchive_variables_and_config_file_win(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("influxdb:\n  database: from_file\n  write_api: v2\n")
    settings = load_settings(config, env={
        "INFLUXDB_DATABASE": "upstream", "INFLUXDB_PRECISION": "s",
        "SUNARCHIVE_INFLUXDB__SEND": "1s", "INFLUXDB_SEND": "raw"}, dotenv_file=None)
    influx = settings.influxdb
    assert (influx.database, influx.write_api, influx.precision, influx.send) == (
        "from_file", "v2", "s", "1s")


def test_errors_name_the_variable() -> None:
    with pytest.raises(ConfigError, match=r"INFLUXDB_WRITE_API: influxdb\.write_api"):
        load_settings(env={"INFLUXDB_WRITE_API": "v4"}, dotenv_file=None)
    with pytest.raises(ConfigError, match="not both"):
        load_settings(env={"INFLUXDB_TOKEN": "a", "INFLUXDB_TOKEN_FILE": "/x"},
                      dotenv_file=None)


def test_host_means_what_the_official_client_means() -> None:
    assert base_url("influx.example") == "https://influx.example:443"
    assert base_url("influx.example:8181") == "https://influx.example:8181"
    assert base_url("http://127.0.0.1:8086") == "http://127.0.0.1:8086"
    assert base_url("http://localhost") == "http://localhost:443"


@pytest.mark.parametrize(("api", "url", "params"), [
    ("v3", "/api/v3/write_lp", {"db": "solar", "precision": "millisecond"}),
    ("v2", "/api/v2/write", {"bucket": "solar", "precision": "ms", "org": "home"}),
    ("v1", "/write", {"db": "solar", "precision": "ms"}),
])
def test_write_api_requests(api: str, url: str, params: dict[str, str]) -> None:
    settings = load_settings(env={"INFLUXDB_HOST": "http://h:1", "INFLUXDB_WRITE_API": api,
                                  "INFLUXDB_DATABASE": "solar", "INFLUXDB_ORG": "home",
                                  "INFLUXDB_PRECISION": "ms", "INFLUXDB_TOKEN": "tk"},
                             dotenv_file=None)
    transport = Transport(settings.influxdb)
    assert transport.url == "http://h:1" + url and transport.params == params
    assert ("Authorization" in transport.headers) == (api != "v1")
    transport.close()


@pytest.mark.parametrize(("env", "missing"), [
    ({"INFLUXDB_ENABLED": "true"}, "influxdb.host"),
    ({"INFLUXDB_ENABLED": "true", "INFLUXDB_HOST": "https://influx.example"}, "influxdb.token"),
    ({"INFLUXDB_ENABLED": "true", "INFLUXDB_TOKEN": "t"}, "influxdb.host"),
])
def test_enabled_mirror_needs_host_and_token(env: dict[str, str], missing: str) -> None:
    """The upstream document calls INFLUXDB_HOST and INFLUXDB_TOKEN required: enabled without
    them is refused at start, naming what is missing (it used to start and fail every write)."""
    with pytest.raises(ConfigError, match=missing):
        load_settings(env=env, dotenv_file=None)


def test_v1_mirror_needs_no_token() -> None:
    settings = load_settings(env={"INFLUXDB_ENABLED": "true", "INFLUXDB_HOST": "http://h:8086",
                                  "INFLUXDB_WRITE_API": "v1"}, dotenv_file=None)
    assert settings.influxdb.enabled and settings.influxdb.token is None
