"""Which file contents were imported before: rows ``import:<sha256>:<measurement>`` of the
store's ``sunarchive_meta`` table, valued with the time of the import.

The records are read once per run and written in a few multi-row statements at its end, so
thousands of small files (a directory of JSON snapshots) cost no query each.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

CHUNK_ROWS = 500
"""Records per INSERT statement."""


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def record_key(sha: str, measurement: str) -> str:
    return f"import:{sha}:{measurement}"


class Records:
    """The import records of ``store`` (``None``: a dry run without a store, nothing known)."""

    def __init__(self, store: Any | None) -> None:
        self.store = store
        self.known: dict[str, str] = {}
        if store is not None:
            rows = store._fetch("SELECT key, value FROM sunarchive_meta WHERE key LIKE "
                                f"{store._p}", ["import:%"])
            self.known = {str(key): str(value) for key, value in rows}

    def when(self, key: str) -> str | None:
        """When the content with this key was imported, or None."""
        return self.known.get(key)

    def add(self, keys: list[str], when: str) -> None:
        """Record ``keys`` as imported at ``when`` (replacing older records of them)."""
        store = self.store
        assert store is not None
        p = store._p
        for lo in range(0, len(keys), CHUNK_ROWS):
            chunk = keys[lo:lo + CHUNK_ROWS]
            store._execute(f"DELETE FROM sunarchive_meta WHERE key IN "
                           f"({', '.join([p] * len(chunk))})", chunk)
            values = ", ".join([f"({p}, {p})"] * len(chunk))
            store._execute(f"INSERT INTO sunarchive_meta VALUES {values}",
                           [v for key in chunk for v in (key, when)])
        self.known.update(dict.fromkeys(keys, when))
