"""REST for the PS100 panel registry ``ps100_panels`` (``docs/upstream/ps100.md``).

``GET /api/v1/panels`` lists the registered panels (read token); ``PATCH
/api/v1/panels/{panel_id}`` sets the columns its JSON body gives (write token) — what
``sunarchive panels set`` does, and what that command asks of a running instance holding the
DuckDB file. The edit runs on the writer thread; a changed place or orientation has its
clear-sky grid computed again before the answer (the grid in a child process, its rows
written by the writer). Bad input: an unknown panel is a 404, an unknown column or a bad value
a 400 naming it.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException
from pydantic import ValidationError

from sunarchive.api.registry import Writer
from sunarchive.api.rest import Reader
from sunarchive.storage.migrations import Schema
from sunarchive.upstream import ps100, ps100_clearsky, ps100_view

router = APIRouter()
Changes = Annotated[dict[str, Any], Body(description="column → value (null clears an "
                                                     "optional column), e.g. "
                                                     '{"name": "Roof east"}')]


@router.get("/api/v1/panels", tags=["PS100 panels"])
def list_panels(ctx: Reader) -> list[dict[str, Any]]:
    """The registered panels, by panel id."""
    if not ctx.store.has_relation(ps100.PANELS):
        return []
    table = ctx.store._read_arrow(f"SELECT {', '.join(ps100.COLUMNS)} FROM {ps100.PANELS} "
                                  "ORDER BY panel_id")
    return [ps100.Panel(row).as_json() for row in table.to_pylist()]


def typed_changes(body: dict[str, Any]) -> dict[str, Any]:
    """The body's values as registry values (checked as ``panels set`` checks its text);
    HTTPException 400 naming the first bad one."""
    out: dict[str, Any] = {}
    for column, value in body.items():
        text = "" if value is None else value if isinstance(value, str) else json.dumps(value)
        try:
            out[column] = ps100.parse_value(column, text)
        except ValueError as exc:
            raise HTTPException(400, f"{column}: {exc}" if column not in str(exc)
                                else str(exc)) from None
    return out


def edit(store: Any, panel_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    """Validate and store the edit of one panel (and the view over its sensors); the row."""
    run = ps100_clearsky.direct(store)
    with store._lock:   # checked before a transaction starts: nothing to roll back
        row = ps100.edited_row(store._schema(), panel_id, changes)
    run(lambda s: ps100.upsert(s, row))
    run(ps100_view.ensure_view)
    return row


@router.patch("/api/v1/panels/{panel_id}", tags=["PS100 panels"])
def set_panel(ctx: Writer, panel_id: str, body: Changes) -> dict[str, Any]:
    """Set the columns the body gives; the panel as stored."""
    if not body:
        raise HTTPException(400, f"give at least one column: {', '.join(ps100.EDITABLE)}")
    changes = typed_changes(body)
    try:
        row = ctx.on_writer(lambda: edit(ctx.store, panel_id, changes),
                            f"editing panel {panel_id}")
    except ps100.UnknownPanelError as exc:
        raise HTTPException(404, str(exc)) from None
    except ValidationError as exc:
        first = exc.errors()[0]
        raise HTTPException(400, f"{'.'.join(str(p) for p in first['loc'])}: "
                                 f"{first['msg']}") from None

    def on_writer(fn: Any) -> Any:
        def task() -> Any:
            def work(s: Schema) -> Any:
                return fn(s)
            return ps100_clearsky.direct(ctx.store)(work)
        return ctx.on_writer(task, "PS100 clear-sky upkeep")
    ps100_clearsky.upkeep(on_writer, ctx.ps100)
    return ps100.Panel(row).as_json()
