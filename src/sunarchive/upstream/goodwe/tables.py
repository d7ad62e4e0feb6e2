"""``charging_sessions``, ``system_configs`` and ``analytics_reports``: the plan's relational
tables (``shared/upstream-sql/goodwe_tables.sql``) on every engine, and their writes and reads.

Columns, their order and their SQL types are the plan's. Where an engine lacks a type it has the
equivalent: DuckDB has no ``SERIAL`` (an ``INTEGER`` key drawing from a sequence) and no
``JSONB`` (``JSON``). Instants are the store's: ``TIMESTAMPTZ`` on PostgreSQL, a UTC
``TIMESTAMP`` on DuckDB, and ``created_at``/``updated_at`` default to the UTC now on both.
``system_configs`` is versioned: writing a name's new version deactivates the one before in the
same transaction, so one row per name is active (PostgreSQL also enforces it with a partial
unique index; DuckDB has none, the write path keeps it).

Every write runs on the store's writer connection under its lock, in one transaction, as the
import records in ``sunarchive_meta`` do (the process that opened the store for writing is
its one writer).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from sunarchive.model import InputError

if TYPE_CHECKING:
    from sunarchive.storage.migrations import Schema

TABLES = ("charging_sessions", "system_configs", "analytics_reports")
SESSION_COLUMNS = ("id", "session_id", "start_time", "end_time", "battery_soc_start",
                   "battery_soc_end", "energy_charged_kwh", "average_price_pln",
                   "total_cost_pln", "status", "created_at")
DECIMALS = {"energy_charged_kwh": (10, 3), "average_price_pln": (10, 4),
            "total_cost_pln": (10, 2)}
"""The plan's ``DECIMAL(precision, scale)`` columns of ``charging_sessions``."""
TEXT_LENGTHS = {"session_id": 50, "status": 20, "config_name": 100, "version": 20,
                "report_type": 50}
"""The plan's ``VARCHAR(n)`` limits (PostgreSQL enforces them; DuckDB does not, so every
write checks them first)."""


def statements(s: Schema) -> list[str]:
    """The DDL of the three tables on ``s``'s engine (idempotent)."""
    if s.postgres:
        json_type, now = "JSONB", "NOW()"
        sequences: list[str] = []
    else:
        sequences = [f"CREATE SEQUENCE IF NOT EXISTS {t}_id_seq" for t in TABLES]
        json_type, now = "JSON", "timezone('UTC', now())"
    instant = s.instant

    def pk(table: str) -> str:
        return "id SERIAL PRIMARY KEY" if s.postgres else \
            f"id INTEGER PRIMARY KEY DEFAULT nextval('{table}_id_seq')"

    out = [*sequences, f"""CREATE TABLE IF NOT EXISTS charging_sessions (
        {pk("charging_sessions")},
        session_id VARCHAR(50) UNIQUE,
        start_time {instant},
        end_time {instant},
        battery_soc_start INTEGER,
        battery_soc_end INTEGER,
        energy_charged_kwh DECIMAL(10,3),
        average_price_pln DECIMAL(10,4),
        total_cost_pln DECIMAL(10,2),
        status VARCHAR(20),
        created_at {instant} DEFAULT {now})""",
        f"""CREATE TABLE IF NOT EXISTS system_configs (
        {pk("system_configs")},
        config_name VARCHAR(100),
        config_data {json_type},
        version VARCHAR(20),
        is_active BOOLEAN DEFAULT TRUE,
        created_at {instant} DEFAULT {now},
        updated_at {instant} DEFAULT {now})""",
        f"""CREATE TABLE IF NOT EXISTS analytics_reports (
        {pk("analytics_reports")},
        report_type VARCHAR(50),
        report_date DATE,
        report_data {json_type},
        created_at {instant} DEFAULT {now})""",
        "CREATE INDEX IF NOT EXISTS charging_sessions_start_time ON charging_sessions "
        "(start_time)"]
    if s.postgres:
        out.append("CREATE UNIQUE INDEX IF NOT EXISTS system_configs_one_active ON "
                   "system_configs (config_name) WHERE is_active")
    return out


def create(s: Schema) -> None:
    """Migration step: create the tables (a store that has them keeps them as they are)."""
    for statement in statements(s):
        s.execute(statement, None)


# -- rows -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Session:
    """One charging session as the plan's columns hold it (instants aware, UTC)."""

    session_id: str
    start_time: datetime | None = None
    end_time: datetime | None = None
    battery_soc_start: int | None = None
    battery_soc_end: int | None = None
    energy_charged_kwh: Decimal | None = None
    average_price_pln: Decimal | None = None
    total_cost_pln: Decimal | None = None
    status: str | None = None
    created_at: datetime | None = None

    def values(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _schema(store: Any) -> Schema:
    schema: Schema = store._schema()
    return schema


def _instant(store: Any, value: datetime | None) -> datetime | None:
    """A parameter for an instant column: aware UTC on PostgreSQL, naive UTC on DuckDB."""
    if value is None:
        return None
    result: datetime = store.time_param(value.timestamp())
    return result


def check_text(column: str, value: str | None) -> None:
    limit = TEXT_LENGTHS.get(column)
    if value is not None and limit is not None and len(value) > limit:
        raise InputError(f"{column}: {len(value)} characters, the column holds {limit} "
                         f"(VARCHAR({limit}))")


def insert_sessions(store: Any, sessions: Sequence[Session], chunk_rows: int = 200
                    ) -> list[str]:
    """Insert the sessions whose ``session_id`` the table does not hold yet (an existing row
    is kept as it is: importing again stores nothing twice); the ids inserted."""
    s = _schema(store)
    p = s.p
    columns = [f.name for f in fields(Session) if f.name != "created_at"]
    inserted: list[str] = []
    with store._lock, s.transaction():
        for lo in range(0, len(sessions), chunk_rows):
            chunk = sessions[lo:lo + chunk_rows]
            known = {str(r[0]) for r in s.fetch(
                f"SELECT session_id FROM charging_sessions WHERE session_id IN "
                f"({', '.join([p] * len(chunk))})", [x.session_id for x in chunk])}
            for session in chunk:
                if session.session_id in known:
                    continue
                known.add(session.session_id)
                values = session.values()
                names = [*columns, *(["created_at"] if session.created_at else [])]
                params = [_instant(store, values[n]) if isinstance(values[n], datetime)
                          else values[n] for n in names]
                s.execute(f"INSERT INTO charging_sessions ({', '.join(names)}) VALUES "
                          f"({', '.join([p] * len(names))})", params)
                inserted.append(session.session_id)
    return inserted


def _select_sessions(store: Any, where: str, params: Sequence[Any]) -> list[dict[str, Any]]:
    table = store._read_arrow(f"SELECT {', '.join(SESSION_COLUMNS)} FROM charging_sessions "
                              f"WHERE {where} ORDER BY start_time, id", list(params))
    return [_aware(row) for row in _rows(table)]


def sessions_between(store: Any, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Sessions that started in [start, end), oldest first (the plan's
    ``get_charging_sessions(start_date, end_date)``)."""
    p = _schema(store).p
    return _select_sessions(store, f"start_time >= {p} AND start_time < {p}",
                            [_instant(store, start), _instant(store, end)])


def sessions_by_id(store: Any, ids: Sequence[str], chunk_rows: int = 500
                   ) -> dict[str, dict[str, Any]]:
    """The stored sessions among ``ids``, by session id."""
    p = _schema(store).p
    out: dict[str, dict[str, Any]] = {}
    for lo in range(0, len(ids), chunk_rows):
        chunk = list(ids[lo:lo + chunk_rows])
        for row in _select_sessions(store, f"session_id IN ({', '.join([p] * len(chunk))})",
                                    chunk):
            out[str(row["session_id"])] = row
    return out


def _rows(table: pa.Table) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = table.to_pylist() if table.num_rows else []
    return rows


def _aware(row: dict[str, Any]) -> dict[str, Any]:
    """Instants as aware UTC datetimes (DuckDB gives naive UTC ones), JSON text parsed,
    DECIMAL columns as :class:`Decimal` at their scale."""
    out = {}
    for key, value in row.items():
        if isinstance(value, datetime):
            value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        elif key.endswith("_data") and isinstance(value, str):
            value = json.loads(value)
        elif key in DECIMALS and value is not None:   # PostgreSQL's numeric comes as text
            value = Decimal(str(value)).quantize(Decimal(1).scaleb(-DECIMALS[key][1]))
        out[key] = value
    return out


# -- system_configs and analytics_reports ----------------------------------------------------
def put_config(store: Any, name: str, data: Any, version: str | None = None
               ) -> dict[str, Any]:
    """Store a new version of configuration ``name`` as the active one (the version before is
    deactivated in the same transaction); ``version`` defaults to the next integer."""
    check_text("config_name", name)
    s = _schema(store)
    p = s.p
    now = _instant(store, datetime.now(UTC))
    with store._lock, s.transaction():
        rows = s.fetch(f"SELECT version FROM system_configs WHERE config_name = {p}", [name])
        versions = {str(r[0]) for r in rows}
        if version is None:
            numbers = [int(v) for v in versions if v.isdigit()]
            version = str(max(numbers, default=0) + 1)
        check_text("version", version)
        if version in versions:
            raise InputError(f"system_configs: {name!r} already has version {version!r}")
        s.execute(f"UPDATE system_configs SET is_active = FALSE, updated_at = {p} "
                  f"WHERE config_name = {p} AND is_active", [now, name])
        s.execute(f"INSERT INTO system_configs (config_name, config_data, version, is_active, "
                  f"created_at, updated_at) VALUES ({p}, {_json(s)}, {p}, TRUE, {p}, {p})",
                  [name, json.dumps(data), version, now, now])
    return active_config(store, name) or {}


def active_config(store: Any, name: str) -> dict[str, Any] | None:
    """The active version of configuration ``name``, or None."""
    p = _schema(store).p
    rows = _rows(store._read_arrow(
        "SELECT id, config_name, config_data, version, is_active, created_at, updated_at "
        f"FROM system_configs WHERE config_name = {p} AND is_active", [name]))
    return _aware(rows[0]) if rows else None


def add_report(store: Any, report_type: str, report_date: date, data: Any) -> None:
    """Store one analytics report."""
    check_text("report_type", report_type)
    s = _schema(store)
    p = s.p
    with store._lock, s.transaction():
        s.execute(f"INSERT INTO analytics_reports (report_type, report_date, report_data, "
                  f"created_at) VALUES ({p}, {p}, {_json(s)}, {p})",
                  [report_type, report_date, json.dumps(data),
                   _instant(store, datetime.now(UTC))])


def _json(s: Schema) -> str:
    return f"{s.p}::JSONB" if s.postgres else f"{s.p}::JSON"
