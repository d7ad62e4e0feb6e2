"""What an import did, per file and in total (rendered by the command as text or JSON)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sunarchive.model import NS_PER_S

MAX_REASONS = 100
"""Rejected rows listed per file (all are counted)."""


@dataclass
class FileReport:
    path: str
    status: str = "pending"
    """``imported``, ``valid`` (dry run), ``skipped`` (already imported), ``failed``."""
    measurement: str | None = None
    """The measurement, or the names joined by ", " for a line-protocol file with several."""
    measurements: dict[str, int] = field(default_factory=dict)
    """Rows imported (or valid) per measurement."""
    unit: str = "line"
    """What ``reasons[i]["line"]`` counts: ``line`` (file line), ``record`` (json) or
    ``row`` (parquet); for records and rows the reason starts with ``record N:``/``row N:``."""
    rows_read: int = 0
    imported: int = 0
    rejected: int = 0
    reasons: list[dict[str, Any]] = field(default_factory=list)
    unknown_columns: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """Things worth knowing that reject no row (a profile inferred, a field dropped)."""
    message: str | None = None
    first_ns: int | None = None
    last_ns: int | None = None
    sha256: str = ""

    def add_rejected(self, rejected: list[tuple[int, str]]) -> None:
        """Count ``(number, reason)`` pairs and list the first :data:`MAX_REASONS`."""
        self.rejected += len(rejected)
        room = MAX_REASONS - len(self.reasons)
        for number, reason in sorted(rejected)[:max(room, 0)]:
            text = reason if self.unit == "line" else f"{self.unit} {number}: {reason}"
            self.reasons.append({"line": number, "reason": text})

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "status": self.status, "measurement": self.measurement,
                "measurements": self.measurements, "rows_read": self.rows_read,
                "imported": self.imported, "rejected": self.rejected, "unit": self.unit,
                "reasons": self.reasons, "unknown_columns": self.unknown_columns,
                "notes": self.notes, "message": self.message,
                "start": iso(self.first_ns), "end": iso(self.last_ns)}


@dataclass
class ImportReport:
    files: list[FileReport] = field(default_factory=list)
    dry_run: bool = False
    rows_written: int = 0
    rollup_rows: int = 0
    too_late_samples: int = 0
    write_errors: int = 0
    seconds: float = 0.0

    @property
    def rows_read(self) -> int:
        return sum(f.rows_read for f in self.files)

    @property
    def imported(self) -> int:
        return sum(f.imported for f in self.files)

    @property
    def rejected(self) -> int:
        return sum(f.rejected for f in self.files)

    def time_range(self) -> tuple[int | None, int | None]:
        firsts = [f.first_ns for f in self.files if f.first_ns is not None and f.imported]
        lasts = [f.last_ns for f in self.files if f.last_ns is not None and f.imported]
        return (min(firsts) if firsts else None, max(lasts) if lasts else None)

    def as_dict(self) -> dict[str, Any]:
        start, end = self.time_range()
        return {"dry_run": self.dry_run, "rows_read": self.rows_read,
                "imported": self.imported, "rejected": self.rejected,
                "skipped_files": sum(1 for f in self.files if f.status == "skipped"),
                "failed_files": sum(1 for f in self.files if f.status == "failed"),
                "start": iso(start), "end": iso(end),
                "rows_written": self.rows_written, "rollup_rows": self.rollup_rows,
                "too_late_samples": self.too_late_samples, "write_errors": self.write_errors,
                "seconds": round(self.seconds, 3),
                "files": [f.as_dict() for f in self.files]}


def iso(ns: int | None) -> str | None:
    """UTC ISO 8601 of epoch ns, to the microsecond."""
    if ns is None:
        return None
    return datetime.fromtimestamp(ns // NS_PER_S, UTC).replace(
        microsecond=(ns % NS_PER_S) // 1000).isoformat()
