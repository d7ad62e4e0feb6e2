"""REST reads under ``/api/v1`` plus the upstream lab-rig and energy-system endpoints.

Times in and out are ISO 8601 with an offset; a naive time, an unknown measurement, tag or field
gets a 400/404 whose message names it.
"""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from sunarchive.api.context import ApiContext, instant, iso
from sunarchive.api.inferred import first_type, is_inferred
from sunarchive.model import FieldKind, from_epoch_s
from sunarchive.profiles.spec import FieldSpec
from sunarchive.query import energy_by_period, energy_columns, run_query
from sunarchive.rollup import ALL_TIERS
from sunarchive.storage.tiered import growth_of
from sunarchive.upstream.perocube.measurements import read_devices

router = APIRouter()
LAB_KINDS = {"mpp": "mpp_measurement", "temperature": "temperature_measurement",
             "irradiance": "irradiance_measurement"}


def ctx_of(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx


def reader(request: Request) -> ApiContext:
    ctx = ctx_of(request)
    ctx.authorize(request, "read")
    return ctx


Reader = Annotated[ApiContext, Depends(reader)]


class SqlRequest(BaseModel):
    sql: str


def table_json(table: pa.Table) -> dict[str, Any]:
    """Columns and rows, JSON-ready: times as ISO 8601 with offset, NaN as null, DECIMAL /
    numeric as numbers (doubles), BLOB / bytea as base64 text. Converted column by column
    with Arrow and numpy kernels, not value by value."""
    columns = list(table.column_names)
    matrix = np.empty((table.num_rows, len(columns)), dtype=object)
    for i in range(len(columns)):
        matrix[:, i] = _column_json(table.column(i))
    return {"columns": columns, "rows": matrix.tolist()}


def json_response(payload: dict[str, Any]) -> Response:
    """A JSON response serialized by orjson (NaN → null), for large row sets."""
    return Response(orjson.dumps(payload, default=_json_default),
                    media_type="application/json")


def _json_default(value: Any) -> Any:
    """Values orjson does not know, e.g. inside a LIST or STRUCT column."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, timedelta):
        return value.total_seconds()
    return str(value)


def _column_json(column: pa.ChunkedArray[Any]) -> list[Any] | np.ndarray[Any, Any]:
    kind = column.type
    if pa.types.is_decimal(kind):
        column = pc.cast(column, pa.float64(), safe=False)
        kind = column.type
    if pa.types.is_floating(kind):
        return column.to_numpy()                       # orjson writes NaN as null
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or \
            pa.types.is_fixed_size_binary(kind):
        return [None if v is None else _json_default(v) for v in column.to_pylist()]
    if pa.types.is_timestamp(kind) and column.null_count == 0:
        utc = column if kind.tz is None else pc.cast(column, pa.timestamp(kind.unit))
        stamps = utc.to_numpy()
        if (stamps.astype("datetime64[s]") == stamps).all():
            text = np.datetime_as_string(stamps.astype("datetime64[s]"), unit="s")
            return np.char.add(text, "+00:00").astype(object)
    if pa.types.is_integer(kind) or pa.types.is_string(kind) or pa.types.is_boolean(kind):
        return column.to_pylist()
    return [iso(v) for v in column.to_pylist()]


def _tags(values: list[str]) -> dict[str, str]:
    out = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise HTTPException(400, f"tag {item!r}: write tag=KEY=VALUE")
        out[key] = value
    return out


def _read(ctx: ApiContext, measurement: str, tier: str, start: datetime, end: datetime,
          tags: dict[str, str], fields: list[str] | None, max_points: int) -> Response:
    ctx.profile(measurement)
    result = run_query(ctx.store, measurement, tier, start, end, tags, fields, max_points)
    return json_response({"measurement": measurement, "tier": result.tier,
                          "start": start.isoformat(), "end": end.isoformat(),
                          **table_json(result.table)})


@router.get("/api/v1/measurements", tags=["read"])
def measurements(ctx: Reader) -> list[dict[str, Any]]:
    """Every measurement with its tags and fields (unit, kind; for a state field written as
    text, ``labels`` maps its stored codes to the text), its tables per tier, the column of
    each tag and the statistics columns of each field (SQL names)."""
    labels = ctx.store.state_labels()
    return [{"measurement": p.name, "description": p.description, "tags": list(p.tags),
             "fields": [_field(f, labels.get(p.name, {}).get(f.name), is_inferred(p))
                        for f in p.fields],
             "inferred": is_inferred(p),
             "tables": {tier: p.table(tier) for tier in ALL_TIERS},
             "tag_columns": dict(zip(p.tags, p.tag_column_names, strict=True))}
            for p in ctx.profiles.values()]


def _field(spec: FieldSpec, labels: dict[int, str] | None, inferred: bool) -> dict[str, Any]:
    """A field as listed; ``type`` is its line-protocol type (for an inferred profile the
    type of its first write: ``float``, ``int``, ``uint``, ``bool`` or ``string``)."""
    written = first_type(spec) if inferred else spec.line_type
    out: dict[str, Any] = {"name": spec.name, "unit": spec.unit, "kind": spec.kind.value,
                           "type": written, "description": spec.description,
                           "columns": [c.name for c in spec.columns()]}
    if labels:
        out["labels"] = {str(code): label for code, label in sorted(labels.items())}
    return out


@router.get("/api/v1/measurements/{measurement}", tags=["read"])
def measurement_rows(ctx: Reader, measurement: str, start: str | None = None,
                     end: str | None = None, tier: str = "auto",
                     max_points: Annotated[int, Query(ge=1, le=1_000_000)] = 1000,
                     fields: str | None = None,
                     tag: Annotated[list[str], Query()] = []) -> Response:  # noqa: B006
    """Rows of one measurement in [start, end); ``tier=auto`` picks the coarsest tier with at
    least ``max_points`` buckets. ``tag=panel_id=panel_1`` filters (repeatable)."""
    if tier != "auto" and tier not in ALL_TIERS:
        raise HTTPException(400, f"tier {tier!r} is not one of auto, {', '.join(ALL_TIERS)}")
    stop = instant(end, "end", datetime.now(UTC))
    begin = instant(start, "start", stop - timedelta(hours=24))
    wanted = [f.strip() for f in fields.split(",") if f.strip()] if fields else None
    return _read(ctx, measurement, tier, begin, stop, _tags(tag), wanted, max_points)


@router.get("/api/v1/series", tags=["read"])
def series(ctx: Reader) -> list[dict[str, Any]]:
    """Every series: measurement, tags, first and last stored second."""
    out = []
    names = ctx.store.load_series()
    ranges: dict[str, dict[int, tuple[Any, Any]]] = {}
    for measurement in {k.measurement for k in names}:
        if measurement not in ctx.profiles:
            continue
        table = ctx.store.q(ctx.profile(measurement).table("1s"))
        result = ctx.store.sql(f'SELECT series_id, MIN(time) AS first, MAX(time) AS last '
                               f'FROM {table} GROUP BY series_id').table.to_pylist()
        ranges[measurement] = {int(r["series_id"]): (r["first"], r["last"]) for r in result}
    for key, sid in sorted(names.items(), key=lambda kv: kv[1]):
        profile = ctx.profiles.get(key.measurement)
        if profile is None:
            continue
        first, last = ranges.get(key.measurement, {}).get(sid, (None, None))
        entry = {"measurement": key.measurement, "series_id": sid,
                 "tags": dict(zip(profile.tags, key.tags, strict=True)),
                 "first": iso(first), "last": iso(last)}
        if profile.extra.get("inferred") is True:
            entry["profile"] = {"inferred": True, **growth_of(profile)}
        out.append(entry)
    return out


@router.get("/api/v1/series/names", tags=["read"])
def series_names(ctx: Reader, measurement: str) -> dict[str, Any]:
    """The registry names of a measurement's series (the dashboard's labels): a PS100
    panel's name in ``ps100_panels``, a Perocube device's in ``solar_cell_device``, a HOMEPOT
    device's in ``devices``, each looked up by the series' id tag. Series without a name (or
    whose name is their id) are left out; a measurement without a registry has none."""
    from sunarchive.upstream.names import SOURCES
    from sunarchive.upstream.names import series_names as names_of

    profile = ctx.profile(measurement)
    tags = [dict(zip(profile.tags, key.tags, strict=True))
            for key in sorted(ctx.store.load_series(), key=lambda k: k.tags)
            if key.measurement == measurement]
    source = SOURCES.get(measurement)
    return {"measurement": measurement, "tag": source.tag if source else None,
            "names": names_of(ctx.store, measurement, tags)}


@router.get("/api/v1/latest", tags=["read"])
def latest(ctx: Reader, measurement: str | None = None) -> list[dict[str, Any]]:
    """The newest 1 s values of each series (from the running writer, else from the store)."""
    if measurement is not None:
        ctx.profile(measurement)
    rows = [r for r in ctx.live.snapshot()["latest"]
            if measurement is None or r["measurement"] == measurement]
    if rows:
        return [_latest_row(ctx, r) for r in rows]
    out = []
    for name in [measurement] if measurement else list(ctx.profiles):
        out.extend(_stored_latest(ctx, name))
    return out


def _latest_row(ctx: ApiContext, row: dict[str, Any]) -> dict[str, Any]:
    profile = ctx.profiles[row["measurement"]]
    return {"measurement": row["measurement"], "series_id": row["series_id"],
            "tags": dict(zip(profile.tags, row["tags"], strict=False)),
            "time": datetime.fromtimestamp(row["time_s"], UTC).isoformat(),
            "values": row["values"]}


def _stored_latest(ctx: ApiContext, name: str) -> list[dict[str, Any]]:
    profile = ctx.profiles[name]
    rows = ctx.store.latest_rows(name).to_pylist()
    columns = set(profile.tag_column_names)
    return [{"measurement": name, "tags": {t: row[profile.tag_column(t)] for t in profile.tags},
             "time": iso(row["time"]),
             "values": {k: iso(v) for k, v in row.items() if k != "time" and k not in
                        columns}} for row in rows]


@router.get("/api/v1/energy", tags=["read"])
def energy(ctx: Reader, measurement: str = "ps100_readings", start: str | None = None,
           end: str | None = None, period: str = "day") -> dict[str, Any]:
    """kWh per series and in total, per local day or month (the site's time zone)."""
    profile = ctx.profile(measurement)
    stop = instant(end, "end", datetime.now(UTC))
    begin = instant(start, "start", stop - timedelta(days=30))
    rows = energy_by_period(ctx.store, measurement, begin, stop, period)
    return {"measurement": measurement, "period": period, "unit": "kWh",
            "energy_columns": energy_columns(profile), "timezone": ctx.timezone, "rows": rows}


@router.get("/api/v1/events", tags=["read"])
def events(ctx: Reader, limit: Annotated[int, Query(ge=1, le=10_000)] = 100
           ) -> list[dict[str, Any]]:
    """Newest events first (gaps, late samples, sources going offline)."""
    return [{k: iso(v) for k, v in e.items()} for e in ctx.store.event_rows(limit)]


@router.get("/api/v1/sources", tags=["read"])
def sources(ctx: Reader) -> list[dict[str, Any]]:
    """Each source: type, state (connected, offline, failed, stopped), last sample, samples/s,
    errors and the last error."""
    return _sources(ctx)


def _sources(ctx: ApiContext) -> list[dict[str, Any]]:
    if ctx.agent is None:
        return []
    return [{k: from_epoch_s(v).isoformat() if k in ("since", "last_sample_at") and v
             else v for k, v in status.snapshot().items()}
            for status in ctx.agent.source_status.values()]


@router.get("/api/v1/status", tags=["read"])
def status(ctx: Reader, detail: bool = False) -> dict[str, Any]:
    """Engine, ingest rate, queue depth, sources, last write; ``detail=true`` adds tables."""
    snap = ctx.live.snapshot()
    counters = snap.get("counters", {})
    out: dict[str, Any] = {
        "engine": ctx.store.engine, "location": ctx.store.location,
        "layout": ctx.store.layout, "timezone": ctx.timezone,
        "uptime_s": round(time.time() - ctx.started_at, 1),
        "samples_per_s": snap.get("samples_per_s", 0.0),
        "queue_depth": counters.get("queue_depth", 0),
        "last_write_at": counters.get("last_write_at"), "counters": counters,
        "sources": _sources(ctx),
        "writes_accepted": ctx.agent is not None, "mirror": snap.get("mirror")}
    if detail:
        out["store"] = ctx.store.status()
    return out


@router.get("/api/v1/health", tags=["read"])
async def health(request: Request) -> JSONResponse:
    """For probes: 200 while the writer runs (or the store answers), else 503. No token.
    Answered on the event loop (it only asks whether a thread is alive), so it never waits
    for a worker thread behind reads and writes."""
    ctx = ctx_of(request)
    writer = ctx.agent.writer_alive() if ctx.agent is not None else None
    ok = writer is not False
    return JSONResponse({"status": "ok" if ok else "failing", "writer_alive": writer},
                        status_code=200 if ok else 503)


@router.post("/api/v1/sql", tags=["read"])
def sql(ctx: Reader, body: SqlRequest) -> Response:
    """One read statement (SELECT, VALUES, TABLE, WITH … SELECT) on the store, run where it
    cannot write, read files or change settings, within `sql_timeout_s` and `sql_max_rows`
    (what `sunarchive sql` sends to a running instance). Anything else is a 400 naming why."""
    result = ctx.store.read_sql(body.sql)   # errors: mapped by api.app.error_response
    return json_response(table_json(result.table))


# -- upstream-compatible endpoints -------------------------------------------------------------
def _lab(ctx: ApiContext, kind: str) -> str:
    name = LAB_KINDS.get(kind)
    if name is None:
        raise HTTPException(404, f"unknown lab measurement {kind!r}; one of "
                                 f"{', '.join(LAB_KINDS)}")
    ctx.profile(name)
    return name


class RegistryFilter(BaseModel):
    """The lab endpoints' registry filters: ids of a device, experiment, project, scientist."""

    device_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None
    experiment_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None
    project_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None
    scientist_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None

    def ids(self) -> dict[str, int | None]:
        return {"device_id": self.device_id, "experiment_id": self.experiment_id,
                "project_id": self.project_id, "scientist_id": self.scientist_id}


NO_FILTER = RegistryFilter()


def _range(start: str | None, end: str | None, start_time: str | None,
           end_time: str | None) -> tuple[datetime, datetime]:
    stop = instant(end or end_time, "end_time", datetime.now(UTC))
    return instant(start or start_time, "start_time", stop - timedelta(hours=24)), stop


@router.get("/measurements/{kind}", tags=["lab rig"])
def lab_measurements(ctx: Reader, kind: str, start_time: str | None = None,
                     end_time: str | None = None, start: str | None = None,
                     end: str | None = None, tier: str = "auto",
                     max_points: Annotated[int, Query(ge=1, le=1_000_000)] = 1000,
                     tag: Annotated[list[str], Query()] = [],  # noqa: B006
                     registry: Annotated[RegistryFilter, Query()] = NO_FILTER) -> Response:
    """Lab rig rows: ``mpp``, ``temperature`` or ``irradiance``; ``device_id``,
    ``experiment_id``, ``project_id``, ``scientist_id`` keep the rows of the registry's devices
    they name (together: the devices all of them name)."""
    if tier != "auto" and tier not in ALL_TIERS:
        raise HTTPException(400, f"tier {tier!r} is not one of auto, {', '.join(ALL_TIERS)}")
    name = _lab(ctx, kind)
    begin, stop = _range(start, end, start_time, end_time)
    devices = _devices(ctx, registry)
    result = read_devices(ctx.store, name, tier, begin, stop, _tags(tag), devices, max_points)
    return json_response({"measurement": name, "tier": result.tier, "start": begin.isoformat(),
                          "end": stop.isoformat(), **table_json(result.table)})


def _devices(ctx: ApiContext, given: RegistryFilter) -> set[int] | None:
    """The devices the registry filters select (None: no filter); 404 for an unknown id."""
    from sunarchive.upstream.registry import UnknownRowError, devices_of

    try:
        return devices_of(ctx.store, given.ids())
    except UnknownRowError as exc:
        raise HTTPException(404, f"{exc}") from None


@router.get("/statistics/{kind}", tags=["lab rig"])
def lab_statistics(ctx: Reader, kind: str, start_time: str | None = None,
                   end_time: str | None = None, start: str | None = None,
                   end: str | None = None,
                   registry: Annotated[RegistryFilter, Query()] = NO_FILTER
                   ) -> dict[str, Any]:
    """Per field over the range: mean, min, max, stddev and sample count (exact, from the
    mergeable 1 s state of the coarsest fitting tier); the registry filters as
    ``/measurements/{kind}``."""
    name = _lab(ctx, kind)
    begin, stop = _range(start, end, start_time, end_time)
    profile = ctx.profiles[name]
    result = read_devices(ctx.store, name, "auto", begin, stop, {}, _devices(ctx, registry), 1)
    rows = result.table.to_pylist()
    stats: dict[str, Any] = {}
    for spec in profile.fields_of(FieldKind.GAUGE, FieldKind.POWER):
        f = spec.stem
        n = sum((r.get(f"{f}_count") or 0) for r in rows)
        if not n:
            stats[spec.name] = {"count": 0, "unit": spec.unit}
            continue
        mean = sum((r[f"{f}_avg"] or 0) * (r[f"{f}_count"] or 0)
                   for r in rows) / n
        var = sum((r[f"{f}_count"] or 0) * ((r[f"{f}_stddev"] or 0) ** 2
                  + ((r[f"{f}_avg"] or 0) - mean) ** 2) for r in rows) / n
        stats[spec.name] = {
            "unit": spec.unit, "count": n, "mean": mean, "stddev": var ** 0.5,
            "min": min(r[f"{f}_min"] for r in rows if r[f"{f}_count"]),
            "max": max(r[f"{f}_max"] for r in rows if r[f"{f}_count"])}
    return {"measurement": name, "start": begin.isoformat(), "end": stop.isoformat(),
            "tier": result.tier, "fields": stats}
