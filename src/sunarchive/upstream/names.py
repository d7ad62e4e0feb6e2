"""The registry names of series: what the dashboard shows instead of a bare tag value.

A series has a registry name when one tag of it is the id of a registry row that has a name:

* ``ps100_readings``: the ``panel_id`` tag in ``ps100_panels`` (``sunarchive panels set …
  name=…``); a panel's name defaults to its id, and such a name adds nothing, so it is left
  out;
* ``mpp_measurement``, ``temperature_measurement``, ``irradiance_measurement``: the
  ``device_id`` tag (decimal text) in Perocube's ``solar_cell_device``
  (``sunarchive registry set device …``);
* ``health_checks``: the ``device_id`` tag in HOMEPOT's ``devices``
  (``sunarchive registry set homepot-device …``), when sunarchive made that table.

Retired rows keep their names (their series stay). Read on the store's read path, each time
(a rename shows at the next read).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sunarchive.storage.open import SqlStore
from sunarchive.upstream.homepot import registry as homepot
from sunarchive.upstream.perocube.tables import LINK_TABLE
from sunarchive.upstream.ps100 import PANELS


@dataclass(frozen=True)
class Source:
    """Where the names of a measurement's series are: the tag holding the id, the registry
    table and its id column."""

    tag: str
    table: str
    id_column: str
    system: str


PEROCUBE = Source("device_id", "solar_cell_device", "id", "Perocube")
SOURCES: dict[str, Source] = {
    "ps100_readings": Source("panel_id", PANELS, "panel_id", "PS100"),
    "mpp_measurement": PEROCUBE,
    "temperature_measurement": PEROCUBE,
    "irradiance_measurement": PEROCUBE,
    "health_checks": Source("device_id", "devices", "id", "HOMEPOT"),
}
"""Measurement → where its series' names are."""


def _p(store: SqlStore) -> str:
    return "?" if store.engine == "duckdb" else "%s"


def _ready(store: SqlStore, source: Source) -> bool:
    """Whether the store has that registry as sunarchive made it."""
    if source.system == "HOMEPOT":
        return bool(store._read_arrow(f"SELECT 1 FROM sunarchive_meta WHERE key = {_p(store)}",
                                      [homepot.META_KEY]).num_rows)
    if source.system == "Perocube":
        return store.has_relation(LINK_TABLE)
    return store.has_relation(source.table)


def registry_names(store: SqlStore, measurement: str) -> dict[str, str]:
    """Id (as the tag holds it) → name, for the registry rows of ``measurement``'s series
    that have a name other than their id; empty when the measurement has no registry."""
    source = SOURCES.get(measurement)
    if source is None or not _ready(store, source):
        return {}
    table = store._read_arrow(f"SELECT CAST({source.id_column} AS {_text(store)}) AS id, "
                              f"name FROM {source.table} WHERE name IS NOT NULL")
    return {str(r["id"]): str(r["name"]) for r in table.to_pylist()
            if str(r["name"]).strip() and str(r["name"]) != str(r["id"])}


def _text(store: SqlStore) -> str:
    return "VARCHAR" if store.engine == "duckdb" else "TEXT"


def series_names(store: SqlStore, measurement: str,
                 series: list[dict[str, str]]) -> list[dict[str, Any]]:
    """For each series (its tags) that has a registry name: its tags, the name, the registry
    table and the id."""
    source = SOURCES.get(measurement)
    names = registry_names(store, measurement)
    if source is None or not names:
        return []
    return [{"tags": tags, "name": names[tags[source.tag]], "registry": source.table,
             "id": tags[source.tag]}
            for tags in series if tags.get(source.tag) in names]
