"""InfluxDB-compatible writes: ``/write`` (v1), ``/api/v2/write``, ``/api/v3/write_lp``,
``/ping``, ``/health``, ``/ready``, ``/api/v2/buckets`` and ``/query`` (``CREATE DATABASE``
only).

Points go through the same queue and reducer as every source. A measurement with a profile
must use its tags and fields; a measurement without one gets a profile inferred from its
fields (floats → gauge, integers → counter when the name says so, else gauge, booleans →
flag), created on the spot and kept in the store, so Home Assistant's data lands too.

Each line is stored or refused on its own (:mod:`sunarchive.api.influx_points`): 204 means
every line was stored whole; 400 lists the refused lines by number (and lines whose unknown
fields were dropped), while the good lines of the body are stored (``partial write``).

Only reading the body happens on the event loop. Gunzipping, parsing, checking and queueing
(``accumulator.put`` may wait up to ``queue_put_timeout_s`` for room) run on at most
``WRITE_THREADS`` worker threads of their own, so reads (which use the default thread pool)
keep answering while line-protocol writers send flat out (issue 14, point 8). What changes
the store — creating or growing a measurement, adding state labels — is a task the write
thread hands to the writer thread and waits for (:meth:`ApiContext.on_writer`): the writer
owns every write, and runs the task before the batches queued after it (issue 16, point 1).
"""

from __future__ import annotations

import time
import zlib
from urllib.parse import parse_qs

import anyio.to_thread
from anyio import CapacityLimiter
from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import JSONResponse

from sunarchive.api.context import ApiContext
from sunarchive.api.inferred import stored_kinds
from sunarchive.api.influx_points import Plan, plan_write, with_lines
from sunarchive.api.influx_service import VERSION
from sunarchive.api.influx_service import router as service_router
from sunarchive.errors import RETRY_AFTER_S, QueueFullError
from sunarchive.lineprotocol import LineError, parse_lines
from sunarchive.model import SampleBatch

router = APIRouter(tags=["InfluxDB compatible"])
router.include_router(service_router)
INFLUX_VERSION = VERSION
V1_PRECISIONS = {"n": "ns", "ns": "ns", "u": "us", "us": "us", "ms": "ms", "s": "s",
                 "m": "m", "h": "h"}
"""InfluxDB 1.x spells nanoseconds ``n`` and microseconds ``u``; ``m`` is minutes, ``h``
hours."""
MAX_LISTED = 1000
"""Errors listed in a v3 answer (v1 and v2 word the first 20 in their message)."""
V3_PRECISIONS = {"auto", "second", "millisecond", "microsecond", "nanosecond",
                 "s", "ms", "us", "ns"}
WRITE_THREADS = 2
"""Worker threads that parse and queue writes at once (per server); the other requests wait
for one. Reads have anyio's default pool (40 threads) to themselves."""


class WriteError(Exception):
    """A whole request refused: status code and message in the API's error style."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    @property
    def headers(self) -> dict[str, str] | None:
        """``Retry-After`` on a 503 (queue full, store unavailable)."""
        return {"Retry-After": str(RETRY_AFTER_S)} if self.status == 503 else None


# -- body, auth, precision ---------------------------------------------------------------------
async def read_body(request: Request, limit: int) -> bytes:
    """The raw request body (still gzipped if it came so); 413 beyond ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise WriteError(413, f"request body of {declared} bytes exceeds the limit of "
                              f"{limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise WriteError(413, f"request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def gunzip(body: bytes, limit: int) -> bytes:
    """Decompress every gzip member (``cat a.gz b.gz`` is one body, as for InfluxDB),
    refusing more than ``limit`` bytes of output (gzip bombs)."""
    out, rest = b"", body
    while rest:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out += inflater.decompress(rest, limit + 1 - len(out))
        except zlib.error as exc:
            raise WriteError(400, f"body is not valid gzip: {exc}") from None
        if len(out) > limit or inflater.unconsumed_tail:
            raise WriteError(413, f"decompressed body exceeds the limit of {limit} bytes")
        if not inflater.eof:
            raise WriteError(400, "body is not valid gzip: it ends inside a member")
        rest = inflater.unused_data
    return out


def authorize_write(ctx: ApiContext, request: Request) -> None:
    try:
        ctx.authorize(request, "write")
    except HTTPException as exc:
        raise WriteError(401, str(exc.detail)) from None
    if ctx.agent is None:
        raise WriteError(403, "this server does not accept writes (started without a "
                              "writer)")


# -- ingest ------------------------------------------------------------------------------------
def queue(ctx: ApiContext, batches: list[SampleBatch]) -> None:
    """Put the batches on the writer's queue; 503 when it is full."""
    assert ctx.agent is not None
    for batch in batches:
        try:
            ctx.agent.accumulator.put(batch)
        except QueueFullError:
            raise WriteError(503, "the write queue is full; retry later") from None


def write_limiter(request: Request) -> CapacityLimiter:
    """The server's limiter of write threads, made on first use (on the event loop)."""
    state = request.app.state
    limiter: CapacityLimiter | None = getattr(state, "write_limiter", None)
    if limiter is None:
        limiter = state.write_limiter = CapacityLimiter(WRITE_THREADS)
    return limiter


async def _write(request: Request, precision: str, accept_partial: bool = True) -> Plan:
    """Read the body on the event loop; gunzip, parse, check and queue it on a write thread."""
    ctx: ApiContext = request.app.state.ctx
    authorize_write(ctx, request)
    raw = await read_body(request, ctx.max_body_bytes)
    gzipped = request.headers.get("content-encoding", "").lower() == "gzip"
    return await anyio.to_thread.run_sync(_plan_and_queue, ctx, raw, gzipped, precision,
                                          accept_partial, limiter=write_limiter(request))


def _plan_and_queue(ctx: ApiContext, raw: bytes, gzipped: bool, precision: str,
                    accept_partial: bool) -> Plan:
    """Parse and check the body; queue the good points (none if any line is bad and not
    ``accept_partial``). Blocking: runs on a write thread, never on the event loop."""
    body = gunzip(raw, ctx.max_body_bytes) if gzipped else raw
    now_ns = time.time_ns()
    try:
        parsed = parse_lines(body, precision=precision, now_ns=now_ns,
                             stored_kinds=stored_kinds(ctx.profiles))
    except ValueError as exc:
        raise WriteError(400, str(exc)) from None
    plan = plan_write(ctx, parsed, now_ns)
    with_lines(plan.errors, body)
    if plan.errors and not accept_partial:
        plan.dropped = parsed.lines
        return plan
    queue(ctx, plan.batches)
    return plan


def _messages(errors: list[LineError], limit: int = 20) -> str:
    text = "; ".join(e.message for e in errors[:limit])
    return text + (f" (and {len(errors) - limit} more)" if len(errors) > limit else "")


# -- endpoints -----------------------------------------------------------------------------
@router.api_route("/ping", methods=["GET", "HEAD"], status_code=204)
def ping() -> Response:
    """Liveness for InfluxDB clients: 204 with ``X-Influxdb-Version``."""
    return Response(status_code=204, headers={"X-Influxdb-Version": INFLUX_VERSION})


@router.api_route("/query", methods=["GET", "POST"])
async def query(request: Request) -> JSONResponse:
    """InfluxQL is not served; ``CREATE DATABASE`` (Telegraf sends it first) succeeds. Needs
    a token (read or write) when tokens are configured."""
    request.app.state.ctx.authorize(request, "read")
    statement = request.query_params.get("q") or ""
    if not statement and request.method == "POST":
        form = parse_qs((await request.body()).decode("utf-8", errors="replace"))
        statement = (form.get("q") or [""])[0]
    if statement.strip().upper().startswith("CREATE DATABASE"):
        return JSONResponse({"results": [{"statement_id": 0}]})
    return JSONResponse({"error": "sunarchive accepts only CREATE DATABASE here; read with "
                                  "/api/v1 or `sunarchive sql`"}, status_code=400)


@router.post("/write", status_code=204)
async def write_v1(request: Request, db: str = "", precision: str = "ns") -> Response:
    """InfluxDB 1.x write. ``p`` (or Basic/Token auth) carries the token."""
    if (precision or "ns") not in V1_PRECISIONS:
        return JSONResponse({"error": f"precision {precision!r} is not supported; use one "
                                      f"of {', '.join(V1_PRECISIONS)}"}, status_code=400)
    try:
        plan = await _write(request, V1_PRECISIONS[precision or "ns"])
    except WriteError as exc:
        return JSONResponse({"error": exc.message}, status_code=exc.status,
                            headers=exc.headers)
    if plan.errors:
        return JSONResponse({"error": f"partial write: {_messages(plan.errors)} "
                                      f"dropped={plan.dropped}"}, status_code=400)
    return Response(status_code=204)


@router.post("/api/v2/write", status_code=204)
async def write_v2(request: Request, bucket: str = "", org: str = "",
                   precision: str = "ns") -> Response:
    """InfluxDB 2.x write (``bucket`` names the database; ``org`` is ignored)."""
    try:
        plan = await _write(request, precision or "ns")
    except WriteError as exc:
        code = {401: "unauthorized", 413: "request too large"}.get(exc.status, "invalid")
        return JSONResponse({"code": code, "message": exc.message}, status_code=exc.status,
                            headers=exc.headers)
    if plan.errors:
        return JSONResponse({"code": "invalid", "message": f"partial write: "
                             f"{_messages(plan.errors)} dropped={plan.dropped}"},
                            status_code=400)
    return Response(status_code=204)


@router.post("/api/v3/write_lp", status_code=204)
async def write_v3(request: Request, db: str = "", precision: str = "auto",
                   accept_partial: bool = True, no_sync: bool = False) -> Response:
    """InfluxDB 3 write: partial writes keep the good lines and list the bad ones (the first
    ``MAX_LISTED``); with ``accept_partial=false`` one bad line refuses the whole body."""
    if precision not in V3_PRECISIONS:
        return JSONResponse({"error": f"precision {precision!r} is not one of "
                                      f"{', '.join(sorted(V3_PRECISIONS))}"}, status_code=400)
    try:
        plan = await _write(request, precision, accept_partial)
    except WriteError as exc:
        return JSONResponse({"error": exc.message}, status_code=exc.status,
                            headers=exc.headers)
    if not plan.errors:
        return Response(status_code=204)
    data = [{"original_line": e.line, "line_number": e.line_number,
             "error_message": e.reason} for e in plan.errors[:MAX_LISTED]]
    if not accept_partial:
        return JSONResponse({"error": "parsing failed for write_lp endpoint", "data": data},
                            status_code=400)
    return JSONResponse({"error": "partial write of line protocol occurred", "data": data},
                        status_code=400)
