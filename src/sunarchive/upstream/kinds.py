"""What a registry kind is: the shape the Perocube registries (:mod:`.perocube.tables`) and
HOMEPOT's (:mod:`.homepot.registry`) both fill, so one CLI (``sunarchive registry``), one REST
route (``/api/v1/registry/{kind}``) and one set of rules (:mod:`sunarchive.upstream.registry`)
serve them all."""

from __future__ import annotations

from dataclasses import dataclass

INT_MIN, INT_MAX = -(2**31), 2**31 - 1
"""The range of an ``INTEGER`` column."""


@dataclass(frozen=True)
class Column:
    """A column a user sets: ``type`` is ``text``, ``integer``, ``number`` (a double) or
    ``reference`` (the id of an active row of kind ``references``)."""

    name: str
    type: str
    help: str
    references: str | None = None


@dataclass(frozen=True)
class Kind:
    """One registry: the name users give it (CLI, REST), its table and its columns.

    ``ids_given``: the user (or the data) gives each row's id — HOMEPOT's integers, from
    ``id_low`` to 2³¹−1 — instead of a sequence drawing it; ``name_required``: a row needs a
    non-empty ``name``; ``system``: the upstream system the kind is from."""

    name: str
    table: str
    columns: tuple[Column, ...]
    system: str = "Perocube"
    ids_given: bool = False
    name_required: bool = True
    id_low: int = 1

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]
