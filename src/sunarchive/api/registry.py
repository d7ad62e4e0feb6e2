"""REST for the registries: the Perocube lab's and HOMEPOT's sites and devices
(``docs/upstream/perocube.md``, ``docs/upstream/homepot.md``, ``docs/api.md``).

``GET /api/v1/registry/{kind}`` lists (``include_retired=true``: retired rows too), ``GET
…/{kind}/{id}`` gives one row, ``POST …/{kind}`` adds (201), ``PATCH …/{kind}/{id}`` changes
the fields the JSON body gives, ``POST …/{kind}/{id}/retire`` retires; nothing is deleted.
Kinds: ``project``, ``scientist``, ``device`` (table ``solar_cell_device``), ``experiment``
(Perocube); ``site`` (table ``sites``) and ``homepot-device`` (table ``devices``), added with
their HOMEPOT ``id`` in the body.
Reads need a read token, writes a write token. Writes run on the writer thread, the one owner
of store writes (:meth:`~sunarchive.api.context.ApiContext.on_writer`), so handlers are plain
functions FastAPI runs in its worker threads.

Bad input: an unknown kind or id in the path is a 404; a bad body (unknown field, wrong type,
a reference to an unknown or retired row, retiring a row active rows refer to) a 400 whose
message names the field.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Body, Depends, HTTPException, Path, Request
from fastapi.responses import Response

from sunarchive.api.context import ApiContext, iso
from sunarchive.api.rest import Reader, _json_default, ctx_of
from sunarchive.upstream import registry
from sunarchive.upstream.kinds import INT_MIN
from sunarchive.upstream.registry import KINDS

router = APIRouter()
Id = Annotated[int, Path(ge=INT_MIN, le=registry.INT_MAX, description="the row's id")]
Fields = Annotated[dict[str, Any], Body(description="field → value (null clears an optional "
                                                    "field); an experiment's `device_ids` "
                                                    "is a list of device ids; a site or "
                                                    "homepot-device is added with its `id`")]


def writer(request: Request) -> ApiContext:
    ctx = ctx_of(request)
    ctx.authorize(request, "write")
    return ctx


Writer = Annotated[ApiContext, Depends(writer)]


def _kind(kind: str) -> str:
    if kind not in KINDS:
        raise HTTPException(404, f"unknown registry kind {kind!r}; one of {', '.join(KINDS)}")
    return kind


def _answer(fn: Callable[[], Any], status: int = 200) -> Response:
    """``fn``'s rows as JSON; an unknown row is a 404."""
    try:
        result = fn()
    except registry.UnknownRowError as exc:
        raise HTTPException(404, str(exc)) from None
    rows = result if isinstance(result, list) else [result]
    plain = [{k: iso(v) for k, v in row.items()} for row in rows]
    payload = plain if isinstance(result, list) else plain[0]
    return Response(orjson.dumps(payload, default=_json_default), status_code=status,
                    media_type="application/json")


@router.get("/api/v1/registry/{kind}", tags=["registries"])
def list_kind(ctx: Reader, kind: str, include_retired: bool = False) -> Response:
    """The rows of a kind by id (``include_retired=true``: retired rows too)."""
    _kind(kind)
    return _answer(lambda: registry.list_rows(ctx.store, kind, include_retired))


@router.get("/api/v1/registry/{kind}/{row_id}", tags=["registries"])
def get_one(ctx: Reader, kind: str, row_id: Id) -> Response:
    """One row, retired or not."""
    _kind(kind)
    return _answer(lambda: registry.get_row(ctx.store, kind, row_id))


@router.post("/api/v1/registry/{kind}", tags=["registries"], status_code=201)
def add(ctx: Writer, kind: str, body: Fields) -> Response:
    """Add a row (Perocube: ``name`` required; HOMEPOT: ``id`` required); the row stored,
    with its id."""
    _kind(kind)
    return _answer(lambda: ctx.on_writer(lambda: registry.add(ctx.store, kind, body),
                                         f"adding a {kind}"), 201)


@router.patch("/api/v1/registry/{kind}/{row_id}", tags=["registries"])
def change(ctx: Writer, kind: str, row_id: Id, body: Fields) -> Response:
    """Set the fields the body gives; an experiment's ``device_ids`` replace its devices."""
    _kind(kind)
    return _answer(lambda: ctx.on_writer(
        lambda: registry.update(ctx.store, kind, row_id, body), f"changing {kind} {row_id}"))


@router.post("/api/v1/registry/{kind}/{row_id}/retire", tags=["registries"])
def retire(ctx: Writer, kind: str, row_id: Id) -> Response:
    """Retire a row (``retired_at`` = now); refused while active rows refer to it."""
    _kind(kind)
    return _answer(lambda: ctx.on_writer(lambda: registry.retire(ctx.store, kind, row_id),
                                         f"retiring {kind} {row_id}"))
