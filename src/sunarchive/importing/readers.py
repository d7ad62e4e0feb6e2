"""Read CSV and JSON-lines files into Arrow tables (columnar, via pyarrow).

The fast path lets pyarrow infer column types. When that fails (a text value in a numeric
column, a broken JSON line), the file is read again with every column as text so that the
mapping can reject exactly the bad rows and keep the others.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson

from sunarchive.model import InputError

FORMATS = ("csv", "jsonl")
EXTENSIONS = {".csv": "csv", ".txt": "csv", ".tsv": "csv", ".jsonl": "jsonl",
              ".ndjson": "jsonl", ".json": "jsonl"}


@dataclass
class ReadResult:
    """A file's rows as a table; ``lines[i]`` is the file line of row ``i`` (1-based)."""

    table: pa.Table
    lines: npt.NDArray[np.int64]
    rejected: list[tuple[int, str]] = field(default_factory=list)
    """Lines that could not be read at all (broken JSON), with the reason."""


def format_of(path: Path, explicit: str | None = None) -> str:
    """``explicit`` if given, else the format its extension names."""
    if explicit:
        if explicit not in FORMATS:
            raise InputError(f"--format {explicit!r}: choose one of {', '.join(FORMATS)}")
        return explicit
    fmt = EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        raise InputError(f"{path}: unknown extension {path.suffix!r}; give --format csv|jsonl")
    return fmt


def read_file(path: Path, fmt: str) -> ReadResult:
    """Read ``path`` as ``fmt`` (``csv`` or ``jsonl``)."""
    return _read_csv(path) if fmt == "csv" else _read_jsonl(path)


def _delimiter(path: Path) -> str:
    return "\t" if path.suffix.lower() == ".tsv" else ","


def _read_csv(path: Path) -> ReadResult:
    parse = pacsv.ParseOptions(delimiter=_delimiter(path))
    try:
        table = pacsv.read_csv(path, parse_options=parse)
    except pa.ArrowInvalid:
        table = _read_csv_as_text(path, parse)
    # the header is line 1; one line per row (blank lines are not counted by pyarrow)
    return ReadResult(table, np.arange(2, table.num_rows + 2, dtype=np.int64))


def _read_csv_as_text(path: Path, parse: pacsv.ParseOptions) -> pa.Table:
    with path.open(newline="", encoding="utf-8") as f:
        header = next(csv.reader(f, delimiter=parse.delimiter), None)
    if not header:
        raise InputError(f"{path}: no header line")
    convert = pacsv.ConvertOptions(column_types={name: pa.string() for name in header},
                                   strings_can_be_null=True)
    try:
        return pacsv.read_csv(path, parse_options=parse, convert_options=convert)
    except pa.ArrowInvalid as exc:
        raise InputError(f"{path}: not readable as CSV: {exc}") from exc


def _read_jsonl(path: Path) -> ReadResult:
    try:
        table = pajson.read_json(path)
        stamps = [f for f in table.schema if pa.types.is_timestamp(f.type)]
        if stamps:
            # inferred JSON timestamps drop the offset ("...Z" reads as naive): read as text
            schema = pa.schema([pa.field(f.name, pa.string()) for f in stamps])
            table = pajson.read_json(path, parse_options=pajson.ParseOptions(
                explicit_schema=schema, unexpected_field_behavior="infer"))
    except pa.ArrowInvalid:
        return _read_jsonl_as_text(path)
    if _all_lines_filled(path, table.num_rows):
        return ReadResult(table, np.arange(1, table.num_rows + 1, dtype=np.int64))
    return _read_jsonl_as_text(path)   # blank lines: count them the slow way


def _all_lines_filled(path: Path, rows: int) -> bool:
    with path.open("rb") as f:
        count = sum(1 for line in f if line.strip())
    return count == rows


def _read_jsonl_as_text(path: Path) -> ReadResult:
    """Line by line: a broken line is rejected, values become text (checked by the mapping)."""
    columns: dict[str, list[str | None]] = {}
    lines: list[int] = []
    rejected: list[tuple[int, str]] = []
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                rejected.append((number, f"invalid JSON: {exc.msg}"))
                continue
            if not isinstance(obj, dict):
                rejected.append((number, "not a JSON object"))
                continue
            row = len(lines)
            lines.append(number)
            for key, value in obj.items():
                col = columns.setdefault(key, [None] * row)
                col.append(None if value is None else
                           value if isinstance(value, str) else json.dumps(value))
            for col in columns.values():
                if len(col) < row + 1:
                    col.append(None)
    table = pa.table({k: pa.array(v, pa.string()) for k, v in columns.items()})
    return ReadResult(table, np.asarray(lines, dtype=np.int64), rejected)
