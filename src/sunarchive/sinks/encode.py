"""Points for the InfluxDB mirror: raw batches and 1 s rows → typed line protocol.

Both kinds of input become a :class:`Points` table first — an Arrow table with ``time_ns``
(int64, UTC epoch nanoseconds), ``tag_index`` (int32) and one float64 column per field (null =
missing), plus the measurement, tag keys, tag sets and each field's line protocol type in the
schema metadata. That table is what the disk buffer stores, so a buffered batch survives a
restart and is encoded only when it is sent.

Encoding is vectorized with Arrow compute kernels (which release the GIL): floats in their
shortest round-trip form (``23.4``, ``1e-07``), integers with the ``i`` suffix, booleans as
``true``/``false``; a missing value leaves its field out of the line and a point without any
field is not written. Names are escaped as the official InfluxDB clients escape them: ``,`` and
space in the measurement, ``,`` ``=`` and space in tag keys, tag values and field keys (newline,
carriage return and tab as ``\\n`` ``\\r`` ``\\t``). Tags with an empty value are left out; tags
are written sorted by key, fields in profile order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as _compute

from sunarchive.model import NS_PER_S, SampleBatch, StatsRows
from sunarchive.profiles.spec import Profile

PRECISION_NS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": NS_PER_S}
"""Nanoseconds per timestamp unit of each write precision."""
SQL_LINE_TYPES = {"INTEGER": "int", "BIGINT": "int", "BOOLEAN": "bool", "DOUBLE": "float"}
pc: Any = _compute
"""Arrow compute, untyped: the stubs do not know most kernels' scalar arguments."""
ArrowArray = Any
"""An Arrow array (typed as Any for the same reason)."""
_MEASUREMENT_ESCAPES: dict[str, str | int | None] = {
    ",": r"\,", " ": r"\ ", "\n": r"\n", "\r": r"\r", "\t": r"\t"}
_KEY_ESCAPES: dict[str, str | int | None] = {**_MEASUREMENT_ESCAPES, "=": r"\="}


def escape(text: str, measurement: bool = False) -> str:
    """``text`` escaped for line protocol (a measurement, or a tag key/value or field key)."""
    table = _MEASUREMENT_ESCAPES if measurement else _KEY_ESCAPES
    return text.translate(str.maketrans(table))


@dataclass
class Points:
    """Points of one measurement, columnar and typed (see the module docstring)."""

    table: pa.Table

    @property
    def meta(self) -> dict[str, str]:
        return {k.decode(): v.decode() for k, v in (self.table.schema.metadata or {}).items()}

    @property
    def measurement(self) -> str:
        return self.meta["measurement"]

    def __len__(self) -> int:
        return int(self.table.num_rows)

    def slice(self, start: int) -> Points:
        """The points from row ``start`` on."""
        return Points(self.table.slice(start))

    @classmethod
    def build(cls, measurement: str, tag_keys: tuple[str, ...],
              tag_sets: list[tuple[str, ...]], tag_index: np.ndarray[Any, Any],
              time_ns: np.ndarray[Any, Any], fields: dict[str, tuple[str, np.ndarray[Any, Any]]]
              ) -> Points:
        """``fields`` maps a field key to (line type, float64 values; NaN = missing)."""
        data: dict[str, Any] = {"time_ns": pa.array(time_ns, pa.int64()),
                                "tag_index": pa.array(tag_index, pa.int32())}
        for name, (_, values) in fields.items():
            values = np.asarray(values, np.float64)
            data["f:" + name] = pa.array(values, pa.float64(), mask=~np.isfinite(values))
        meta = {"measurement": measurement, "tag_keys": json.dumps(list(tag_keys)),
                "tag_sets": json.dumps([list(t) for t in tag_sets]),
                "types": json.dumps({k: t for k, (t, _) in fields.items()})}
        return cls(pa.table(data).replace_schema_metadata(meta))


def raw_points(batch: SampleBatch, profile: Profile) -> Points:
    """A raw batch as points: the profile's measurement, tag and field names and types."""
    types = {f.name: f.line_type for f in profile.fields}
    fields = {name: (types.get(name, "float"), values) for name, values in batch.fields.items()}
    return Points.build(batch.measurement, profile.tags, batch.tag_sets, batch.tag_index,
                        batch.time_ns, fields)


def stats_points(rows: StatsRows, tags: dict[int, tuple[str, ...]], profile: Profile) -> Points:
    """1 s rows as points of measurement ``<table prefix>_1s``: one field per statistics
    column (``voltage_avg``, ``power_energy_wh``, ``sample_count`` ...), typed by column."""
    types = {c.name: SQL_LINE_TYPES.get(c.sql_type, "float") for c in profile.stats_columns()}
    ids, index = np.unique(rows.series_id, return_inverse=True)
    tag_sets = [tags.get(int(i), ("",) * len(profile.tags)) for i in ids]
    fields = {name: (types.get(name, "float"), np.asarray(values, np.float64))
              for name, values in rows.columns.items()}
    return Points.build(profile.table("1s"), profile.tags, tag_sets, index.astype(np.int32),
                        rows.time_s.astype(np.int64) * NS_PER_S, fields)


def _heads(points: Points) -> ArrowArray:
    """``measurement,tag=v...`` per tag set (tags sorted by key, empty values left out)."""
    meta = points.meta
    keys = json.loads(meta["tag_keys"])
    name = escape(meta["measurement"], measurement=True)
    heads = []
    for values in json.loads(meta["tag_sets"]):
        pairs = sorted((k, v) for k, v in zip(keys, values, strict=False) if v != "")
        heads.append(name + "".join(f",{escape(k)}={escape(v)}" for k, v in pairs))
    return pa.array(heads, pa.string())


def _value_text(column: ArrowArray, line_type: str) -> ArrowArray:
    if line_type == "bool":
        return pc.if_else(pc.not_equal(column, 0.0), "true", "false")
    if line_type in ("int", "uint"):
        whole = pc.cast(pc.round(column), pa.int64())
        suffix = "i" if line_type == "int" else "u"
        return pc.binary_join_element_wise(pc.cast(whole, pa.string()), suffix, "")
    return pc.cast(column, pa.string())


def encode(points: Points, precision: str = "ns") -> tuple[ArrowArray, np.ndarray[Any, Any]]:
    """Line protocol of ``points``: one string per written point, each ending in ``\\n``,
    and the row of ``points`` each line came from (rows without any field are skipped)."""
    table = points.table
    types: dict[str, str] = json.loads(points.meta["types"])
    parts = []
    for name, line_type in types.items():
        column = table.column("f:" + name).combine_chunks()
        parts.append(pc.binary_join_element_wise("," + escape(name) + "=",
                                                 _value_text(column, line_type), ""))
    # pyarrow 26 drops rows whose inputs are all null with null_handling="skip": use
    # "replace" with "" and cut the leading comma
    joined = pc.binary_join_element_wise(*parts, "", null_handling="replace",
                                         null_replacement="") if parts else None
    if joined is None:
        return pa.array([], pa.string()), np.empty(0, np.int64)
    present = pc.greater(pc.binary_length(joined), 0)
    body = pc.utf8_slice_codeunits(joined, 1)
    rows = np.flatnonzero(present.to_numpy(zero_copy_only=False))
    if len(rows) < table.num_rows:
        table = table.take(rows)
        body = body.filter(present)
    heads = _heads(points).take(table.column("tag_index").combine_chunks())
    stamps = table.column("time_ns").to_numpy()
    unit = PRECISION_NS[precision]
    if unit != 1:
        stamps = np.floor_divide(stamps, unit)
    lines = pc.binary_join_element_wise(heads, " ", body, " ", pc.cast(pa.array(stamps),
                                        pa.string()), "\n", "")
    return lines.combine_chunks() if isinstance(lines, pa.ChunkedArray) else lines, rows


def body_of(lines: ArrowArray, start: int, end: int) -> bytes:
    """Lines ``start``..``end`` (exclusive) of :func:`encode` as one request body."""
    if end <= start:
        return b""
    buffers = lines.buffers()
    offsets = np.frombuffer(buffers[1], np.int32, count=end - start + 1,
                            offset=4 * (lines.offset + start))
    return memoryview(buffers[2])[int(offsets[0]):int(offsets[-1])].tobytes()
