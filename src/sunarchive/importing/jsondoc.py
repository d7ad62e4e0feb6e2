"""Whole-document JSON files (``--format json``) → one table, nested objects flattened.

A file holds one JSON document:

* an array of record objects — one row each;
* an object with a time column at the top (``time``, ``timestamp``, … or ``--time-column``)
  — one row, a *snapshot* (an older system's status dump);
* an object without one, of whose values exactly one is a list holding objects — its
  elements are the records (``{"meta": {...}, "data": [{...}, ...]}``);
* any other object — one row.

Nested objects become columns with dotted names: ``{"pv": {"power": 5}}`` → ``pv.power``.
A list value is kept as its JSON text (it matches no field). Rows are numbered by record,
1-based; an array element that is not an object is rejected as ``record N``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from sunarchive.model import InputError

Record = dict[str, Any]


def parse_document(path: Path, data: bytes) -> Any:
    """The JSON document in ``data``; InputError naming where it is broken."""
    try:
        return json.loads(data)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON at line {exc.lineno} column {exc.colno}: "
                         f"{exc.msg} (one object per line? give --format jsonl)") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text: {exc.reason}") from None


def records_of(doc: Any, time_names: set[str]) -> list[Any]:
    """The records a document holds (see the module docstring)."""
    if isinstance(doc, list):
        return doc
    if not isinstance(doc, dict):
        raise InputError("the document is neither an object nor an array of objects")
    if time_names & doc.keys():
        return [doc]
    lists = [v for v in doc.values() if isinstance(v, list)
             and any(isinstance(r, dict) for r in v)]
    return lists[0] if len(lists) == 1 else [doc]


def flatten(record: Record, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(dotted column, leaf value)`` pairs of a record; lists stay whole."""
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from flatten(value, name + ".")
        else:
            yield name, value


def to_table(records: list[Any]) -> tuple[pa.Table, np.ndarray[Any, np.dtype[np.int64]],
                                          list[tuple[int, str]]]:
    """The object records as a table, their record numbers, and the rejected ones."""
    columns: dict[str, list[Any]] = {}
    numbers: list[int] = []
    rejected: list[tuple[int, str]] = []
    for number, record in enumerate(records, start=1):
        if not isinstance(record, dict):
            rejected.append((number, f"a JSON {type(record).__name__}, not an object"))
            continue
        row = len(numbers)
        numbers.append(number)
        for name, value in flatten(record):
            column = columns.setdefault(name, [None] * row)
            column.append(json.dumps(value) if isinstance(value, list) else value)
        for column in columns.values():
            if len(column) <= row:
                column.append(None)
    table = pa.table({name: _array(values) for name, values in columns.items()})
    return table, np.asarray(numbers, np.int64), rejected


def _array(values: list[Any]) -> pa.Array[Any]:
    """A typed column when the values agree (numbers, text, booleans), else text."""
    try:
        typed: pa.Array[Any] = pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        typed = pa.array([v if v is None or isinstance(v, str) else json.dumps(v)
                         for v in values], pa.string())
    return typed
