"""Approximate on-disk bytes per table from DuckDB's segment layout."""

from __future__ import annotations

from collections import defaultdict

import duckdb


def table_bytes(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Bytes each table's persistent segments occupy (segment sizes from block offsets).

    A segment ends where the next segment in the same block starts, or at the block end;
    segments spilling into extra blocks count those blocks whole. Data not yet checkpointed
    (still in the WAL) is not counted.
    """
    size_row = con.execute("SELECT block_size FROM pragma_database_size()").fetchone()
    block = int(size_row[0]) if size_row else 262144
    tables = [r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE NOT temporary").fetchall()]
    segments: list[tuple[str, int, int, int]] = []
    for table in tables:
        quoted = table.replace("'", "''")
        rows = con.execute(
            f"SELECT block_id, block_offset, len(additional_block_ids) "
            f"FROM pragma_storage_info('{quoted}') WHERE persistent AND block_id >= 0"
        ).fetchall()
        segments.extend((table, int(b), int(o), int(x)) for b, o, x in rows)
    by_block: dict[int, list[tuple[int, str, int]]] = defaultdict(list)
    for table, block_id, offset, extra in segments:
        by_block[block_id].append((offset, table, extra))
    out: dict[str, int] = defaultdict(int)
    for entries in by_block.values():
        entries.sort()
        for i, (offset, table, extra) in enumerate(entries):
            end = entries[i + 1][0] if i + 1 < len(entries) else block
            out[table] += (end - offset) + extra * block
    return dict(out)
