"""The DuckDB file's own header, read before DuckDB opens it: a file cut short (a full disk,
a copy interrupted) still opens in DuckDB and answers from the blocks that are left, so its
length is checked against the block count its header declares.

Layout (DuckDB storage format 64 and later): a 4 KiB main header with the magic ``DUCK`` at
byte 8, then two 4 KiB database headers, each eight little-endian 64-bit words — checksum,
iteration, meta block, free list, block count, block allocation size (bytes), vector size,
serialization version. The one with the higher iteration is current; the blocks follow.
"""

from __future__ import annotations

import struct
from pathlib import Path

HEADER_BYTES = 4096
"""Size of each of the three headers at the start of the file, in bytes."""
_MAGIC = b"DUCK"
_WORDS = struct.Struct("<8Q")
_SANE_BLOCK_BYTES = range(4096, (1 << 24) + 1)


def expected_size_bytes(path: Path) -> int | None:
    """The file length the current database header implies, in bytes; None when the header
    is not one this reader knows (then DuckDB's own checks decide)."""
    try:
        with path.open("rb") as file:
            head = file.read(3 * HEADER_BYTES)
    except OSError:
        return None
    if len(head) < 3 * HEADER_BYTES or head[8:12] != _MAGIC:
        return None
    headers = [_WORDS.unpack_from(head, HEADER_BYTES * i) for i in (1, 2)]
    current = max(headers, key=lambda words: words[1])
    block_count, block_bytes = int(current[4]), int(current[5])
    if block_bytes not in _SANE_BLOCK_BYTES or block_count >= 1 << 40:
        return None
    return 3 * HEADER_BYTES + block_count * block_bytes


def cut_short_by_bytes(path: Path) -> int:
    """How many bytes the file lacks against its header (0 when whole or unknown)."""
    expected = expected_size_bytes(path)
    if expected is None:
        return 0
    return max(0, expected - path.stat().st_size)
