"""The one typed settings schema of sunarchive, and where its values come from.

Sources, lowest precedence first:

1. defaults (the ``Field(default=...)`` of :class:`Settings`);
2. a YAML config file (path given explicitly) — ``${VAR}`` and ``${VAR:-default}`` are
   substituted inside string values (``$${`` gives a literal ``${``); an undefined variable
   without a default is an error;
3. a ``.env`` file (``./.env`` unless another path is given; a missing file is skipped);
4. the process environment: ``SUNARCHIVE_<NAME>``, upper case, nested with ``__``
   (``SUNARCHIVE_SIMULATOR__PANELS=8``);
5. explicit overrides (from command-line flags); keys are setting names (dotted for nested
   settings), ``None`` values are ignored.

Dictionaries (nested settings) are merged key by key across sources; every other value,
including lists such as ``sources``, is replaced as a whole.

In ``.env`` and the environment an empty value sets an optional setting to ``None``, and list
settings (``SUNARCHIVE_SOURCES``) are given as JSON. A secret setting ``x`` can also be read
from a file: ``SUNARCHIVE_X_FILE=/run/secrets/x`` (content stripped). Secrets are
:class:`pydantic.SecretStr`, so they never show in ``repr``/``str`` or logs.

Every problem raises :class:`~sunarchive.model.ConfigError` whose message names where the
value came from, the dotted key and why, e.g.
``config.yaml: simulator.panels: Input should be greater than 0``.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import types
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import annotated_types
import yaml
from dotenv import dotenv_values
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic.fields import FieldInfo

from sunarchive.model import ConfigError
from sunarchive.resolution import ValueGrid
from sunarchive.sinks.config import UPSTREAM_PREFIX, InfluxSettings
from sunarchive.sources.catalog import SOURCE_TAGS, SourceConfig
from sunarchive.sources.config import SimulatorSettings, SimulatorSource

__all__ = [
    "ENV_PREFIX",
    "SettingDoc",
    "Settings",
    "SimulatorSettings",
    "SimulatorSource",
    "SourceConfig",
    "describe_settings",
    "load_settings",
    "settings_markdown",
]

ENV_PREFIX = "SUNARCHIVE_"
ENV_NESTED_DELIMITER = "__"
SECRET_FILE_SUFFIX = "_FILE"

#: Unit of a setting, from the suffix of its name (checked in order).
UNIT_SUFFIXES: dict[str, str] = {
    "_ms": "ms",
    "_s": "s",
    "_mb": "MB",
    "_hz": "Hz",
    "_days": "days",
    "_deg": "degrees",
    "_bytes": "bytes",
}

#: Unknown keys are errors; ``.inf`` and ``.nan`` are refused ("Input should be a finite number").
_STRICT = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
MAX_DAYS = 36_500
"""Longest retention, in days (100 years); longer is "forever", which is unset."""


# --------------------------------------------------------------------------- schema


class Settings(BaseModel):
    """All settings of sunarchive. Build it with :func:`load_settings`."""

    model_config = _STRICT

    database_url: str = Field(
        default="duckdb:///./sunarchive-data/sunarchive.duckdb",
        description="Where data is stored: duckdb:///path/to/file.duckdb or "
                    "postgresql://user@host:port/dbname.")
    database_password: SecretStr | None = Field(
        default=None, json_schema_extra={"secret": True},
        description="PostgreSQL password, if not in database_url.")
    spool_dir: Path | None = Field(
        default=None, description="Directory where write batches wait while the store is "
        "unreachable, replayed in order once it answers (default: beside the DuckDB file, or "
        "sunarchive-data/postgres-<server>.spool).")
    timezone: str = Field(default="UTC", description="IANA time zone of the site (e.g. "
                          "Europe/Berlin); used for daily rollups and display. The first "
                          "setup records it in the store; later commands without a zone use "
                          "the recorded one, and another zone is refused once the store holds "
                          "data (daily buckets never mix two zones).")
    profiles_dir: Path | None = Field(default=None, description="Directory with extra "
                                      "measurement profiles (*.yaml).")
    lateness_s: float = Field(default=2.0, ge=0, le=3600, description="How long each series "
                              "waits for late samples after the end of a second before "
                              "closing it (by its own clock; see the README's invariants).")
    dedup_window_s: float = Field(default=600.0, ge=0, le=3600, description="How long "
                                  "(by sample time) written points are remembered so that an "
                                  "exact duplicate (same series, field and nanosecond "
                                  "timestamp, e.g. a client's retry) arriving after its "
                                  "second was written changes nothing when its values are "
                                  "the same and replaces the point when they differ, also "
                                  "after a restart (they are saved under "
                                  "<spool_dir>/recent/); 0 turns this off. Memory and disk: "
                                  "the raw samples of the window (about 12 + 8 × fields "
                                  "bytes each).")
    commit_interval_s: float = Field(default=1.0, gt=0, le=3600, description="How often the "
                                     "writer commits.")
    queue_max_samples: int = Field(default=1_000_000, gt=0, le=100_000_000,
                                   description="Capacity of the queue between sources and the "
                                   "writer, in samples (about 50 bytes each with four "
                                   "fields).")
    queue_full_policy: Literal["block", "drop_newest"] = Field(
        default="block", description="What a source does when the queue is full: block "
                                     "(back-pressure) or drop_newest (count and drop).")
    queue_put_timeout_s: float = Field(default=5.0, gt=0, le=3600, description="With block, "
                                       "how long a put waits before reporting the writer as "
                                       "stalled.")
    duckdb_memory_limit_mb: int = Field(default=256, gt=0, le=1_048_576,
                                        description="DuckDB memory_limit (`sunarchive import` "
                                        "uses 128 unless this is set).")
    duckdb_threads: int = Field(default=2, gt=0, le=1024, description="DuckDB worker threads.")
    postgres_copy_streams: int = Field(
        default=2, ge=1, le=16, description="PostgreSQL: parallel COPY connections for large "
        "write batches (imports, backfill, replays of the spool); 1 = one connection.")
    timescaledb_value_grid: ValueGrid = Field(
        default="binary", description="TimescaleDB: the grid the 1 s statistics are rounded to "
        "at their declared resolution. `binary` (1/1024 for 3 decimals: 20.0009765625 V) "
        "compresses about 4x better than `decimal` (20.001 V); `round(x::numeric, 3)` shows "
        "the decimal value. Plain PostgreSQL and DuckDB always store decimal values.")
    sql_timeout_s: float = Field(
        default=30.0, gt=0, le=86_400, description="User SQL (`sunarchive sql`, POST "
        "/api/v1/sql): a statement running longer is cancelled.")
    sql_max_rows: int = Field(
        default=100_000, gt=0, le=100_000_000, description="User SQL: a result with more "
        "rows is refused (narrow it with WHERE, LIMIT or an aggregate).")
    postgres_reader_role: str = Field(
        default="sunarchive_reader", min_length=1, max_length=63,
        description="PostgreSQL: the role user SQL runs as. `setup` creates it (LOGIN, SELECT "
        "on the store's tables only) when the database_url role may create roles "
        "(docs/postgresql.md).")
    postgres_reader_password: SecretStr | None = Field(
        default=None, json_schema_extra={"secret": True},
        description="PostgreSQL: password of postgres_reader_role; `setup` sets it, user SQL "
        "logs in with it (unset: the server must let the role in without one).")
    postgres_sql_as_owner: bool = Field(
        default=False, description="PostgreSQL fallback: run user SQL as the database_url "
        "role instead of postgres_reader_role (still one query in a READ ONLY transaction "
        "with the limits above, but a superuser role can read server files).")
    retention_1s_days: float | None = Field(default=None, gt=0, le=MAX_DAYS, description="Keep "
                                            "1-second statistics this long; unset = forever.")
    retention_5min_days: float | None = Field(default=None, gt=0, le=MAX_DAYS, description="Keep "
                                              "5-minute rollups this long; unset = forever.")
    retention_1hour_days: float | None = Field(default=None, gt=0, le=MAX_DAYS,
                                               description="Keep hourly rollups this long; "
                                               "unset = forever.")
    retention_daily_days: float | None = Field(default=None, gt=0, le=MAX_DAYS,
                                               description="Keep daily rollups this long; "
                                               "unset = forever.")
    maintenance_interval_s: float = Field(default=60.0, gt=0, le=86_400, description="How "
                                          "often retention (and other maintenance) runs.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Log level (case-insensitive).")
    http_enabled: bool = Field(default=True, description="Serve the HTTP API and dashboard "
                               "while collecting (run, demo).")
    http_host: str = Field(default="127.0.0.1", description="HTTP bind address. Without "
                           "tokens only a loopback address is allowed (see http_insecure).")
    http_port: int = Field(default=8080, ge=1, le=65535, description="HTTP port.")
    http_insecure: bool = Field(default=False, description="Allow a non-loopback bind "
                                "without any token (anyone on the network can read and "
                                "write).")
    http_read_tokens: list[SecretStr] = Field(
        default_factory=list, json_schema_extra={"secret": True},
        description="Tokens allowed to read (REST, live feed, dashboard). With any token "
                    "set, every request needs one except /ping, /health, /ready, "
                    "/api/v1/health, /docs, /openapi.json and the dashboard page.")
    http_write_tokens: list[SecretStr] = Field(
        default_factory=list, json_schema_extra={"secret": True},
        description="Tokens allowed to write (InfluxDB endpoints) and read.")
    http_tokens_file: Path | None = Field(
        default=None, description="File with one token per line as 'read TOKEN' or "
        "'write TOKEN' (# comments); added to the tokens above.")
    http_max_body_mb: float = Field(default=10.0, gt=0, le=4096, description="Largest request "
                                    "body the write endpoints accept, decompressed (413 "
                                    "above).")
    http_header_timeout_s: float = Field(default=10.0, gt=0, le=300, description="How long a "
                                         "client may take to send a request's line and "
                                         "headers (from connecting, or from the first byte of "
                                         "a later request) before the connection is closed; "
                                         "also the longest pause inside a request body.")
    http_keep_alive_s: int = Field(default=5, ge=1, le=3600, description="How long an idle "
                                   "connection stays open after a response, waiting for the "
                                   "next request.")
    max_future_s: float = Field(
        default=300.0, gt=0, le=31_536_000, description="Live inputs (the InfluxDB write "
        "endpoints, MQTT, TCP) refuse points stamped more than this far ahead of the clock, "
        "each with its line; imports and the simulator follow their own clock.")
    max_measurements: int = Field(
        default=1000, gt=0, le=1_000_000, description="The InfluxDB write endpoints create "
        "no measurement beyond this many (the lines of a new one are refused with a 400).")
    max_tags_per_series: int = Field(
        default=64, gt=0, le=1024, description="The InfluxDB write endpoints refuse a line "
        "with more tags, and a new measurement with more tag keys.")
    max_fields_per_measurement: int = Field(
        default=256, gt=0, le=1024, description="The InfluxDB write endpoints refuse the "
        "lines of a new measurement with more fields.")
    influxdb: InfluxSettings = Field(
        default_factory=InfluxSettings,
        description="InfluxDB mirror (docs/influxdb-mirror.md); also from the upstream "
                    "INFLUXDB_* variables.")
    simulator: SimulatorSettings = Field(
        default_factory=SimulatorSettings,
        description="Built-in simulator settings, used when sources is empty.")
    sources: list[SourceConfig] = Field(
        default_factory=list,
        description="Data sources, each a table with a type (see docs/sources.md) and a "
                    "unique name plus that type's settings; empty = one simulator with the "
                    "simulator settings.")

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError(f"unknown time zone {value!r}; use an IANA name such as "
                             "Europe/Berlin or UTC") from None
        return value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        if not value.startswith(("duckdb:///", "postgresql://", "postgres://")):
            raise ValueError("expected duckdb:///path/to/file.duckdb or "
                             "postgresql://user@host:port/dbname")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("sources")
    @classmethod
    def _unique_source_names(cls, value: list[SourceConfig]) -> list[SourceConfig]:
        seen: set[str] = set()
        for source in value:
            if source.name in seen:
                raise ValueError(f"duplicate source name {source.name!r}")
            seen.add(source.name)
        return value

    @property
    def zoneinfo(self) -> ZoneInfo:
        """The site time zone."""
        return ZoneInfo(self.timezone)

    def effective_sources(self) -> list[SourceConfig]:
        """``sources``, or one simulator with the ``simulator`` settings if it is empty."""
        if self.sources:
            return list(self.sources)
        return [SimulatorSource(**self.simulator.model_dump())]


# --------------------------------------------------------------------------- description


@dataclass(frozen=True)
class SettingDoc:
    """One leaf setting, for docs and help output."""

    name: str          #: dotted name, e.g. ``simulator.panels``
    env_var: str       #: e.g. ``SUNARCHIVE_SIMULATOR__PANELS``
    type: str          #: human-readable type with constraints, e.g. ``int (> 0)``
    default: Any       #: the default value (``None`` = unset)
    unit: str | None   #: from the name suffix, e.g. ``s`` for ``lateness_s``
    help: str          #: the field description
    secret: bool = False

    @property
    def default_text(self) -> str:
        """The default as text: JSON-like, ``None`` for unset."""
        if self.default is None:
            return "None"
        if isinstance(self.default, Path):
            return str(self.default)
        if isinstance(self.default, str):
            return self.default
        if isinstance(self.default, list | dict):
            return json.dumps(self.default)
        return repr(self.default)


@dataclass(frozen=True)
class _Leaf:
    path: tuple[str, ...]
    field: FieldInfo

    @property
    def name(self) -> str:
        return ".".join(self.path)

    @property
    def env_var(self) -> str:
        return ENV_PREFIX + ENV_NESTED_DELIMITER.join(self.path).upper()

    @property
    def secret(self) -> bool:
        extra = self.field.json_schema_extra
        return isinstance(extra, dict) and extra.get("secret") is True

    @property
    def optional(self) -> bool:
        return type(None) in _union_members(self.field.annotation)

    @property
    def structured(self) -> bool:
        """True for list/dict/model values, which the environment gives as JSON."""
        return any(get_origin(t) in (list, dict) or _is_model(t)
                   for t in _union_members(self.field.annotation))


def _union_members(annotation: Any) -> tuple[Any, ...]:
    if get_origin(annotation) in (Union, types.UnionType):
        return get_args(annotation)
    return (annotation,)


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _leaves(model: type[BaseModel] = Settings,
            prefix: tuple[str, ...] = ()) -> Iterator[_Leaf]:
    for name, info in model.model_fields.items():
        path = (*prefix, name)
        if _is_model(info.annotation):
            yield from _leaves(info.annotation, path)  # type: ignore[arg-type]
        else:
            yield _Leaf(path, info)


def _type_text(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin is Annotated:
        return _type_text(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        args = get_args(annotation)
        parts = [_type_text(a) for a in args if a is not type(None)]
        if type(None) in args:
            parts.append("None")
        return " | ".join(parts)
    if origin is Literal:
        return "one of " + ", ".join(str(v) for v in get_args(annotation))
    if origin is list:
        return f"list[{_type_text(get_args(annotation)[0])}]"
    if annotation is AwareDatetime:
        return "datetime with offset"
    if annotation is SecretStr:
        return "secret str"
    if isinstance(annotation, type) and issubclass(annotation, Path):
        return "path"
    if _is_model(annotation):
        return str(annotation.__name__)
    return getattr(annotation, "__name__", str(annotation))


def _constraint_text(info: FieldInfo) -> str:
    parts: list[str] = []
    for item in info.metadata:
        if isinstance(item, annotated_types.Gt):
            parts.append(f"> {item.gt}")
        elif isinstance(item, annotated_types.Ge):
            parts.append(f"≥ {item.ge}")
        elif isinstance(item, annotated_types.Lt):
            parts.append(f"< {item.lt}")
        elif isinstance(item, annotated_types.Le):
            parts.append(f"≤ {item.le}")
        elif isinstance(item, annotated_types.MinLen):
            parts.append(f"length ≥ {item.min_length}")
    return f" ({', '.join(parts)})" if parts else ""


def unit_of(name: str) -> str | None:
    """The unit implied by a setting name's suffix, or ``None``."""
    for suffix, unit in UNIT_SUFFIXES.items():
        if name.endswith(suffix):
            return unit
    return None


def describe_settings() -> list[SettingDoc]:
    """Every leaf setting (nested models flattened to dotted names), in schema order."""
    docs: list[SettingDoc] = []
    for leaf in _leaves():
        info = leaf.field
        default = info.get_default(call_default_factory=True)
        if isinstance(default, BaseModel):  # pragma: no cover - models are flattened
            default = default.model_dump(mode="json")
        docs.append(SettingDoc(
            name=leaf.name,
            env_var=leaf.env_var,
            type=_type_text(info.annotation) + _constraint_text(info),
            default=default,
            unit=unit_of(leaf.path[-1]),
            help=info.description or "",
            secret=leaf.secret,
        ))
    return docs


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def settings_markdown() -> str:
    """A markdown page with a table of all settings (the content of ``docs/settings.md``)."""
    lines = [
        "# Settings",
        "",
        "<!-- Generated from src/sunarchive/settings.py by settings_markdown(); "
        "do not edit by hand.",
        "     Regenerate: python -m sunarchive.settings > docs/settings.md -->",
        "",
        "Sources, lowest precedence first: defaults, the YAML config file, the `.env` file, "
        "the process environment, command-line flags.",
        "",
        "* YAML keys are the setting names; nested settings are nested mappings "
        "(`simulator: {panels: 8}`). Unknown keys are an error. String values may use "
        "`${VAR}` or `${VAR:-default}`; `$${` is a literal `${`.",
        f"* Environment variables are `{ENV_PREFIX}` plus the name in upper case, nested "
        f"with `{ENV_NESTED_DELIMITER}` (`{ENV_PREFIX}SIMULATOR__PANELS=8`). An empty value "
        "unsets an optional setting; lists are JSON.",
        f"* Secrets can be read from a file: `<VARIABLE>{SECRET_FILE_SUFFIX}=/path` "
        f"(e.g. `{ENV_PREFIX}DATABASE_PASSWORD{SECRET_FILE_SUFFIX}`); surrounding whitespace "
        "is stripped.",
        "* Numbers must be finite (`.inf`, `.nan` and `inf` are refused) and within the range "
        "shown in the Type column; a value outside it stops the start with one line naming "
        "the key. The same holds for the keys of every source (docs/sources.md).",
        "",
        "| Setting | Environment variable | Type | Default | Unit | Description |",
        "|---|---|---|---|---|---|",
    ]
    for doc in describe_settings():
        description = doc.help + (" Secret." if doc.secret else "")
        cells = [f"`{doc.name}`", f"`{doc.env_var}`", doc.type, f"`{doc.default_text}`",
                 doc.unit or "", description]
        lines.append("| " + " | ".join(_md_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- loading

_Path = tuple[str | int, ...]

_VAR_RE = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\{")


def _dotted(path: _Path) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + part
    return text or "(top level)"


class _Layers:
    """The merged raw data of all sources and, per key path, which source gave it."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.origins: dict[_Path, str] = {}

    def set(self, path: tuple[str, ...], value: Any, origin: str) -> None:
        node = self.data
        for i, key in enumerate(path[:-1]):
            child = node.get(key)
            if not isinstance(child, dict):
                child = node[key] = {}
                self._forget(path[:i + 1])
            self.origins[path[:i + 1]] = origin
            node = child
        self._merge(node, path, value, origin)

    def _merge(self, node: dict[str, Any], path: tuple[str, ...], value: Any,
               origin: str) -> None:
        key = path[-1]
        if isinstance(value, dict):
            child = node.get(key)
            if not isinstance(child, dict):
                child = node[key] = {}
                self._forget(path)
            self.origins[path] = origin
            for sub_key, sub_value in value.items():
                self._merge(child, (*path, sub_key), sub_value, origin)
        else:
            node[key] = value
            self._forget(path)
            self.origins[path] = origin

    def _forget(self, prefix: _Path) -> None:
        for path in [p for p in self.origins if p[:len(prefix)] == prefix]:
            del self.origins[path]

    def origin_of(self, path: _Path) -> str:
        for end in range(len(path), 0, -1):
            origin = self.origins.get(path[:end])
            if origin is not None:
                return origin
        return "defaults"


def _substitute(value: str, lookup: Mapping[str, str], where: str) -> str:
    def replace(match: re.Match[str]) -> str:
        text = match.group(0)
        if text == "$${":
            return "${"
        name = match.group(1)
        if name is None:
            raise ConfigError(f"{where}: malformed variable reference; use ${{NAME}} or "
                              "${NAME:-default}, or $${ for a literal ${")
        found = lookup.get(name)
        default = match.group(2)
        if default is not None and not found:
            return default
        if found is None:
            raise ConfigError(f"{where}: environment variable {name} is not set and has no "
                              f"default (use ${{{name}:-default}} to give one)")
        return found

    return _VAR_RE.sub(replace, value)


def _expand(node: Any, lookup: Mapping[str, str], file: Path, path: _Path) -> Any:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if not isinstance(key, str):
                raise ConfigError(f"{file}: {_dotted((*path, str(key)))}: keys must be "
                                  "strings")
            out[key] = _expand(value, lookup, file, (*path, key))
        return out
    if isinstance(node, list):
        return [_expand(v, lookup, file, (*path, i)) for i, v in enumerate(node)]
    if isinstance(node, str):
        return _substitute(node, lookup, f"{file}: {_dotted(path)}")
    return node


def _read_yaml(file: Path, lookup: Mapping[str, str]) -> dict[str, Any]:
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read config file: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{file}: {_not_utf8(exc)}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file}: invalid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: expected a mapping of setting names to values at the top "
                          f"level, got {type(data).__name__}")
    expanded: dict[str, Any] = _expand(data, lookup, file, ())
    return expanded


def _not_utf8(exc: UnicodeDecodeError) -> str:
    return (f"not UTF-8 text: byte {exc.object[exc.start]:#04x} at position {exc.start}; "
            "save the file as UTF-8")


def _read_dotenv(file: Path) -> dict[str, str]:
    """The variables of a ``.env`` file; ``{}`` when there is none."""
    if not file.is_file():
        return {}
    try:
        values = dotenv_values(file, interpolate=False)
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{file}: {_not_utf8(exc)}") from None
    return {k: v for k, v in values.items() if v is not None}


def _apply_env(layers: _Layers, variables: Mapping[str, str | None],
               origin_of_var: Callable[[str], str]) -> None:
    """Put ``SUNARCHIVE_*`` values (and ``*_FILE`` secrets) into ``layers``."""
    for leaf in _leaves():
        var = leaf.env_var
        raw = variables.get(var)
        file_var = var + SECRET_FILE_SUFFIX
        file_name = variables.get(file_var) if leaf.secret else None
        if raw is not None and file_name is not None:
            raise ConfigError(f"{origin_of_var(var)}: {leaf.name}: set either {var} or "
                              f"{file_var}, not both")
        if file_name is not None:
            origin = origin_of_var(file_var)
            try:
                content = Path(file_name).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(f"{origin}: {leaf.name}: cannot read secret file "
                                  f"{file_name}: {exc.strerror or exc}") from None
            layers.set(leaf.path, content, origin)
        elif raw is not None:
            origin = origin_of_var(var)
            value: Any = raw
            if raw == "" and leaf.optional:
                value = None
            elif leaf.structured:
                try:
                    value = json.loads(raw)
                except json.JSONDecodeError as exc:
                    raise ConfigError(f"{origin}: {leaf.name}: expected JSON: {exc}") from None
            layers.set(leaf.path, value, origin)


def _drop_none(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    return value


def _error_path(loc: tuple[str | int, ...]) -> _Path:
    """Drop the union tag pydantic puts into locations inside ``sources``."""
    if (len(loc) > 2 and loc[0] == "sources" and isinstance(loc[1], int)
            and loc[2] in SOURCE_TAGS):
        return (*loc[:2], *loc[3:])
    return loc


def _error_message(error: Mapping[str, Any]) -> str:
    message = str(error["msg"])
    if error["type"] == "extra_forbidden":
        return "unknown setting (extra inputs are not permitted)"
    if error["type"] == "timezone_aware":
        return ("time has no UTC offset; give an explicit offset such as +00:00 or Z "
                f"({message})")
    if error["type"] == "union_tag_not_found":
        return f"missing type (one of: {', '.join(sorted(SOURCE_TAGS))})"
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            return message[len(prefix):]
    return message


UPSTREAM_DATABASE_VARS = ("DATABASE_URL", "TIMESCALE_HOST", "TIMESCALE_PORT", "TIMESCALE_USER",
                          "TIMESCALE_PASSWORD", "TIMESCALE_PASSWORD_FILE", "TIMESCALE_DATABASE")


def _apply_upstream_database_env(layers: _Layers, env: Mapping[str, str]) -> None:
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


def _apply_upstream_sensor_env(layers: _Layers, env: Mapping[str, str]) -> None:
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


def _apply_upstream_influxdb_env(layers: _Layers, env: Mapping[str, str]) -> None:
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
        value = None if raw == "" and type(None) in _union_members(info.annotation) else raw
        layers.set(("influxdb", name), value, f"environment variable {var}")


def load_settings(config_file: Path | None = None,
                  overrides: Mapping[str, Any] | None = None,
                  env: Mapping[str, str] | None = None,
                  dotenv_file: Path | None = Path(".env")) -> Settings:
    """Build :class:`Settings` from defaults < ``config_file`` < ``dotenv_file`` < ``env``
    (``None`` = ``os.environ``) < ``overrides``.

    ``overrides`` keys are setting names, dotted for nested ones (``"simulator.panels"``) or
    with a mapping value (``{"simulator": {"panels": 8}}``); ``None`` values are ignored.
    A missing ``dotenv_file`` is skipped; ``dotenv_file=None`` reads no ``.env`` file.
    Raises :class:`ConfigError` naming the source, the dotted key and the reason.
    """
    environ: Mapping[str, str] = os.environ if env is None else env
    dotenv = _read_dotenv(dotenv_file) if dotenv_file is not None else {}

    layers = _Layers()
    if config_file is not None:
        lookup = {**dotenv, **environ}
        for key, value in _read_yaml(config_file, lookup).items():
            layers.set((key,), value, str(config_file))
    if dotenv:
        _apply_env(layers, dotenv, lambda var: f"{dotenv_file} (variable {var})")
    _apply_env(layers, environ, lambda var: f"environment variable {var}")
    _apply_upstream_database_env(layers, {**dotenv, **environ})
    _apply_upstream_influxdb_env(layers, {**dotenv, **environ})
    _apply_upstream_sensor_env(layers, {**dotenv, **environ})
    for key, value in (overrides or {}).items():
        if value is not None:
            layers.set(tuple(key.split(".")), _drop_none(value), "override")

    try:
        return Settings.model_validate(layers.data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            path = _error_path(tuple(error["loc"]))
            problems.append(f"{layers.origin_of(path)}: {_dotted(path)}: "
                            f"{_error_message(error)}")
        # ``from None``: the pydantic error would show input values, which may be secrets.
        raise ConfigError("\n".join(problems)) from None


if __name__ == "__main__":  # pragma: no cover
    sys.stdout.write(settings_markdown())
