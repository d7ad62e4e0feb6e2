"""What reading one file needs (options, profiles, the store) and what it yields (rows per
measurement, rejected rows, notes)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sunarchive.importing.lab import Preset
from sunarchive.importing.mapping import Mapped, Mapping
from sunarchive.profiles import Profile


@dataclass
class ImportOptions:
    fmt: str | None = None
    measurement: str | None = None
    time_column: str | None = None
    timezone: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    renames: dict[str, str] = field(default_factory=dict)
    dry_run: bool = False
    precision: str = "ns"
    """Unit of line-protocol timestamps: ``ns``, ``us``, ``ms``, ``s`` or ``auto``."""
    preset: Preset | None = None
    """Column aliases and derived fields applied to each table file (the lab layout)."""


@dataclass
class FileContext:
    """One file's view of the run."""

    options: ImportOptions
    profiles: dict[str, Profile]
    """The run's profiles; a line-protocol import may add inferred ones."""
    imported_before: Callable[[str], str | None]
    """Measurement → when this file's content was imported into it, or None."""
    store: Any | None = None
    """The store being written (None in a dry run: nothing may be written)."""
    plans: dict[tuple[str, ...], tuple[Profile, Mapping]] = field(default_factory=dict)
    """Columns → their profile and mapping, shared by the files of a run (thousands of
    snapshot files with the same keys are matched once)."""


@dataclass
class FileContent:
    """The rows a file gives, per measurement, and what it rejected or skipped."""

    rows_read: int = 0
    parts: dict[str, list[Mapped]] = field(default_factory=dict)
    """Measurement → accepted rows (with the rows its mapping rejected)."""
    rejected: list[tuple[int, str]] = field(default_factory=list)
    """Rows rejected before any measurement was known (unparsable lines)."""
    skipped: dict[str, str] = field(default_factory=dict)
    """Measurement → when this content was imported into it before."""
    unknown_columns: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
