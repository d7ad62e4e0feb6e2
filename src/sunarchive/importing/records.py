"""Which file contents were imported before: rows ``import:<sha256>:<measurement>`` of the
store's ``sunarchive_meta`` table, valued with the time of the import.

The records are read once per run and written in a few multi-row statements at its end, so
thousands of small files (a directory of JSON snapshots) cost no query each.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any


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
        self.known: dict[str, str] = {} if store is None else store.meta_values("import:")

    def when(self, key: str) -> str | None:
        """When the content with this key was imported, or None."""
        return self.known.get(key)

    def add(self, keys: list[str], when: str) -> None:
        """Record ``keys`` as imported at ``when`` (replacing older records of them)."""
        assert self.store is not None
        items = dict.fromkeys(keys, when)
        self.store.put_meta(items)
        self.known.update(items)
