"""Profile and field specifications, and the statistics columns each field kind stores."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from sunarchive.model import FieldKind

IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
ENERGY_DECIMALS = 6
RESERVED_COLUMNS = {"time", "series_id", "day", "sample_count", "covered_s"}


@dataclass(frozen=True)
class ColumnSpec:
    """One statistics column: its name, SQL type and the merge rule used for rollups.

    Merge rules: ``sum``, ``min``, ``max``, ``any`` (boolean or), ``mean`` (count-weighted,
    needs ``count_column``), ``stddev`` (population, from mean and count), ``first`` and
    ``last`` (by time).
    """

    name: str
    sql_type: str
    merge: str
    count_column: str | None = None
    mean_column: str | None = None


@dataclass(frozen=True)
class FieldSpec:
    """A field of a measurement: unit, kind and, for counters, the reset rule input."""

    name: str
    unit: str
    kind: FieldKind
    description: str = ""
    energy_column: str | None = None
    max_rate_per_s: float | None = None
    decimals: int | None = None
    value_type: str | None = None
    """``int``, ``uint``, ``float`` or ``bool`` as written to line protocol (profile key
    ``type``); ``None`` = by kind (see :attr:`line_type`)."""
    column: str | None = None
    """Stem of the field's statistics columns (``<stem>_avg`` ...) when it is not the
    field's name: a name whose columns would clash with others in the table (SQL names are
    case-insensitive in DuckDB) or pass PostgreSQL's 63 bytes (profile key ``column``)."""

    @property
    def stem(self) -> str:
        """Stem of the statistics columns: ``column``, else the field's name."""
        return self.column or self.name

    @property
    def line_type(self) -> str:
        """The value type in line protocol: the profile's ``type``, else ``bool`` for a flag,
        ``int`` for a state and ``float`` for gauges, power and counters."""
        if self.value_type is not None:
            return self.value_type
        return {FieldKind.FLAG: "bool", FieldKind.STATE: "int"}.get(self.kind, "float")

    def columns(self) -> list[ColumnSpec]:
        """Statistics columns stored for this field at every tier."""
        f = self.stem
        count = f"{f}_count"
        if self.kind in (FieldKind.GAUGE, FieldKind.POWER):
            cols = [
                ColumnSpec(f"{f}_avg", "DOUBLE", "mean", count_column=count),
                ColumnSpec(f"{f}_min", "DOUBLE", "min"),
                ColumnSpec(f"{f}_max", "DOUBLE", "max"),
                ColumnSpec(f"{f}_stddev", "DOUBLE", "stddev", count_column=count,
                           mean_column=f"{f}_avg"),
                ColumnSpec(count, "INTEGER", "sum"),
            ]
            if self.kind is FieldKind.POWER:
                cols.append(ColumnSpec(self.energy_column_name, "DOUBLE", "sum"))
            return cols
        if self.kind is FieldKind.COUNTER:
            return [
                ColumnSpec(f"{f}_first", "DOUBLE", "first"),
                ColumnSpec(f"{f}_last", "DOUBLE", "last"),
                ColumnSpec(f"{f}_increase", "DOUBLE", "sum"),
                ColumnSpec(count, "INTEGER", "sum"),
            ]
        if self.kind is FieldKind.STATE:
            return [
                ColumnSpec(f"{f}_first", "BIGINT", "first"),
                ColumnSpec(f"{f}_last", "BIGINT", "last"),
                ColumnSpec(f"{f}_min", "BIGINT", "min"),
                ColumnSpec(f"{f}_max", "BIGINT", "max"),
                ColumnSpec(f"{f}_changes", "INTEGER", "sum"),
                ColumnSpec(count, "INTEGER", "sum"),
            ]
        return [  # flag
            ColumnSpec(f"{f}_any", "BOOLEAN", "any"),
            ColumnSpec(f"{f}_true_count", "INTEGER", "sum"),
            ColumnSpec(count, "INTEGER", "sum"),
        ]

    def rounded_columns(self) -> dict[str, int]:
        """Columns stored rounded, with their decimals (sensor resolution; energy in µWh).

        Rounding to the sensor's resolution lets DuckDB store a 1 s row in ~40 bytes; the
        error it adds is below what the sensor can tell apart.
        """
        if self.decimals is None or self.kind not in (FieldKind.GAUGE, FieldKind.POWER):
            return {}
        out = {f"{self.stem}_{stat}": self.decimals for stat in ("avg", "min", "max", "stddev")}
        if self.kind is FieldKind.POWER:
            out[self.energy_column_name] = ENERGY_DECIMALS
        return out

    @property
    def energy_column_name(self) -> str:
        """Column holding the energy in Wh integrated from this power field."""
        return self.energy_column or f"{self.stem}_energy_wh"


COMMON_COLUMNS = [
    ColumnSpec("sample_count", "INTEGER", "sum"),
    ColumnSpec("covered_s", "INTEGER", "sum"),
]


@dataclass(frozen=True)
class NamedRollup:
    """A rollup a profile names: a tier under another name, or merged across series.

    ``group_by`` None keeps one row per series; a tuple of tag names merges every series
    sharing those tags (e.g. ``(site_id,)``: all devices of a site together).
    """

    name: str
    tier: str
    group_by: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Profile:
    """A measurement schema: tags, fields and storage hints."""

    name: str
    tags: tuple[str, ...]
    fields: tuple[FieldSpec, ...]
    description: str = ""
    sample_rate_hz: float | None = None
    max_gap_s: float = 120.0
    chunk_interval: str = "1 day"
    source_file: str = "<builtin>"
    extra: dict[str, object] = field(default_factory=dict, compare=False)
    rollups: tuple[NamedRollup, ...] = ()
    table_prefix: str | None = None
    """Tables are ``<table_prefix>_<tier>``; default the name. An inferred profile keeps
    its measurement's exact name (``kWh``, ``°C``, quoted in SQL) unless that would clash
    with another measurement's tables or be too long; stores from before kept a sanitized
    prefix (``kwh``)."""
    tag_columns: tuple[str, ...] = ()
    """Column of each tag, in ``tags`` order, where one is not the tag's name (profile key
    ``tag_columns``: tag → column); empty: every tag's column is its name."""
    view: str | None = None
    """Name of a view with one row per stored second and the plain names of line protocol
    (``time``, the tags, one column per field), as InfluxDB 3's SQL shows a measurement
    (profile key ``view``; :mod:`sunarchive.storage.plain_views`). The Hoymiles profiles
    name ``dtu``, ``inverter`` and ``port``."""
    view_time: str = "time"
    """Name of the view's time column (profile key ``view_time``; ``health_checks`` names
    ``timestamp``, as HOMEPOT's table has it)."""
    tag_types: tuple[str, ...] = ()
    """SQL type of each tag in the view, in ``tags`` order: ``text`` or ``int`` (BIGINT; a
    value that is not an integer reads as NULL) (profile key ``tag_types``: tag → type);
    empty: every tag is text. Stored tag columns stay text."""
    view_json: str | None = None
    """Name of a JSON column of the view holding the row's fields as one object (profile key
    ``view_json``; HOMEPOT's ``response_data``)."""
    view_hypertable: bool = False
    """On TimescaleDB, the view is a hypertable of its own under that name, derived from the
    1 s tier and kept in step with it (profile key ``view_hypertable``; HOMEPOT's
    ``health_checks`` and Perocube's measurement tables are hypertables in their documents:
    :mod:`sunarchive.storage.postgres.view_tables`). Elsewhere it is the view."""
    only_columns: frozenset[str] | None = field(default=None, compare=False)
    """Set only on a copy made for one read (:meth:`narrowed_to`): the statistics columns
    it has besides the common ones; None (every profile of the store): all."""

    def tag_column(self, tag: str) -> str:
        """The column holding ``tag``'s values."""
        if not self.tag_columns:
            return tag
        return self.tag_columns[self.tags.index(tag)]

    def tag_type(self, tag: str) -> str:
        """``text`` or ``int``: the type ``tag`` has in the profile's view."""
        return self.tag_types[self.tags.index(tag)] if self.tag_types else "text"

    @property
    def tag_column_names(self) -> tuple[str, ...]:
        """The tag columns, in ``tags`` order."""
        return self.tag_columns or self.tags

    def stats_columns(self) -> list[ColumnSpec]:
        """All statistics columns (common ones first), in table order."""
        cols = list(COMMON_COLUMNS)
        for spec in self.fields:
            cols.extend(spec.columns())
        if self.only_columns is not None:
            cols = [c for c in cols if c in COMMON_COLUMNS or c.name in self.only_columns]
        return cols

    def narrowed_to(self, columns: Iterable[str]) -> Profile:
        """A copy of this profile for a read of ``columns`` only: its statistics columns are
        those, what they are merged from (a mean its count; a standard deviation its mean
        and count) and the common ones, so the SQL that merges open buckets computes no
        other field (the dashboard's curve of one field took half the time of a read of all
        fields, its daily energy a quarter: bench/README.md, read_under_write).
        Names that are not statistics columns are left to the read to refuse."""
        by_name = {c.name: c for c in self.stats_columns()}
        wanted: set[str] = set()
        for name in columns:
            spec = by_name.get(name)
            if spec is not None:
                wanted.update(n for n in (name, spec.count_column, spec.mean_column) if n)
        fields = tuple(f for f in self.fields if any(c.name in wanted for c in f.columns()))
        return replace(self, fields=fields, only_columns=frozenset(wanted))

    def field(self, name: str) -> FieldSpec:
        for spec in self.fields:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def fields_of(self, *kinds: FieldKind) -> list[FieldSpec]:
        return [f for f in self.fields if f.kind in kinds]

    def table(self, tier: str) -> str:
        """Table name of a tier, e.g. ``ps100_readings_1s``."""
        return f"{self.table_prefix or self.name}_{tier}"
