"""``sites`` and ``devices``: the registries HOMEPOT's health checks refer to by id.

Small tables on every engine, ids as HOMEPOT gives them (integers, not drawn from a
sequence: the health checks name them first). Nothing is deleted: a device or site that is
gone gets ``retired_at``. ``created_at`` defaults to the UTC now (``TIMESTAMPTZ`` on
PostgreSQL, a UTC ``TIMESTAMP`` on DuckDB, as every instant of the store).

They fill themselves: the first check of a new device (a new series of ``health_checks``)
adds its site and the device (with the site of that check) when they are not there yet, in
the transaction that records the series; schema step 7 adds those of the series a store
already had. Names, locations, descriptions and device types are yours to fill with
``sunarchive registry … site|homepot-device`` or ``/api/v1/registry/{site,homepot-device}``
(the kinds below; rules in :mod:`sunarchive.upstream.registry`). Only registries sunarchive
made are written (``sunarchive_meta`` key ``homepot_registry``); tag values that are not
integers are skipped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from sunarchive.upstream.kinds import INT_MIN, Column, Kind

if TYPE_CHECKING:
    from sunarchive.storage.migrations import Schema

TABLES = ("sites", "devices")
META_KEY = "homepot_registry"
MEASUREMENT = "health_checks"
INTEGER = re.compile(r"[+-]?[0-9]{1,9}")
"""An id that fits the registries' ``INTEGER``."""

NAME = Column("name", "text", "what people call it")
DESCRIPTION = Column("description", "text", "free text")
KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("site", "sites", (NAME, Column("location", "text", "where the site is"),
                           DESCRIPTION),
         system="HOMEPOT", ids_given=True, name_required=False, id_low=INT_MIN),
    Kind("homepot-device", "devices", (
        NAME, Column("site_id", "reference", "the site the device is at", references="site"),
        Column("device_type", "text", "what the device is, e.g. pos-terminal"), DESCRIPTION),
         system="HOMEPOT", ids_given=True, name_required=False, id_low=INT_MIN),
)}
"""The registries as kinds of ``sunarchive registry`` and ``/api/v1/registry/{kind}`` (``device``
is the Perocube lab's solar cell device, so HOMEPOT's is ``homepot-device``)."""

Execute = Callable[[str, Sequence[Any] | None], Any]
Fetch = Callable[[str, Sequence[Any] | None], list[tuple[Any, ...]]]


def statements(s: Schema) -> dict[str, list[str]]:
    """The DDL of each registry on ``s``'s engine."""
    text, instant = s.text, s.instant
    now = "NOW()" if s.postgres else "timezone('UTC', now())"
    stamps = (f"created_at {instant} NOT NULL DEFAULT {now}, retired_at {instant}")
    return {
        "sites": [f"""CREATE TABLE sites (
            id INTEGER PRIMARY KEY, name {text}, location {text}, description {text},
            {stamps})"""],
        "devices": [f"""CREATE TABLE devices (
            id INTEGER PRIMARY KEY, name {text}, site_id INTEGER, device_type {text},
            description {text}, {stamps})""",
                    "CREATE INDEX idx_devices_site ON devices (site_id)"],
    }


def create(s: Schema) -> list[str]:
    """Create the registries that are missing (a relation of that name, whoever made it,
    is left alone) and fill them from the series the store has; return what was made."""
    made = []
    for table, ddl in statements(s).items():
        if s.has_table(table):
            continue
        for statement in ddl:
            s.execute(statement, None)
        made.append(f"created table {table} (HOMEPOT registry)")
    if len(made) == len(TABLES):
        s.execute(f"INSERT INTO sunarchive_meta VALUES ({s.p}, 'sites devices')", [META_KEY])
        for (tags,) in s.fetch(f"SELECT tags FROM sunarchive_series WHERE measurement = {s.p} "
                               "ORDER BY series_id", [MEASUREMENT]):
            register(s.execute, s.fetch, s.p, json.loads(str(tags)))
    return made


def ids(tags: dict[str, str]) -> tuple[int | None, int | None]:
    """(device id, site id) of a series' tags; None where a tag is not an integer."""
    def one(name: str) -> int | None:
        value = str(tags.get(name, "")).strip()
        return int(value) if INTEGER.fullmatch(value) else None
    return one("device_id"), one("site_id")


def register(execute: Execute, fetch: Fetch, p: str, tags: dict[str, str]) -> None:
    """Add the site and the device of a new series of ``health_checks`` that the registries
    lack (writers, in the transaction recording the series)."""
    device, site = ids(tags)
    if (device is None and site is None) or not fetch(
            f"SELECT 1 FROM sunarchive_meta WHERE key = {p}", [META_KEY]):
        return
    if site is not None:
        execute(f"INSERT INTO sites (id) SELECT {p} WHERE NOT EXISTS "
                f"(SELECT 1 FROM sites WHERE id = {p})", [site, site])
    if device is not None:
        execute(f"INSERT INTO devices (id, site_id) SELECT {p}, {p} WHERE NOT EXISTS "
                f"(SELECT 1 FROM devices WHERE id = {p})", [device, site, device])
