"""The service endpoints InfluxDB clients call besides writing: ``/health`` and ``/ready``
(InfluxDB 1.8 and 2.x; the v2 client's ``health()`` and ``ready()``) and ``/api/v2/buckets``.

sunarchive has one store and no buckets: every bucket (v2) or database (v1) name is accepted
and lands in the same store. So ``GET /api/v2/buckets?name=X`` answers with a bucket ``X``
(the clients' ``find_bucket_by_name`` finds it), without ``name`` the list is empty, and
``POST /api/v2/buckets`` answers 201 with the bucket asked for. A bucket's ``id`` is 16 hex
digits derived from its name, the same every time.
"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse

from sunarchive.api.context import ApiContext

router = APIRouter(tags=["InfluxDB compatible"])
VERSION = "1.8.10"
"""What ``/ping`` and ``/health`` claim (InfluxDB 1.8 has both, and its 2.x-compatible API)."""
MAX_BUCKET_BODY = 65536
"""Bytes of a ``POST /api/v2/buckets`` body (413 beyond)."""


@router.get("/health")
def health(request: Request) -> JSONResponse:
    """InfluxDB's health check: 200 ``status: pass`` while the writer runs (or on a server
    without one), else 503 ``status: fail``. Needs no token."""
    ctx: ApiContext = request.app.state.ctx
    alive = ctx.agent.writer_alive() if ctx.agent is not None else True
    message = "ready for queries and writes" if alive else "the writer has stopped"
    return JSONResponse({"name": "influxdb", "message": message,
                         "status": "pass" if alive else "fail", "checks": [],
                         "version": VERSION}, status_code=200 if alive else 503)


@router.get("/ready")
def ready(request: Request) -> JSONResponse:
    """InfluxDB 2's readiness: ``status: ready``, when the server started and how long ago
    (Go duration text, seconds). Needs no token."""
    started: float = request.app.state.ctx.started_at or time.time()
    return JSONResponse({"status": "ready",
                         "started": datetime.fromtimestamp(started, UTC).isoformat(),
                         "up": f"{max(0.0, time.time() - started):.3f}s"})


def bucket(name: str, org_id: str = "") -> dict[str, Any]:
    """An InfluxDB 2 bucket object for ``name`` (every name exists: one store)."""
    now = datetime.now(UTC).isoformat()
    return {"id": hashlib.sha256(name.encode()).hexdigest()[:16], "orgID": org_id,
            "type": "user", "name": name, "retentionRules": [], "createdAt": now,
            "updatedAt": now, "labels": [], "links": {"self": "/api/v2/buckets"}}


def _unauthorized(request: Request, scope: str) -> JSONResponse | None:
    """A 401 in InfluxDB 2's style unless the request carries a token good for ``scope``."""
    try:
        request.app.state.ctx.authorize(request, scope)
    except HTTPException as exc:
        return JSONResponse({"code": "unauthorized", "message": str(exc.detail)},
                            status_code=401)
    return None


@router.get("/api/v2/buckets")
def list_buckets(request: Request, name: str = "", orgID: str = "") -> JSONResponse:
    """The bucket ``name`` (every name is accepted: one store); without ``name``, none."""
    refused = _unauthorized(request, "read")
    if refused is not None:
        return refused
    found = [bucket(name, orgID)] if name else []
    return JSONResponse({"links": {"self": "/api/v2/buckets"}, "buckets": found})


@router.post("/api/v2/buckets", status_code=201)
async def create_bucket(request: Request) -> JSONResponse:
    """"Create" a bucket: 201 with the bucket named in the JSON body (``name``, ``orgID``);
    nothing changes in the store."""
    refused = _unauthorized(request, "write")
    if refused is not None:
        return refused
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BUCKET_BODY:
            return JSONResponse({"code": "request too large", "message": "a bucket body "
                                 f"is at most {MAX_BUCKET_BODY} bytes"}, status_code=413)
    try:
        body = json.loads(raw)
        name = body["name"] if isinstance(body, dict) else None
    except (ValueError, KeyError):
        name = None
    if not isinstance(name, str) or not name:
        return JSONResponse({"code": "invalid", "message": "the body must be a JSON object "
                             "with a non-empty \"name\""}, status_code=400)
    org = body.get("orgID")
    return JSONResponse(bucket(name, org if isinstance(org, str) else ""), status_code=201)
