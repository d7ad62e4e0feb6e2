"""Run an import: read and map files, sort by time, feed the writer agent, keep a record.

All files of one run are mapped first, then fed per measurement in time order into one
:class:`~sunarchive.pipeline.agent.Agent`, so nothing counts as too late and energy and
counter increases are computed across file boundaries exactly as for live data. A file is
recorded in ``sunarchive_meta`` under ``import:<sha256 of its content>:<measurement>``; the
same content is never imported twice into the same measurement.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from sunarchive.importing import mapping as mapping_mod
from sunarchive.importing.readers import EXTENSIONS, format_of, read_file
from sunarchive.model import NS_PER_S, InputError, SampleBatch, SunarchiveError
from sunarchive.pipeline.accumulator import Accumulator
from sunarchive.pipeline.agent import Agent
from sunarchive.profiles import Profile

BATCH_ROWS = 100_000
MAX_REASONS = 100
"""Rejected lines listed per file (all are counted)."""
Progress = Callable[[str, int], None]
"""Called with (stage, n): ``"read"`` per file, ``"total"`` once with the rows to write, then
``"rows"`` per batch of rows written."""


@dataclass
class ImportOptions:
    fmt: str | None = None
    measurement: str | None = None
    time_column: str | None = None
    timezone: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    renames: dict[str, str] = field(default_factory=dict)
    dry_run: bool = False


@dataclass
class FileReport:
    path: str
    status: str = "pending"
    """``imported``, ``valid`` (dry run), ``skipped`` (already imported), ``failed``."""
    measurement: str | None = None
    rows_read: int = 0
    imported: int = 0
    rejected: int = 0
    reasons: list[dict[str, Any]] = field(default_factory=list)
    unknown_columns: list[str] = field(default_factory=list)
    message: str | None = None
    first_ns: int | None = None
    last_ns: int | None = None
    sha256: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "status": self.status, "measurement": self.measurement,
                "rows_read": self.rows_read, "imported": self.imported,
                "rejected": self.rejected, "reasons": self.reasons,
                "unknown_columns": self.unknown_columns, "message": self.message,
                "start": _iso(self.first_ns), "end": _iso(self.last_ns)}


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
                "start": _iso(start), "end": _iso(end),
                "rows_written": self.rows_written, "rollup_rows": self.rollup_rows,
                "too_late_samples": self.too_late_samples, "write_errors": self.write_errors,
                "seconds": round(self.seconds, 3),
                "files": [f.as_dict() for f in self.files]}


def _iso(ns: int | None) -> str | None:
    if ns is None:
        return None
    return datetime.fromtimestamp(ns // NS_PER_S, UTC).replace(
        microsecond=(ns % NS_PER_S) // 1000).isoformat()


def collect_files(paths: Iterable[Path], fmt: str | None = None) -> list[Path]:
    """Files named, and the files in directories named (recursively, by extension)."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file()
                           and not p.name.startswith(".")
                           and (p.suffix.lower() in EXTENSIONS
                                and (fmt is None or EXTENSIONS[p.suffix.lower()] == fmt)))
            out.extend(found)
        elif path.is_file():
            out.append(path)
        else:
            raise InputError(f"{path}: no such file or directory")
    unique: dict[Path, Path] = {}
    for p in out:
        unique.setdefault(p.resolve(), p)
    return list(unique.values())


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def record_key(sha: str, measurement: str) -> str:
    return f"import:{sha}:{measurement}"


def imported_on(store: Any, key: str) -> str | None:
    """When the file with this key was imported, or None."""
    rows = store._fetch(f"SELECT value FROM sunarchive_meta WHERE key = {store._p}", [key])
    return str(rows[0][0]) if rows else None


def record_import(store: Any, key: str, when: str) -> None:
    p = store._p
    store._execute(f"DELETE FROM sunarchive_meta WHERE key = {p}", [key])
    store._execute(f"INSERT INTO sunarchive_meta VALUES ({p}, {p})", [key, when])


def _choose_profile(columns: list[str], profiles: dict[str, Profile],
                    options: ImportOptions) -> Profile:
    if options.measurement:
        profile = profiles.get(options.measurement)
        if profile is None:
            raise InputError(f"--measurement {options.measurement!r}: no such profile "
                             f"({', '.join(sorted(profiles))})")
        return profile
    names = {options.renames.get(c, c) for c in columns} | set(options.tags)
    usable = {n: p for n, p in profiles.items() if set(p.tags) <= names}   # all tags given
    scored = sorted(((mapping_mod.score(columns, p, options.renames), name)
                     for name, p in usable.items()), reverse=True)
    if not scored or scored[0][0] < 2 or (len(scored) > 1 and scored[1][0] == scored[0][0]):
        raise InputError("cannot tell the measurement from the columns "
                         f"({', '.join(columns)}); give --measurement")
    return profiles[scored[0][1]]


@dataclass
class _Prepared:
    report: FileReport
    mapped: mapping_mod.Mapped
    key: str


def prepare_file(path: Path, profiles: dict[str, Profile],
                 options: ImportOptions, store: Any | None) -> _Prepared | None:
    """Read, check and map one file; the report says what happened to it."""
    report = FileReport(str(path))
    try:
        fmt = format_of(path, options.fmt)
        read = read_file(path, fmt)
        columns = list(read.table.column_names)
        profile = _choose_profile(columns, profiles, options)
        report.measurement = profile.name
        report.sha256 = file_sha256(path)
        key = record_key(report.sha256, profile.name)
        when = imported_on(store, key) if store is not None else None
        report.rows_read = read.table.num_rows + len(read.rejected)
        if when is not None:
            report.status = "skipped"
            report.message = f"already imported on {when}"
            return _Prepared(report, _empty(), key)
        plan = mapping_mod.plan(columns, profile, options.time_column, options.renames,
                                options.tags)
        report.unknown_columns = plan.unknown
        mapped = mapping_mod.apply(read.table, read.lines, plan, options.timezone)
    except (SunarchiveError, OSError, ValueError) as exc:
        report.status = "failed"
        report.message = str(exc)
        return _Prepared(report, _empty(), "")
    mapped.rejected = sorted(read.rejected + mapped.rejected)
    report.rejected = len(mapped.rejected)
    report.reasons = [{"line": line, "reason": reason}
                      for line, reason in mapped.rejected[:MAX_REASONS]]
    report.imported = len(mapped.time_ns)
    if report.imported:
        report.first_ns = int(mapped.time_ns.min())
        report.last_ns = int(mapped.time_ns.max())
    report.status = "valid" if options.dry_run else "imported"
    return _Prepared(report, mapped, key)


def _empty() -> mapping_mod.Mapped:
    return mapping_mod.Mapped(np.empty(0, np.int64), [()], np.empty(0, np.int32), {})


def import_files(store: Any, files: list[Path], profiles: dict[str, Profile],
                 options: ImportOptions, progress: Progress | None = None,
                 notes: Callable[[str], None] | None = None) -> ImportReport:
    """Import ``files`` into ``store`` (``None`` with ``dry_run``: only validate)."""
    started = datetime.now(UTC)
    report = ImportReport(dry_run=options.dry_run)
    prepared: list[_Prepared] = []
    keys: set[str] = set()
    for path in files:
        item = prepare_file(path, profiles, options, store)
        if item is None:
            continue
        if item.report.status in ("imported", "valid") and item.key in keys:
            item.report.status = "skipped"
            item.report.message = "same content as a file before it in this import"
            item.report.imported = 0
            item.mapped = _empty()
        keys.add(item.key)
        if notes is not None and item.report.message:
            notes(f"{path}: {item.report.message}")
        prepared.append(item)
        report.files.append(item.report)
        if progress is not None:
            progress("read", 1)
    todo = [p for p in prepared if p.report.status == "imported" and p.report.imported]
    if not options.dry_run and todo:
        if progress is not None:
            progress("total", sum(p.report.imported for p in todo))
        _feed(store, todo, report, progress)
        if report.write_errors == 0:
            when = started.isoformat(timespec="seconds")
            for item in todo:   # a file without accepted rows is not recorded
                if item.report.status == "imported":
                    record_import(store, item.key, when)
        else:
            for item in todo:
                item.report.status = "failed"
                item.report.message = "write errors: not recorded; import it again"
    report.seconds = (datetime.now(UTC) - started).total_seconds()
    return report


def _feed(store: Any, todo: list[_Prepared], report: ImportReport,
          progress: Progress | None) -> None:
    accumulator = Accumulator(max_samples=4 * BATCH_ROWS, policy="block", put_timeout_s=1e9)
    # rows go in time order, so a small lateness closes seconds as the import advances and
    # nothing is too late; seconds stored before are merged exactly by the writer
    agent = Agent(store, accumulator, lateness_s=2.0, commit_interval_s=1.0,
                  maintenance_interval_s=1e9)
    agent.start()
    try:
        by_measurement: dict[str, list[_Prepared]] = {}
        for item in todo:
            by_measurement.setdefault(str(item.report.measurement), []).append(item)
        for name, items in by_measurement.items():
            for batch in _batches(name, [i.mapped for i in items]):
                accumulator.put(batch)
                if progress is not None:
                    progress("rows", len(batch))
    finally:
        agent.stop(timeout_s=3600)
    stats = agent.stats
    report.rows_written = stats.rows_written
    report.rollup_rows = stats.rollup_rows
    report.too_late_samples = stats.too_late_samples
    report.write_errors = stats.write_errors + len(agent.spool) + (
        1 if agent.writer_alive() else 0) + accumulator.stats.samples_dropped


def _batches(measurement: str, parts: list[mapping_mod.Mapped]) -> Iterable[SampleBatch]:
    """The rows of all parts in time order, as batches of at most BATCH_ROWS."""
    where: dict[tuple[str, ...], int] = {}
    indices = []
    for part in parts:
        remap = np.array([where.setdefault(t, len(where)) for t in part.tag_sets], np.int32)
        indices.append(remap[part.tag_index] if len(part.tag_index) else
                       np.empty(0, np.int32))
    tag_sets = list(where)
    names = sorted({k for p in parts for k in p.fields})
    time_ns = np.concatenate([p.time_ns for p in parts])
    tag_index = np.concatenate(indices).astype(np.int32)
    fields = {k: np.concatenate([p.fields[k] if k in p.fields
                                 else np.full(len(p.time_ns), np.nan) for p in parts])
              for k in names}
    order = np.argsort(time_ns, kind="stable")
    if len(order) and np.any(np.diff(order) != 1):
        time_ns, tag_index = time_ns[order], tag_index[order]
        fields = {k: v[order] for k, v in fields.items()}
    for lo in range(0, len(time_ns), BATCH_ROWS):
        hi = lo + BATCH_ROWS
        yield SampleBatch(measurement, tag_sets, tag_index[lo:hi], time_ns[lo:hi],
                          {k: v[lo:hi] for k, v in fields.items()})
