"""Read CSV, JSON lines, JSON documents and Parquet files into Arrow tables (columnar).

The CSV and JSON-lines fast path lets pyarrow infer column types. When that fails (a text
value in a numeric column, a broken JSON line), the file is read again with every column as
text so that the mapping can reject exactly the bad rows and keep the others. A CSV file
whose rows pyarrow cannot split (a row with the wrong number of cells, an unterminated
quote, invalid UTF-8) or whose rows are not one per line (blank lines, a quoted line break)
is checked line by line (:func:`_read_csv_by_line`): each bad line is rejected with its
number, the good ones are parsed as before. Line protocol is not a table:
:mod:`sunarchive.importing.lineproto` reads it.

Formats by extension: ``.csv .txt .tsv`` → csv (the delimiter is a tab when the header line
has more tabs than commas, or for ``.tsv``); ``.jsonl .ndjson`` → jsonl; ``.json`` → sniffed:
json when the file starts with ``[`` or holds one document, jsonl when its first line is an
object and more lines follow; ``.lp .line .influx`` → lineprotocol; ``.parquet .pq`` →
parquet.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from sunarchive.importing import jsondoc
from sunarchive.model import InputError

FORMATS = ("csv", "json", "jsonl", "lineprotocol", "parquet")
EXTENSIONS = {".csv": "csv", ".txt": "csv", ".tsv": "csv", ".jsonl": "jsonl",
              ".ndjson": "jsonl", ".json": "json", ".lp": "lineprotocol",
              ".line": "lineprotocol", ".influx": "lineprotocol", ".parquet": "parquet",
              ".pq": "parquet"}
"""Extension → format; ``.json`` is sniffed (json or jsonl)."""
UNITS = {"csv": "line", "jsonl": "line", "lineprotocol": "line", "json": "record",
         "parquet": "row"}
"""What a rejected row's number counts, per format."""
SNIFF_BYTES = 1 << 16


@dataclass
class ReadResult:
    """A file's rows as a table; ``lines[i]`` is the number of row ``i`` (1-based): its file
    line (csv, jsonl), record (json) or row (parquet)."""

    table: pa.Table
    lines: npt.NDArray[np.int64]
    rejected: list[tuple[int, str]] = field(default_factory=list)
    """Rows that could not be read at all (broken JSON), with the reason."""


def format_of(path: Path, explicit: str | None = None) -> str:
    """``explicit`` if given, else the format its extension names (``.json`` sniffed)."""
    if explicit:
        if explicit not in FORMATS:
            raise InputError(f"--format {explicit!r}: choose one of {', '.join(FORMATS)}")
        return explicit
    fmt = EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        raise InputError(f"{path}: unknown extension {path.suffix!r}; give --format "
                         + "|".join(FORMATS))
    return sniff_json(path) if fmt == "json" else fmt


def sniff_json(path: Path) -> str:
    """``json`` for one document (an array, or an object over one or more lines), ``jsonl``
    when the first line is a whole object and more lines follow."""
    with path.open("rb") as f:
        head = f.read(SNIFF_BYTES)
    text = head.lstrip()
    if not text.startswith(b"{"):
        return "json"
    first, _, rest = text.partition(b"\n")
    if not rest.strip():
        return "json"   # one line: one document either way
    try:
        json.loads(first)
    except (json.JSONDecodeError, UnicodeDecodeError):
        # a broken first record of JSON lines still ends in "}"; a document's first line not
        return "jsonl" if first.rstrip().endswith(b"}") else "json"
    return "jsonl"


def read_file(path: Path, fmt: str, time_names: set[str] | None = None) -> ReadResult:
    """Read ``path`` as ``fmt`` (a table format). ``time_names`` tells a JSON snapshot
    object from a wrapper of records (see :mod:`sunarchive.importing.jsondoc`)."""
    if fmt == "csv":
        return _read_csv(path)
    if fmt == "jsonl":
        return _read_jsonl(path)
    if fmt == "json":
        return _read_json(path, time_names or set())
    if fmt == "parquet":
        return _read_parquet(path)
    raise InputError(f"{path}: {fmt} is not a table format")


def _read_json(path: Path, time_names: set[str]) -> ReadResult:
    doc = jsondoc.parse_document(path, path.read_bytes())
    records = jsondoc.records_of(doc, time_names)
    if not records:
        raise InputError(f"{path}: the document holds no records")
    table, numbers, rejected = jsondoc.to_table(records)
    return ReadResult(table, numbers, rejected)


def _read_parquet(path: Path) -> ReadResult:
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{path}: not readable as Parquet: {exc}") from exc
    while any(pa.types.is_struct(f.type) for f in table.schema):
        table = table.flatten()   # struct columns → dotted names, as for JSON
    return ReadResult(table, np.arange(1, table.num_rows + 1, dtype=np.int64))


def _delimiter(path: Path) -> str:
    """Tab for ``.tsv`` or a header line with more tabs than commas, else comma."""
    if path.suffix.lower() == ".tsv":
        return "\t"
    with path.open("rb") as f:
        header = f.readline(SNIFF_BYTES)
    return "\t" if header.count(b"\t") > header.count(b",") else ","


def _read_csv(path: Path) -> ReadResult:
    delimiter = _delimiter(path)
    try:
        table = _parse_csv(path, delimiter)
    except pa.ArrowInvalid:
        return _read_csv_by_line(path, delimiter)
    if any(pa.types.is_binary(f.type) for f in table.schema):
        return _read_csv_by_line(path, delimiter)   # pyarrow's type for invalid UTF-8
    if _lines_after_header(path) != table.num_rows:
        return _read_csv_by_line(path, delimiter)   # blank lines or quoted line breaks
    # the header is line 1, then one line per row
    return ReadResult(table, np.arange(2, table.num_rows + 2, dtype=np.int64))


def _parse_csv(source: Path | io.BytesIO, delimiter: str) -> pa.Table:
    """Types inferred; when that fails (text in a numeric column) every column as text.
    ArrowInvalid when the rows cannot be split or are not UTF-8."""
    parse = pacsv.ParseOptions(delimiter=delimiter)
    try:
        return pacsv.read_csv(source, parse_options=parse)
    except pa.ArrowInvalid:
        if isinstance(source, io.BytesIO):
            source.seek(0)
        header = _header_of(source, delimiter)
    convert = pacsv.ConvertOptions(column_types={name: pa.string() for name in header},
                                   strings_can_be_null=True)
    if isinstance(source, io.BytesIO):
        source.seek(0)
    return pacsv.read_csv(source, parse_options=parse, convert_options=convert)


def _header_of(source: Path | io.BytesIO, delimiter: str) -> list[str]:
    """The cells of the first non-blank line; ArrowInvalid when there is none."""
    with source.open("rb") if isinstance(source, Path) else contextlib.nullcontext(source) as f:
        for raw in f:
            cells, problem = _cells(raw, delimiter)
            if cells is not None or problem:
                if not cells:
                    raise pa.ArrowInvalid(f"header: {problem}")
                return cells
    raise pa.ArrowInvalid("no header line")


def _lines_after_header(path: Path) -> int:
    """Lines of the file after the first (counting a last line without a newline); lines
    end in LF (or CRLF), or in CR alone when the file holds no LF (old Mac exports)."""
    lf = cr = 0
    last = b"\n"
    with path.open("rb") as f:
        while chunk := f.read(1 << 24):
            lf += chunk.count(b"\n")
            cr += chunk.count(b"\r")
            last = chunk[-1:]
    return lf - (last == b"\n") if lf else cr - (last == b"\r")


def _cells(raw: bytes, delimiter: str) -> tuple[list[str] | None, str | None]:
    """The cells of one line (None for a blank line), or why it is not a CSV row."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 text (byte {exc.start + 1} of the line)"
    if not text.strip():
        return None, None
    try:
        return next(csv.reader((text.rstrip("\r\n"),), delimiter=delimiter, strict=True)), None
    except csv.Error as exc:
        return None, f"not a CSV row: {exc}"


def _read_csv_by_line(path: Path, delimiter: str) -> ReadResult:
    """Each line on its own (a quoted value cannot span lines here): a line that is not
    UTF-8, not one CSV row, or of another number of cells than the header is rejected with
    its number; the good lines are then parsed together as in the fast path."""
    header: list[str] | None = None
    good = io.BytesIO()
    lines: list[int] = []
    rejected: list[tuple[int, str]] = []
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            cells, problem = _cells(raw, delimiter)
            if problem and header is None:
                raise InputError(f"{path}: line {number}, the header: {problem}")
            if problem or cells is None:
                rejected += [(number, problem)] if problem else []
                continue
            if header is not None and len(cells) != len(header):
                rejected.append((number, f"{len(cells)} cells, the header has "
                                         f"{len(header)}"))
                continue
            if header is None:
                header = cells
            else:
                lines.append(number)
            good.write(raw.rstrip(b"\r\n") + b"\n")
    if header is None:
        raise InputError(f"{path}: no header line")
    return ReadResult(_parse_good_lines(path, good, len(lines), delimiter),
                      np.asarray(lines, np.int64), rejected)


def _parse_good_lines(path: Path, good: io.BytesIO, rows: int, delimiter: str) -> pa.Table:
    good.seek(0)
    try:
        table = _parse_csv(good, delimiter)
    except pa.ArrowInvalid as exc:
        raise InputError(f"{path}: not readable as CSV: {exc}") from exc
    if table.num_rows != rows:
        raise InputError(f"{path}: {table.num_rows} CSV rows in {rows} lines")
    return table


def _read_jsonl(path: Path) -> ReadResult:
    try:
        table = pajson.read_json(path)
        stamps = [f for f in table.schema if pa.types.is_timestamp(f.type)]
        if stamps:
            # inferred JSON timestamps drop the offset ("...Z" reads as naive): read as text
            schema = pa.schema([pa.field(f.name, pa.string()) for f in stamps])
            table = pajson.read_json(path, parse_options=pajson.ParseOptions(
                explicit_schema=schema, unexpected_field_behavior="infer"))
        table.validate(full=True)   # the JSON reader lets invalid UTF-8 in text values pass
    except pa.ArrowInvalid:
        return _read_jsonl_as_text(path)
    if _all_lines_filled(path, table.num_rows):
        return ReadResult(table, np.arange(1, table.num_rows + 1, dtype=np.int64))
    return _read_jsonl_as_text(path)   # blank lines: count them the slow way


def _all_lines_filled(path: Path, rows: int) -> bool:
    """True when the file is exactly ``rows`` lines with no blank line among them (then row
    i is line i + 1). A blank line anywhere shifts the numbers: the caller reads line by line."""
    count = 0
    with path.open("rb") as f:
        for line in f:
            if not line.strip():
                return False
            count += 1
    return count == rows


def _read_jsonl_as_text(path: Path) -> ReadResult:
    """Line by line: a broken line is rejected, values become text (checked by the mapping)."""
    columns: dict[str, list[str | None]] = {}
    lines: list[int] = []
    rejected: list[tuple[int, str]] = []
    with path.open("rb") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line, parse_float=str, parse_int=str)   # text kept
            except json.JSONDecodeError as exc:
                rejected.append((number, f"invalid JSON: {exc.msg}"))
                continue
            except UnicodeDecodeError as exc:
                rejected.append((number, f"not UTF-8 text (byte {exc.start + 1} of the "
                                         "line)"))
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
