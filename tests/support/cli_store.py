"""Where a test's store is, as the CLI takes it (``--db FILE`` or ``--database-url URL``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class Store:
    """The CLI arguments naming a store, and the folder commands run in."""

    args: list[str]
    folder: Path
