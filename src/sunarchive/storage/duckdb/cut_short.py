"""A DuckDB file cut short (a full disk, an interrupted copy) still opens in DuckDB and
answers from the blocks that are left; reading a lost block fails later, or never if no
query touches it. So a store is checked at open: the blocks DuckDB counts as in use must
all lie within the file.

The header's own block count is no bound: DuckDB cuts free blocks off the end of the file
without lowering it (a store after retention is legitimately shorter than its header says).
A block in use, though, holds data and so lies in the file: ``used_blocks`` ≤ the blocks the
file's length holds, unless the file lost part of itself. The check is skipped while a
write-ahead log is pending (its replay may count blocks not yet written).
"""

from __future__ import annotations

from pathlib import Path

import duckdb

HEADER_BYTES = 3 * 4096
"""The main header and the two database headers before the first block, in bytes."""


def missing_blocks(con: duckdb.DuckDBPyConnection, path: Path) -> int:
    """Blocks in use that the file is too short to hold (0 when whole or not checkable)."""
    if Path(f"{path}.wal").exists() or not path.exists():
        return 0
    row = con.execute("SELECT used_blocks, block_size FROM pragma_database_size() "
                      "WHERE database_name = current_database()").fetchone()
    if row is None or not row[1]:
        return 0
    used, block_bytes = int(row[0]), int(row[1])
    held = max(0, path.stat().st_size - HEADER_BYTES) // block_bytes
    return max(0, used - held)
