"""The dashboard: one static page at ``/`` and its assets under ``/static/``.

The files live in the package (``sunarchive/web``) and are read with :mod:`importlib.resources`,
so a wheel install serves them too. They need no token: the page holds no data and asks the API
for everything, sending the read token it was given in its URL fragment (``/#token=...``).
"""

from __future__ import annotations

import mimetypes
from functools import cache
from importlib.resources import files
from importlib.resources.abc import Traversable

from fastapi import APIRouter, HTTPException
from fastapi.responses import HTMLResponse, Response

router = APIRouter()
NO_CACHE = {"Cache-Control": "no-cache"}


def web_dir() -> Traversable:
    return files("sunarchive").joinpath("web")


@cache
def assets() -> dict[str, Traversable]:
    """The files served under ``/static/``: exactly those shipped in ``web/``."""
    return {item.name: item for item in web_dir().iterdir()
            if item.is_file() and item.name.endswith((".js", ".css", ".svg", ".png"))}


@router.get("/", include_in_schema=False)
def index() -> HTMLResponse:
    page = web_dir().joinpath("index.html").read_text(encoding="utf-8")
    return HTMLResponse(page, headers=NO_CACHE)


@router.get("/static/{name}", include_in_schema=False)
def static(name: str) -> Response:
    item = assets().get(name)
    if item is None:
        raise HTTPException(404, f"no dashboard file {name!r}")
    media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    if media_type.startswith("text/") or name.endswith(".js"):
        media_type += "; charset=utf-8"
    return Response(item.read_bytes(), media_type=media_type, headers=NO_CACHE)
