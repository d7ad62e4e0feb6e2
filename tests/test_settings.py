"""Tests for the settings schema and its source layering."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, get_args

import pytest
import yaml
from pydantic import BaseModel, SecretStr

from sunarchive.model import ConfigError
from sunarchive.settings import (
    UNIT_SUFFIXES,
    Settings,
    SimulatorSource,
    describe_settings,
    load_settings,
    settings_markdown,
    unit_of,
)
from sunarchive.sources.catalog import SourceConfig
from sunarchive.sources.ina2xx.config import PanelSettings
from sunarchive.sources.mqtt.config import MqttField

pytestmark = pytest.mark.unit

DOCS = Path(__file__).resolve().parents[1] / "docs" / "settings.md"

#: Settings whose values have no physical unit; every other setting must carry a unit suffix.
UNITLESS = {
    "database_url",
    "ps100.panels",
    "influxdb.enabled",
    "influxdb.host",
    "influxdb.token",
    "influxdb.database",
    "influxdb.org",
    "influxdb.username",
    "influxdb.write_api",
    "influxdb.precision",
    "influxdb.send",
    "influxdb.measurements",
    "influxdb.batch_size",
    "influxdb.gzip",
    "influxdb.queue_max_points",
    "influxdb.buffer_dir",
    "influxdb.buffer_full_policy",
    "database_password",
    "timezone",
    "profiles_dir",
    "spool_dir",
    "queue_max_samples",
    "queue_full_policy",
    "duckdb_threads",
    "postgres_copy_streams", "timescaledb_value_grid",
    "sql_max_rows", "postgres_reader_role", "postgres_reader_password", "postgres_sql_as_owner",
    "log_level",
    "http_host",
    "http_port",
    "http_enabled",
    "http_insecure",
    "http_read_tokens",
    "http_write_tokens",
    "http_tokens_file",
    "max_measurements",
    "max_tags_per_series",
    "max_fields_per_measurement",
    "simulator.panels",
    "simulator.seed",
    "simulator.speed",
    "simulator.start",
    "simulator.drop_probability",
    "sources",
}


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def load(tmp_path: Path, yaml_text: str | None = None, **kwargs: object) -> Settings:
    config = write(tmp_path / "config.yaml", yaml_text) if yaml_text is not None else None
    kwargs.setdefault("env", {})
    kwargs.setdefault("dotenv_file", None)
    return load_settings(config, **kwargs)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- defaults


def test_defaults() -> None:
    settings = load_settings(env={}, dotenv_file=None)
    assert settings == Settings()
    assert settings.database_url == "duckdb:///./sunarchive-data/sunarchive.duckdb"
    assert settings.database_password is None
    assert settings.timezone == "UTC"
    assert settings.lateness_s == 2.0
    assert settings.queue_full_policy == "block"
    assert settings.retention_1s_days is None
    assert settings.simulator.panels == 4
    assert settings.simulator.start is None
    assert settings.sources == []


def test_effective_sources_default_to_simulator_settings(tmp_path: Path) -> None:
    settings = load(tmp_path, "simulator:\n  panels: 7\n")
    (source,) = settings.effective_sources()
    assert isinstance(source, SimulatorSource)
    assert source.type == "simulator" and source.name == "simulator" and source.panels == 7


def test_sources_discriminated_union(tmp_path: Path) -> None:
    settings = load(tmp_path, """
sources:
  - type: simulator
    name: roof
    panels: 2
  - type: simulator
    name: garage
""")
    assert [s.name for s in settings.sources] == ["roof", "garage"]
    first = settings.sources[0]
    assert isinstance(first, SimulatorSource) and first.panels == 2
    assert settings.effective_sources() == settings.sources


# --------------------------------------------------------------------------- precedence


def test_precedence_of_all_layers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = write(tmp_path / "config.yaml", """
lateness_s: 3
commit_interval_s: 3
queue_max_samples: 3
duckdb_threads: 3
simulator:
  seed: 3
  panels: 3
""")
    write(tmp_path / ".env", "\n".join([
        "SUNARCHIVE_COMMIT_INTERVAL_S=4",
        "SUNARCHIVE_QUEUE_MAX_SAMPLES=4",
        "SUNARCHIVE_DUCKDB_THREADS=4",
        "SUNARCHIVE_SIMULATOR__PANELS=4",
    ]) + "\n")
    env = {
        "SUNARCHIVE_QUEUE_MAX_SAMPLES": "5",
        "SUNARCHIVE_DUCKDB_THREADS": "5",
        "SUNARCHIVE_SIMULATOR__PANELS": "5",
        "UNRELATED": "x",
    }
    overrides = {"duckdb_threads": 6, "queue_max_samples": None, "simulator.panels": 6}
    monkeypatch.chdir(tmp_path)  # the default dotenv_file is ./.env

    settings = load_settings(config, overrides=overrides, env=env)

    assert settings.maintenance_interval_s == 60.0  # default
    assert settings.lateness_s == 3                 # YAML over default
    assert settings.commit_interval_s == 4          # .env over YAML
    assert settings.queue_max_samples == 5          # env over .env; None override ignored
    assert settings.duckdb_threads == 6             # override over env
    assert settings.simulator.seed == 3             # nested keys merge across layers
    assert settings.simulator.panels == 6


def test_explicit_dotenv_path_and_missing_dotenv(tmp_path: Path) -> None:
    dotenv = write(tmp_path / "prod.env", "SUNARCHIVE_TIMEZONE=Europe/Berlin\n")
    assert load_settings(env={}, dotenv_file=dotenv).timezone == "Europe/Berlin"
    assert load_settings(env={}, dotenv_file=tmp_path / "absent.env").timezone == "UTC"


def test_env_defaults_to_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUNARCHIVE_HTTP_PORT", "9999")
    assert load_settings(dotenv_file=None).http_port == 9999


def test_env_empty_value_unsets_optional_and_json_lists(tmp_path: Path) -> None:
    settings = load(
        tmp_path, "retention_1s_days: 7\n",
        env={"SUNARCHIVE_RETENTION_1S_DAYS": "",
             "SUNARCHIVE_RETENTION_DAILY_DAYS": "3650",
             "SUNARCHIVE_SOURCES": '[{"type": "simulator", "name": "a", "panels": 1}]',
             "SUNARCHIVE_LOG_LEVEL": "debug"})
    assert settings.retention_1s_days is None
    assert settings.retention_daily_days == 3650
    assert settings.sources[0].name == "a"
    assert settings.log_level == "DEBUG"


def test_nested_override_mapping(tmp_path: Path) -> None:
    settings = load(tmp_path, "simulator:\n  seed: 1\n",
                    overrides={"simulator": {"panels": 9, "speed": None}})
    assert (settings.simulator.panels, settings.simulator.seed) == (9, 1)
    assert settings.simulator.speed == 1.0


# --------------------------------------------------------------------------- substitution


def test_yaml_env_substitution(tmp_path: Path) -> None:
    dotenv = write(tmp_path / ".env", "DB_HOST=from-dotenv\nDB_NAME=solar\n")
    settings = load(
        tmp_path, """
database_url: "postgresql://sun@${DB_HOST}:${DB_PORT:-5432}/${DB_NAME}"
http_host: "${HOST:-0.0.0.0}"
simulator:
  panels: "${PANELS}"
http_port: ${PORT:-}8081
""",
        env={"DB_HOST": "db.local", "PANELS": "8", "HOST": ""}, dotenv_file=dotenv)
    assert settings.database_url == "postgresql://sun@db.local:5432/solar"
    assert settings.http_host == "0.0.0.0"  # empty counts as unset for :-
    assert settings.simulator.panels == 8
    assert settings.http_port == 8081


def test_yaml_literal_dollar_brace(tmp_path: Path) -> None:
    settings = load(tmp_path, 'database_password: "a$${b}c"\n')
    assert settings.database_password is not None
    assert settings.database_password.get_secret_value() == "a${b}c"


def test_yaml_missing_variable_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, "simulator:\n  panels: ${NO_SUCH_VARIABLE}\n")
    message = str(info.value)
    assert "config.yaml: simulator.panels:" in message
    assert "NO_SUCH_VARIABLE" in message


def test_yaml_malformed_reference(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config.yaml: http_host: malformed"):
        load(tmp_path, 'http_host: "${not closed"\n')


# --------------------------------------------------------------------------- secrets


def test_secret_from_file_never_printed(tmp_path: Path) -> None:
    secret_file = write(tmp_path / "pw", "  hunter2-secret\n")
    settings = load(tmp_path, env={"SUNARCHIVE_DATABASE_PASSWORD_FILE": str(secret_file)})
    assert isinstance(settings.database_password, SecretStr)
    assert settings.database_password.get_secret_value() == "hunter2-secret"
    for text in (repr(settings), str(settings), settings.model_dump_json()):
        assert "hunter2" not in text


def test_secret_from_file_in_dotenv_and_plain_env(tmp_path: Path) -> None:
    secret_file = write(tmp_path / "pw", "s3cret")
    dotenv = write(tmp_path / ".env", f"SUNARCHIVE_DATABASE_PASSWORD_FILE={secret_file}\n")
    settings = load(tmp_path, dotenv_file=dotenv)
    assert settings.database_password is not None
    assert settings.database_password.get_secret_value() == "s3cret"
    # the process environment beats the .env file
    settings = load(tmp_path, dotenv_file=dotenv, env={"SUNARCHIVE_DATABASE_PASSWORD": "env"})
    assert settings.database_password is not None
    assert settings.database_password.get_secret_value() == "env"


def test_secret_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"SUNARCHIVE_DATABASE_PASSWORD_FILE.*cannot read"):
        load(tmp_path, env={"SUNARCHIVE_DATABASE_PASSWORD_FILE": str(tmp_path / "absent")})
    with pytest.raises(ConfigError, match="not both"):
        load(tmp_path, env={"SUNARCHIVE_DATABASE_PASSWORD_FILE": str(tmp_path / "x"),
                            "SUNARCHIVE_DATABASE_PASSWORD": "y"})


def test_secret_not_in_error_message(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, env={"SUNARCHIVE_DATABASE_PASSWORD": "hunter2", "SUNARCHIVE_HTTP_PORT": "0"})
    assert "hunter2" not in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(("yaml_text", "expected"), [
    ("simulator:\n  panels: 0\n", "config.yaml: simulator.panels: Input should be greater than 0"),
    ("simulator:\n  panles: 3\n", "config.yaml: simulator.panles: unknown setting"),
    ("no_such_setting: 1\n", "config.yaml: no_such_setting: unknown setting"),
    ("timezone: Europe/Berln\n", "config.yaml: timezone: unknown time zone 'Europe/Berln'"),
    ("simulator:\n  start: 2024-06-01 00:00:00\n",
     "config.yaml: simulator.start: time has no UTC offset"),
    ("simulator:\n  drop_probability: 1\n", "config.yaml: simulator.drop_probability: Input "
                                            "should be less than 1"),
    ("queue_full_policy: drop_oldest\n", "config.yaml: queue_full_policy: Input should be"),
    ("database_url: sqlite:///x.db\n", "config.yaml: database_url: expected duckdb:///"),
    ("sources:\n  - type: simulator\n    panels: -1\n",
     "config.yaml: sources[0].panels: Input should be greater than 0"),
    ("sources:\n  - panels: 1\n", "config.yaml: sources[0]: missing type"),
    ("sources:\n  - type: simulator\n  - type: simulator\n",
     "config.yaml: sources: duplicate source name 'simulator'"),
])
def test_bad_yaml_names_file_and_key(tmp_path: Path, yaml_text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, yaml_text)
    assert expected in str(info.value)
    assert str(tmp_path / "config.yaml") in str(info.value)


def test_aware_start_accepted(tmp_path: Path) -> None:
    settings = load(tmp_path, "simulator:\n  start: 2024-06-21T04:00:00+02:00\n")
    assert settings.simulator.start == datetime(2024, 6, 21, 2, tzinfo=UTC)
    assert settings.simulator.start.utcoffset() == timedelta(hours=2)
    assert settings.simulator.start.tzinfo == timezone(timedelta(hours=2))
    assert settings.zoneinfo.key == "UTC"


def test_several_errors_reported_together(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, "lateness_s: -1\nhttp_port: 0\n")
    lines = str(info.value).splitlines()
    assert len(lines) == 2
    assert all(line.startswith(str(tmp_path / "config.yaml")) for line in lines)


@pytest.mark.parametrize(("yaml_text", "expected"), [
    ("- a\n- b\n", "expected a mapping"),
    ("a: [unclosed\n", "invalid YAML"),
])
def test_bad_yaml_file(tmp_path: Path, yaml_text: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        load(tmp_path, yaml_text)


def test_missing_yaml_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"absent\.yaml: cannot read config file"):
        load_settings(tmp_path / "absent.yaml", env={}, dotenv_file=None)


def test_empty_yaml_file_is_defaults(tmp_path: Path) -> None:
    assert load(tmp_path, "") == Settings()


def test_env_bad_value_names_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, env={"SUNARCHIVE_SIMULATOR__PANELS": "many"})
    assert str(info.value).startswith(
        "environment variable SUNARCHIVE_SIMULATOR__PANELS: simulator.panels: Input should be "
        "a valid integer")


def test_env_bad_json_names_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="environment variable SUNARCHIVE_SOURCES: sources: "
                                          "expected JSON"):
        load(tmp_path, env={"SUNARCHIVE_SOURCES": "[{"})


def test_dotenv_bad_value_names_file_and_variable(tmp_path: Path) -> None:
    dotenv = write(tmp_path / ".env", "SUNARCHIVE_TIMEZONE=Mars/Olympus\n")
    with pytest.raises(ConfigError) as info:
        load(tmp_path, dotenv_file=dotenv)
    assert str(info.value).startswith(
        f"{dotenv} (variable SUNARCHIVE_TIMEZONE): timezone: unknown time zone")


def test_bad_value_attributed_to_the_winning_layer(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, "lateness_s: 1\n", overrides={"lateness_s": -5})
    assert str(info.value) == "override: lateness_s: Input should be greater than or equal to 0"


def test_unknown_override_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"override: simulator\.bogus: unknown setting"):
        load(tmp_path, overrides={"simulator.bogus": 1})


# --------------------------------------------------------------------------- documentation


def test_every_setting_documented() -> None:
    docs = describe_settings()
    names = [d.name for d in docs]
    assert len(names) == len(set(names))
    assert "simulator.panels" in names and "database_password" in names
    for doc in docs:
        assert doc.help.strip(), f"{doc.name} has no description"
        assert doc.env_var == "SUNARCHIVE_" + doc.name.upper().replace(".", "__")
        assert doc.type


def test_unit_suffixes() -> None:
    docs = describe_settings()
    assert {d.name for d in docs} >= UNITLESS, "stale entries in UNITLESS"
    for doc in docs:
        leaf = doc.name.rsplit(".", 1)[-1]
        if doc.name in UNITLESS:
            assert doc.unit is None, f"{doc.name} is in UNITLESS but has a unit suffix"
        else:
            assert doc.unit is not None, (
                f"{doc.name} has no unit suffix ({', '.join(UNIT_SUFFIXES)}); rename it or, "
                "if it really has no unit, add it to UNITLESS")
            assert doc.unit == unit_of(leaf)
    by_name = {d.name: d for d in docs}
    assert by_name["lateness_s"].unit == "s"
    assert by_name["retention_1s_days"].unit == "days"
    assert by_name["simulator.sample_rate_hz"].unit == "Hz"


def test_secret_fields_are_secretstr() -> None:
    secrets = [d for d in describe_settings() if d.secret]
    assert [d.name for d in secrets] == ["database_password", "postgres_reader_password",
                                         "http_read_tokens", "http_write_tokens",
                                         "influxdb.token"]
    for doc in secrets:
        model: Any = Settings
        for part in doc.name.split(".")[:-1]:
            model = model.model_fields[part].annotation
        field = model.model_fields[doc.name.split(".")[-1]]
        assert "SecretStr" in str(field.annotation)
    tokens = load_settings(env={"SUNARCHIVE_HTTP_WRITE_TOKENS": '["t0p-secret"]'},
                           dotenv_file=None)
    assert "t0p-secret" not in repr(tokens) and "t0p-secret" not in str(tokens)


def test_markdown_lists_every_setting() -> None:
    text = settings_markdown()
    for doc in describe_settings():
        assert f"| `{doc.name}` | `{doc.env_var}` |" in text


def test_docs_settings_md_up_to_date() -> None:
    assert DOCS.read_text(encoding="utf-8") == settings_markdown(), (
        "docs/settings.md is stale; regenerate with "
        "`python -m sunarchive.settings > docs/settings.md`")


def test_upstream_database_variables(tmp_path: Path) -> None:
    plain = load_settings(env={"DATABASE_URL": "postgresql://u@db:5433/solar"},
                          dotenv_file=None)
    assert plain.database_url == "postgresql://u@db:5433/solar"
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    timescale = load_settings(env={"TIMESCALE_HOST": "ts.local", "TIMESCALE_USER": "solar",
                                   "TIMESCALE_DATABASE": "energy",
                                   "TIMESCALE_PASSWORD_FILE": str(secret)}, dotenv_file=None)
    assert timescale.database_url == "postgresql://solar@ts.local:5432/energy"
    assert timescale.database_password is not None
    assert timescale.database_password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(timescale)
    # our own variable wins over the upstream ones
    ours = load_settings(env={"SUNARCHIVE_DATABASE_URL": "duckdb:///x.duckdb",
                              "DATABASE_URL": "postgresql://u@db/solar"}, dotenv_file=None)
    assert ours.database_url == "duckdb:///x.duckdb"


# --------------------------------------------------------------------------- finite ranges

#: The smallest valid entry of each source type; every numeric key is then tried on it.
MINIMAL_SOURCES: dict[str, dict[str, Any]] = {
    "simulator": {},
    "goodwe": {"host": "gw"},
    "hoymiles": {"host": "dtu"},
    "ina2xx": {"panels": [{"panel_id": "p1", "address": 0x40, "shunt_ohm": 0.01,
                           "max_current_a": 8.0, "voc_v": 24.0}]},
    "mqtt": {"layout": "generic", "mappings": [{"topic": "a/{device}", "measurement": "m",
                                               "fields": {"power": {"scale": 1.0}}}]},
    "sunspec": {"host": "inverter"},
    "tcp": {"port": 9000, "measurement": "ps100_readings"},
}
#: Numbers that may be any finite value (a sign flip or a seed).
UNBOUNDED = {"scale"}


def _numeric_fields(model: type[BaseModel]) -> Iterator[tuple[str, bool]]:
    """(name, is_float) of every int or float field of ``model``."""
    for name, info in model.model_fields.items():
        members = get_args(info.annotation) or (info.annotation,)
        if float in members:
            yield name, True
        elif int in members:
            yield name, False


def _numeric_keys() -> Iterator[tuple[tuple[str | int, ...], bool, dict[str, Any]]]:
    """(key path, is_float, valid base config) of every numeric setting, nested ones too."""
    for name, info in Settings.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            for sub, is_float in _numeric_fields(annotation):
                yield (name, sub), is_float, {}
        elif name != "sources":
            yield from (((name,), f, {}) for n, f in _numeric_fields(Settings) if n == name)
    for model in get_args(get_args(SourceConfig)[0]):
        tag = get_args(model.model_fields["type"].annotation)[0]
        base = {"type": tag, "name": "s", **MINIMAL_SOURCES[tag]}
        for sub, is_float in _numeric_fields(model):
            yield ("sources", 0, sub), is_float, base
    ina = {"type": "ina2xx", "name": "s", **MINIMAL_SOURCES["ina2xx"]}
    for sub, is_float in _numeric_fields(PanelSettings):
        yield ("sources", 0, "panels", 0, sub), is_float, ina
    mqtt = {"type": "mqtt", "name": "s", **MINIMAL_SOURCES["mqtt"]}
    for sub, is_float in _numeric_fields(MqttField):
        yield ("sources", 0, "mappings", 0, "fields", "power", sub), is_float, mqtt


def _set(data: dict[str, Any], path: tuple[str | int, ...], value: object) -> dict[str, Any]:
    node: Any = data
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return data


def _dotted_key(path: tuple[str | int, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


NUMERIC_KEYS = list(_numeric_keys())


def test_every_numeric_setting_is_found() -> None:
    names = {_dotted_key(path) for path, _, _ in NUMERIC_KEYS}
    assert {"lateness_s", "influxdb.retry_max_s", "simulator.speed", "sources[0].keepalive_s",
            "sources[0].panels[0].voc_v", "sources[0].max_line_bytes"} <= names
    assert len(NUMERIC_KEYS) > 60


@pytest.mark.parametrize(("path", "is_float", "base"), NUMERIC_KEYS,
                         ids=[_dotted_key(k[0]) + f"-{k[2].get('type', '')}"
                              for k in NUMERIC_KEYS])
def test_numeric_settings_are_finite_and_bounded(tmp_path: Path, path: tuple[str | int, ...],
                                                 is_float: bool, base: dict[str, Any]) -> None:
    """`.inf`, `.nan` and absurd magnitudes are refused with one line naming the key."""
    bad: list[object] = [float("inf"), float("-inf"), float("nan")] if is_float else []
    if path[-1] not in UNBOUNDED:
        bad += [1e30, -1e30] if is_float else [10**30, -(10**30)]
    key = _dotted_key(path)
    for value in bad:
        data = {"sources": [copy.deepcopy(base)]} if base else {}
        text = yaml.safe_dump(_set(data, path, value) if base else _nested(path, value))
        with pytest.raises(ConfigError) as info:
            load(tmp_path, text)
        message = str(info.value)
        assert f"config.yaml: {key}: " in message, (value, message)
        assert "\n" not in message, message


def _nested(path: tuple[str | int, ...], value: object) -> dict[str, Any]:
    data: dict[str, Any] = {}
    node = data
    for part in path[:-1]:
        node = node.setdefault(str(part), {})
    node[str(path[-1])] = value
    return data


def test_minimal_sources_are_valid(tmp_path: Path) -> None:
    for tag, entry in MINIMAL_SOURCES.items():
        text = yaml.safe_dump({"sources": [{"type": tag, "name": "s", **entry}]})
        assert load(tmp_path, text).sources[0].type == tag


def test_infinite_lateness_from_the_environment(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^environment variable SUNARCHIVE_LATENESS_S: "
                                          r"lateness_s: Input should be a finite number$"):
        load(tmp_path, env={"SUNARCHIVE_LATENESS_S": "inf"})


@pytest.mark.parametrize(("yaml_text", "expected"), [
    ("influxdb:\n  retry_min_s: 10\n  retry_max_s: 5\n",
     "influxdb: retry_max_s must not be smaller than retry_min_s"),
    ("sources:\n  - {type: ina2xx, name: i, backoff_min_s: 9, backoff_max_s: 1, panels: "
     "[{panel_id: p, address: 64, shunt_ohm: 0.01, max_current_a: 8, voc_v: 24}]}\n",
     "sources[0]: backoff_max_s must not be smaller than backoff_min_s"),
    ("influxdb:\n  host: 'http://'\n", "influxdb.host: 'http://' has no host name"),
    ("influxdb:\n  host: 'http://x:99999'\n", "influxdb.host: 'http://x:99999': port"),
    ("influxdb:\n  host: 'ftp://x'\n", "influxdb.host: 'ftp://x': the scheme must be http or"),
])
def test_cross_checked_settings(tmp_path: Path, yaml_text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, yaml_text)
    assert expected in str(info.value)
    assert "\n" not in str(info.value)


def test_config_file_not_utf8(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_bytes(b"timezone: \"\xff\xfe\"\n")
    with pytest.raises(ConfigError, match=r"config\.yaml: not UTF-8 text: byte 0xff at "
                                          r"position 11"):
        load_settings(config, env={}, dotenv_file=None)


def test_dotenv_file_not_utf8(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_bytes(b"SUNARCHIVE_TIMEZONE=\xff\n")
    with pytest.raises(ConfigError, match=r"\.env: not UTF-8 text"):
        load_settings(None, env={}, dotenv_file=dotenv)


def test_ps100_sensor_read_interval_sets_the_sampling_rate() -> None:
    """PS100's `.env` `SENSOR_READ_INTERVAL=0.2` (seconds between reads) means 5 Hz."""
    settings = load_settings(env={"SENSOR_READ_INTERVAL": "0.2"}, dotenv_file=None)
    assert settings.simulator.sample_rate_hz == pytest.approx(5.0)
    given = load_settings(env={"SENSOR_READ_INTERVAL": "0.2",
                               "SUNARCHIVE_SIMULATOR__SAMPLE_RATE_HZ": "2"}, dotenv_file=None)
    assert given.simulator.sample_rate_hz == pytest.approx(2.0)     # ours wins


@pytest.mark.parametrize("value", ["fast", "0", "-1", "inf"])
def test_a_bad_sensor_read_interval_is_named(value: str) -> None:
    with pytest.raises(ConfigError, match="SENSOR_READ_INTERVAL"):
        load_settings(env={"SENSOR_READ_INTERVAL": value}, dotenv_file=None)
