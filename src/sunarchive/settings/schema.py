"""The settings schema: every setting with its type, range, default and description
(:class:`Settings`), and its *leaves* — each setting flattened to a dotted name and its
``SUNARCHIVE_*`` environment variable, which the loading layers and the generated docs share."""

from __future__ import annotations

import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic.fields import FieldInfo

from sunarchive.resolution import ValueGrid
from sunarchive.sinks.config import InfluxSettings
from sunarchive.sources.catalog import SourceConfig
from sunarchive.sources.config import SimulatorSettings, SimulatorSource
from sunarchive.upstream.ps100 import Ps100Settings

ENV_PREFIX = "SUNARCHIVE_"
ENV_NESTED_DELIMITER = "__"
SECRET_FILE_SUFFIX = "_FILE"

#: Unknown keys are errors; ``.inf`` and ``.nan`` are refused ("Input should be a finite number").
_STRICT = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
MAX_DAYS = 36_500
"""Longest retention, in days (100 years); longer is "forever", which is unset."""


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
    ps100: Ps100Settings = Field(
        default_factory=Ps100Settings,
        description="PS100 panels: the ps100_panels registry and the derived columns of "
                    "ps100_readings_1s (docs/upstream/ps100.md).")
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


# --------------------------------------------------------------------------- leaves


@dataclass(frozen=True)
class Leaf:
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
        return type(None) in union_members(self.field.annotation)

    @property
    def structured(self) -> bool:
        """True for list/dict/model values, which the environment gives as JSON."""
        return any(get_origin(t) in (list, dict) or is_model(t)
                   for t in union_members(self.field.annotation))


def union_members(annotation: Any) -> tuple[Any, ...]:
    if get_origin(annotation) in (Union, types.UnionType):
        return get_args(annotation)
    return (annotation,)


def is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def leaves(model: type[BaseModel] = Settings,
           prefix: tuple[str, ...] = ()) -> Iterator[Leaf]:
    for name, info in model.model_fields.items():
        path = (*prefix, name)
        if is_model(info.annotation):
            yield from leaves(info.annotation, path)  # type: ignore[arg-type]
        else:
            yield Leaf(path, info)
