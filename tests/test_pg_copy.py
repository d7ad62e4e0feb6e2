"""Binary COPY encoding against a real PostgreSQL server: what goes in comes back."""

from __future__ import annotations

from datetime import UTC, date

import numpy as np
import psycopg
import pyarrow as pa
import pytest

from sunarchive.storage.postgres.copy import copy_chunks

pytestmark = pytest.mark.engine

TABLE = """CREATE TABLE copied (k INTEGER, t TIMESTAMPTZ, d DATE, s INTEGER, big BIGINT,
           small SMALLINT, x DOUBLE PRECISION, ok BOOLEAN, label TEXT)"""


def sample_table(n: int, seed: int) -> pa.Table:
    """``n`` rows with NULLs scattered over every column and a few text values, so rows
    fall into many layouts (which cells are NULL, which text)."""
    rng = np.random.default_rng(seed)

    def holes() -> np.ndarray:
        return rng.random(n) < 0.2

    seconds = 1_780_000_000 + np.arange(n, dtype=np.int64)
    return pa.table({
        "k": pa.array(np.arange(n, dtype=np.int32)),
        "t": pa.array(seconds * 1_000_000, pa.timestamp("us", "UTC"), mask=holes()),
        "d": pa.array((seconds // 86400).astype(np.int32), pa.date32(), mask=holes()),
        "s": pa.array(rng.integers(-2**31, 2**31 - 1, n, dtype=np.int32), mask=holes()),
        "big": pa.array(rng.integers(-2**62, 2**62, n), mask=holes()),
        "small": pa.array(rng.integers(-2**15, 2**15 - 1, n, dtype=np.int16), mask=holes()),
        "x": pa.array(rng.normal(0, 1e3, n), mask=holes()),
        "ok": pa.array(rng.random(n) < 0.5, mask=holes()),
        "label": pa.array(rng.choice(["panel_1", "Zählerstand", ""], n), mask=holes()),
    })


def expected_rows(table: pa.Table) -> list[tuple[object, ...]]:
    columns = table.to_pydict()
    rows = []
    for i in range(table.num_rows):
        stamp = columns["t"][i]
        rows.append((i, None if stamp is None else stamp.astimezone(UTC), columns["d"][i],
                     *(columns[c][i] for c in ("s", "big", "small", "x", "ok", "label"))))
    return rows


@pytest.mark.parametrize(("rows", "chunk"), [(1, 16_384), (5_000, 700), (3, 1)])
def test_binary_copy_round_trips_every_type_and_null(pg_url: str, rows: int,
                                                     chunk: int) -> None:
    table = sample_table(rows, seed=rows)
    with psycopg.connect(pg_url, autocommit=True) as con:
        con.execute("SET TIME ZONE 'UTC'")
        con.execute(TABLE)
        with con.cursor().copy("COPY copied FROM STDIN (FORMAT BINARY)") as copy:
            for piece in copy_chunks(table, rows_per_chunk=chunk):
                copy.write(piece)
        got = con.execute("SELECT * FROM copied ORDER BY k").fetchall()
    assert got == expected_rows(table)   # floats too: binary COPY is bit-exact


def test_one_layout_fast_path_keeps_row_order(pg_url: str) -> None:
    """Every row with the same layout (no NULLs, one text value): rows go in as given."""
    n = 2_000
    table = pa.table({"k": pa.array(np.arange(n, dtype=np.int32)),
                      "t": pa.array(np.arange(n) * 1_000_000, pa.timestamp("us", "UTC")),
                      "d": pa.array(np.full(n, 20_000, np.int32), pa.date32()),
                      "s": pa.array(np.arange(n, dtype=np.int32)),
                      "big": pa.array(np.arange(n) * 3), "small": pa.array(
                          np.full(n, 7, np.int16)), "x": pa.array(np.arange(n) / 8),
                      "ok": pa.array(np.arange(n) % 2 == 0), "label": pa.array(["a"] * n)})
    with psycopg.connect(pg_url, autocommit=True) as con:
        con.execute(TABLE)
        with con.cursor().copy("COPY copied FROM STDIN (FORMAT BINARY)") as copy:
            for piece in copy_chunks(table):
                copy.write(piece)
        got = con.execute("SELECT s, big, x, ok, label, d FROM copied ORDER BY ctid").fetchall()
    assert got == [(i, 3 * i, i / 8, i % 2 == 0, "a", date(2024, 10, 4)) for i in range(n)]
