"""Settings of the InfluxDB mirror (the ``influxdb`` section of the settings)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

UPSTREAM_PREFIX = "INFLUXDB_"
"""Plain variables of the upstream setups: ``INFLUXDB_<NAME>`` for every setting below
(``INFLUXDB_HOST``, ``INFLUXDB_TOKEN`` or ``INFLUXDB_TOKEN_FILE``, ...)."""


class InfluxSettings(BaseModel):
    """Mirror what is collected to InfluxDB (3, 2 or 1.x) besides sunarchive's own store."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    enabled: bool = Field(default=False, description="Mirror to InfluxDB (also "
                          "INFLUXDB_ENABLED).")
    host: str = Field(default="http://localhost:8181", description="InfluxDB URL (also "
                      "INFLUXDB_HOST); required when enabled. As with the official client, a "
                      "host without a scheme means https and a host without a port means port "
                      "443.")
    token: SecretStr | None = Field(default=None, json_schema_extra={"secret": True},
                                    description="API token (also INFLUXDB_TOKEN or "
                                    "INFLUXDB_TOKEN_FILE); required when enabled, but for the "
                                    "v1 API; the v1 API sends it as the password.")
    database: str = Field(default="sunarchive", min_length=1, description="Database (v3, v1) "
                          "or bucket (v2) (also INFLUXDB_DATABASE).")
    org: str | None = Field(default=None, description="Organization for the v2 API (also "
                            "INFLUXDB_ORG).")
    username: str | None = Field(default=None, description="User name for the v1 API (basic "
                                 "auth with the token as password).")
    write_api: Literal["v3", "v2", "v1"] = Field(
        default="v3", description="Write API: v3 (/api/v3/write_lp, partial writes), v2 "
        "(/api/v2/write) or v1 (/write).")
    precision: Literal["ns", "us", "ms", "s"] = Field(
        default="ns", description="Timestamp precision sent (ns, us, ms, s); timestamps are "
        "truncated to it.")
    send: Literal["raw", "1s"] = Field(
        default="raw", description="What to send: raw readings as collected, or the 1 s "
        "statistics rows (measurement <name>_1s).")
    measurements: list[str] = Field(
        default_factory=list, description="Measurements to mirror (empty = all); a comma "
        "separated list is accepted too.")
    batch_size: int = Field(default=5000, gt=0, le=1_000_000, description="Points per write "
                            "request at most.")
    flush_interval_s: float = Field(default=1.0, gt=0, le=3600, description="Longest time a point "
                                    "waits before it is sent.")
    gzip: bool = Field(default=True, description="Compress request bodies with gzip.")
    timeout_s: float = Field(default=10.0, gt=0, le=3600, description="Timeout of one write "
                             "request.")
    retry_min_s: float = Field(default=1.0, gt=0, le=86_400, description="First wait after a "
                               "failed write; doubles up to retry_max_s. A Retry-After header "
                               "on 429/5xx wins.")
    retry_max_s: float = Field(default=60.0, gt=0, le=86_400, description="Longest wait between "
                               "attempts while InfluxDB is unreachable.")
    queue_max_points: int = Field(default=1_000_000, gt=0, le=100_000_000,
                                  description="Points held in memory "
                                  "for the mirror; beyond that they go to the disk buffer.")
    buffer_dir: Path | None = Field(default=None, description="Disk buffer of points "
                                    "InfluxDB has not taken yet (default: beside the spool, "
                                    "<store>.influxdb-buffer).")
    buffer_max_mb: float = Field(default=1024.0, gt=0, le=1_048_576, description="Size limit "
                                 "of the disk buffer.")
    buffer_full_policy: Literal["drop_oldest", "drop_newest"] = Field(
        default="drop_oldest", description="When the disk buffer is full: drop the oldest "
        "buffered points or the newest ones (logged once per episode, counted in status).")
    stop_timeout_s: float = Field(default=10.0, ge=0, le=3600, description="At stop, how long the "
                                  "mirror keeps sending before it leaves the rest in the disk "
                                  "buffer for the next start.")

    @field_validator("measurements", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @field_validator("host")
    @classmethod
    def _check_host(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        check_host(value.strip())
        return value.strip()

    @model_validator(mode="after")
    def _retry_order(self) -> InfluxSettings:
        if self.retry_max_s < self.retry_min_s:
            raise ValueError("retry_max_s must not be smaller than retry_min_s")
        return self

    @model_validator(mode="after")
    def _enabled_needs_a_target(self) -> InfluxSettings:
        """Enabled, the mirror needs a host given (the default is only a format example) and,
        but for the v1 API (an influxd without auth), a token."""
        if not self.enabled:
            return self
        if "host" not in self.model_fields_set:
            raise ValueError("influxdb.host is required when the mirror is enabled "
                             "(INFLUXDB_HOST)")
        if self.token is None and self.write_api != "v1":
            raise ValueError(f"influxdb.token is required for the {self.write_api} API when "
                             "the mirror is enabled (INFLUXDB_TOKEN or INFLUXDB_TOKEN_FILE)")
        return self


def check_host(host: str) -> None:
    """``ValueError`` naming ``host`` unless it reads as ``[http[s]://]name[:port][/path]``."""
    parts = urlsplit(host if "://" in host else f"https://{host}")
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"{host!r}: the scheme must be http or https")
    if not parts.hostname:
        raise ValueError(f"{host!r} has no host name")
    try:
        parts.port  # noqa: B018 - urlsplit checks the port only when it is read
    except ValueError:
        raise ValueError(f"{host!r}: port must be a number from 0 to 65535") from None
