"""The ASGI app factory (FastAPI; OpenAPI at /docs)."""

from __future__ import annotations

import time
from functools import partial

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from sunarchive import __version__
from sunarchive.api import dashboard, goodwe, influx, live, panels, registry, rest
from sunarchive.api.body_limit import BodyLimit
from sunarchive.api.context import ApiContext
from sunarchive.api.live import LiveHub
from sunarchive.api.openapi import documented_schema, parameter_error
from sunarchive.errors import RETRY_AFTER_S, SunarchiveError, http_status


def create_app(ctx: ApiContext) -> FastAPI:
    """A FastAPI app serving ``ctx``'s store: REST, InfluxDB-compatible writes, dashboard."""
    app = FastAPI(title="sunarchive", version=__version__,
                  description="Solar and home-energy telemetry historian: exact 1-second "
                              "statistics and 5-minute, hourly and daily rollups.")
    ctx.started_at = ctx.started_at or time.time()
    app.state.ctx = ctx
    hub = LiveHub(ctx.profiles)
    app.state.hub = hub
    ctx.live.add_listener(hub.publish)
    app.include_router(rest.router)
    app.include_router(goodwe.router)
    app.include_router(registry.router)
    app.include_router(panels.router)
    app.include_router(live.router)
    app.include_router(influx.router)
    app.include_router(dashboard.router)
    app.openapi = partial(documented_schema, app)  # type: ignore[method-assign]
    app.add_middleware(BodyLimit, limit_bytes=ctx.max_body_bytes)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code,
                            headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def bad_parameter(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": parameter_error(exc)}, status_code=400)

    @app.exception_handler(ClientDisconnect)
    async def client_left(request: Request, exc: ClientDisconnect) -> Response:
        return Response(status_code=400)    # nobody reads it: the client has gone

    @app.exception_handler(SunarchiveError)
    async def refused(request: Request, exc: SunarchiveError) -> JSONResponse:
        return error_response(exc)

    return app


def error_response(exc: SunarchiveError) -> JSONResponse:
    """The one mapping of sunarchive's errors to HTTP (:func:`sunarchive.errors.http_status`):
    one line in ``{"error"}``, and ``Retry-After`` on a 503."""
    status = http_status(exc)
    headers = {"Retry-After": str(RETRY_AFTER_S)} if status == 503 else None
    return JSONResponse({"error": str(exc)}, status_code=status, headers=headers)
