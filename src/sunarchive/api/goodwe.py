"""The GoodWe plan's data-access API (seed 004, "7.1 Data Access API"): lists of records.

``GET /api/energy-data?start_time=&end_time=&device_id=`` answers the plan's
``get_energy_data``: one record per stored bucket of ``energy_data`` with ``timestamp``, the
tags and each field's value (the bucket's mean; one reading per 1 s bucket at the inverter's
poll rate). ``shape=table`` gives the ``{columns, rows}`` answer of the other read endpoints
(every statistic). ``GET /api/charging-sessions?start_date=&end_date=`` answers
``get_charging_sessions``: the sessions that started in the range, with the plan's columns.
A date without a time (``2025-05-01``) is the site's local midnight; ``end_date`` given as a
date includes that day.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import orjson
from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import Response

from sunarchive.api.context import instant, iso
from sunarchive.api.rest import Reader, _json_default, _range, _read
from sunarchive.query import run_query
from sunarchive.upstream.goodwe.tables import sessions_between

router = APIRouter()
MEASUREMENT = "energy_data"
DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@router.get("/api/energy-data", tags=["energy systems"])
def energy_data(ctx: Reader, start_time: str | None = None, end_time: str | None = None,
                device_id: str | None = None, tier: str = "auto",
                max_points: Annotated[int, Query(ge=1, le=1_000_000)] = 1000,
                shape: Literal["records", "table"] = "records") -> Response:
    """Hybrid inverter readings (``energy_data``) of one device or all in [start_time,
    end_time) (default: the last 24 hours): records ``{timestamp, device_id, data_source,
    location, battery_soc, …}`` oldest first; ``shape=table`` for ``{columns, rows}``."""
    begin, stop = _range(None, None, start_time, end_time)
    tags = {} if device_id is None else {"device_id": device_id}
    if shape == "table":
        return _read(ctx, MEASUREMENT, tier, begin, stop, tags, None, max_points)
    profile = ctx.profile(MEASUREMENT)
    result = run_query(ctx.store, MEASUREMENT, tier, begin, stop, tags, None, max_points)
    table = result.table
    columns = set(table.column_names)
    fields = [(f.name, f"{f.stem}_avg") for f in profile.fields if f"{f.stem}_avg" in columns]
    tag_columns = [(t, profile.tag_column(t)) for t in profile.tags]
    data = table.to_pydict()
    records = []
    counts = data.get("sample_count")
    for i in range(table.num_rows):
        if counts is not None and not counts[i]:
            continue    # a bucket holding only the energy of a reading before it
        record: dict[str, Any] = {"timestamp": iso(data["time"][i])}
        record.update({t: data[c][i] for t, c in tag_columns})
        record.update({name: iso(data[c][i]) for name, c in fields})
        records.append(record)
    return _list_response(records)


@router.get("/api/charging-sessions", tags=["energy systems"])
def charging_sessions(ctx: Reader, start_date: str | None = None,
                      end_date: str | None = None) -> Response:
    """Charging sessions that started in [start_date, end_date) (default: the last 30 days),
    oldest first, with the plan's columns; a date-only ``end_date`` includes that day."""
    zone = ZoneInfo(ctx.timezone)
    stop = _day_or_instant(end_date, "end_date", zone, datetime.now(UTC), end=True)
    begin = _day_or_instant(start_date, "start_date", zone, stop - timedelta(days=30))
    if begin > stop:
        raise HTTPException(400, f"start_date {begin.isoformat()} is after end_date "
                                 f"{stop.isoformat()}")
    rows = sessions_between(ctx.store, begin, stop)
    return _list_response([{k: _value(v) for k, v in row.items()} for row in rows])


def _day_or_instant(value: str | None, name: str, zone: ZoneInfo, default: datetime,
                    end: bool = False) -> datetime:
    if value and DATE_ONLY.match(value.strip()):
        try:
            day = date.fromisoformat(value.strip())
        except ValueError as exc:
            raise HTTPException(400, f"{name}: {exc}") from None
        if end:
            day += timedelta(days=1)
        return datetime.combine(day, time(), zone).astimezone(UTC)
    return instant(value, name, default)


def _list_response(records: list[dict[str, Any]]) -> Response:
    return Response(orjson.dumps(records, default=_json_default), media_type="application/json")


def _value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    return iso(value)
