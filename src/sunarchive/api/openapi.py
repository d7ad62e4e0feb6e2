"""The OpenAPI description as the server behaves: every error answer an operation gives, who
needs a token, and one operation id per operation.

FastAPI derives the schema from the routes but knows only their success answers (and a 422
this app never sends: bad parameters get a 400, see :func:`parameter_error`). The answers
below are the ones the handlers give; ``tests/test_api_schema.py`` sends generated requests
and fails on any status or error body the schema does not document.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

PUBLIC = frozenset({"GET /ping", "HEAD /ping", "GET /api/v1/health", "GET /health",
                    "GET /ready"})
"""Operations that answer without a token. So do ``/docs``, ``/openapi.json`` and the
dashboard page, which are not operations of the schema."""

BAD = "A parameter or the body is not valid; the message names it."
UNKNOWN = "Unknown measurement; the message names it and lists the known ones."
TOO_LARGE = "The request body exceeds http_max_body_mb (after decompression)."
NO_WRITER = "This server does not accept writes (started without a writer)."
QUEUE_FULL = ("The write queue is full, or a new measurement's tables cannot be made while "
              "the store is unreachable; retry later (Retry-After: seconds).")
UNKNOWN_KIND = ("Unknown registry kind (project, scientist, device, experiment, site, "
                "homepot-device).")
UNKNOWN_ROW = "Unknown registry kind, or no row of that kind has that id."
BAD_ROW = ("The body is not valid: an unknown field, a value of the wrong type, an empty "
           "name, a reference to an unknown or retired row, a missing or taken HOMEPOT id; "
           "the message names the field.")
LAB_UNKNOWN = ("Unknown lab measurement kind, or a device_id, experiment_id, project_id or "
               "scientist_id no registry row has.")
DOWN = {503: "The store is unreachable for now; retry later (Retry-After: seconds)."}

ANSWERS: dict[str, dict[int, str]] = {
    "GET /api/v1/measurements": {**DOWN},
    "GET /api/v1/measurements/{measurement}": {**DOWN, 400: BAD, 404: UNKNOWN},
    "GET /api/v1/series": {**DOWN},
    "GET /api/v1/series/names": {**DOWN, 400: BAD, 404: UNKNOWN},
    "GET /api/v1/panels": {**DOWN},
    "PATCH /api/v1/panels/{panel_id}": {
        **DOWN, 400: "No column given, an unknown column or a value out of range; the message "
                     "names it.", 403: NO_WRITER, 404: "No registered panel has that id.",
        413: TOO_LARGE},
    "GET /api/v1/latest": {**DOWN, 404: UNKNOWN},
    "GET /api/v1/energy": {**DOWN, 400: BAD, 404: UNKNOWN},
    "GET /api/v1/events": {**DOWN, 400: BAD},
    "GET /api/v1/sources": {**DOWN},
    "GET /api/v1/status": {**DOWN, 400: BAD},
    "GET /api/v1/health": {503: "The writer has stopped (body: status and writer_alive)."},
    "POST /api/v1/sql": {**DOWN, 400: "The body is not {\"sql\": ...} or the statement "
                                      "failed; the message names the statement's problem.",
                         413: TOO_LARGE},
    "GET /measurements/{kind}": {**DOWN, 400: BAD, 404: LAB_UNKNOWN},
    "GET /statistics/{kind}": {**DOWN, 400: BAD, 404: LAB_UNKNOWN},
    "GET /api/energy-data": {**DOWN, 400: BAD, 404: UNKNOWN},
    "GET /api/charging-sessions": {**DOWN, 400: BAD},
    "GET /api/v1/registry/{kind}": {**DOWN, 400: BAD, 404: UNKNOWN_KIND},
    "GET /api/v1/registry/{kind}/{row_id}": {**DOWN, 400: BAD, 404: UNKNOWN_ROW},
    "POST /api/v1/registry/{kind}": {**DOWN, 400: BAD_ROW, 403: NO_WRITER, 404: UNKNOWN_KIND,
                                     413: TOO_LARGE},
    "PATCH /api/v1/registry/{kind}/{row_id}": {**DOWN, 400: BAD_ROW, 403: NO_WRITER,
                                               404: UNKNOWN_ROW, 413: TOO_LARGE},
    "POST /api/v1/registry/{kind}/{row_id}/retire": {
        **DOWN, 400: "The row is retired already, or active rows refer to it (the message "
                     "names them).", 403: NO_WRITER, 404: UNKNOWN_ROW},
    "GET /ping": {},
    "HEAD /ping": {},
    "GET /health": {503: "The writer has stopped (InfluxDB's health body, status fail)."},
    "GET /ready": {},
    "GET /api/v2/buckets": {},
    "POST /api/v2/buckets": {400: "The body is not a JSON object with a name.",
                             413: "The body exceeds 64 KiB."},
    "GET /query": {400: "Only CREATE DATABASE is served here."},
    "POST /query": {400: "Only CREATE DATABASE is served here.", 413: TOO_LARGE},
    "POST /write": {400: "Bad parameters or lines: `partial write: ... dropped=N` (the good "
                         "lines are stored).", 403: NO_WRITER, 413: TOO_LARGE,
                    503: QUEUE_FULL},
    "POST /api/v2/write": {400: "Bad parameters or lines (the good lines are stored).",
                           403: NO_WRITER, 413: TOO_LARGE, 503: QUEUE_FULL},
    "POST /api/v3/write_lp": {400: "Bad parameters, or a partial write: `data` lists each "
                                   "refused line.", 403: NO_WRITER, 413: TOO_LARGE,
                              503: QUEUE_FULL},
}
TOKEN_NEEDED = "Tokens are configured and the request carries none good for this operation."


class ErrorBody(BaseModel):
    """The API's error answer."""

    error: str


class HealthBody(BaseModel):
    """``/api/v1/health``'s answer."""

    status: str
    writer_alive: bool | None


class InfluxV2Error(BaseModel):
    """InfluxDB 2's error answer (``/api/v2/write``, ``/api/v2/buckets``)."""

    code: str
    message: str


class InfluxHealth(BaseModel):
    """InfluxDB's ``/health`` answer."""

    name: str
    message: str
    status: str
    checks: list[object]
    version: str


BODIES: dict[str, type[BaseModel]] = {"POST /api/v2/write": InfluxV2Error,
                                       "GET /api/v2/buckets": InfluxV2Error,
                                       "POST /api/v2/buckets": InfluxV2Error,
                                       "GET /health": InfluxHealth,
                                       "GET /api/v1/health": HealthBody}
"""Operations whose error answers are not :class:`ErrorBody`."""


def documented_schema(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI schema with the answers above, token security and unique ids."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version,
                             description=app.description, routes=app.routes)
        _document(schema)
        app.openapi_schema = schema
    return app.openapi_schema


def _document(schema: dict[str, Any]) -> None:
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for model in (ErrorBody, HealthBody, InfluxV2Error, InfluxHealth):
        schemas[model.__name__] = model.model_json_schema()
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    components["securitySchemes"] = {"token": {
        "type": "http", "scheme": "bearer",
        "description": "A read or write token (also `Authorization: Token`, HTTP Basic with "
                       "the token as password, or `p=`), needed when tokens are configured."}}
    seen: set[str] = set()
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            key = f"{method.upper()} {path}"
            _answers(operation, key)
            if operation["operationId"] in seen:
                operation["operationId"] += f"_{method}"
            seen.add(operation["operationId"])


def _answers(operation: dict[str, Any], key: str) -> None:
    responses = operation["responses"]
    responses.pop("422", None)
    answers = dict(ANSWERS.get(key, {}))
    if key not in PUBLIC:
        answers[401] = TOKEN_NEEDED
        operation["security"] = [{"token": []}]
    model = BODIES.get(key, ErrorBody)
    body = {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}
    for status, text in sorted(answers.items()):
        responses[str(status)] = {"description": text, "content": body}


def parameter_error(exc: RequestValidationError) -> str:
    """One line naming the first bad parameter: ``max_points (query): Input should be ...``."""
    errors = exc.errors()
    if not errors:
        return "the request is not valid"
    first = errors[0]
    where, *rest = [str(part) for part in first.get("loc", ())] or ["request"]
    name = ".".join(rest) or where
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{name} ({where}): {first.get('msg', 'not valid')}{more}"
