"""Run an import: read and map files, sort by time, feed the writer agent, keep a record.

All files of one run are mapped first, then fed per measurement in time order into one
:class:`~sunarchive.pipeline.agent.Agent`, so nothing counts as too late and energy and
counter increases are computed across file boundaries exactly as for live data. What a file
gave each measurement is recorded (:mod:`sunarchive.importing.records`); the same content is
never imported twice into the same measurement.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from sunarchive.importing.context import FileContent, FileContext, ImportOptions
from sunarchive.importing.lineproto import read_lineprotocol
from sunarchive.importing.mapping import Mapped, Mapping
from sunarchive.importing.readers import EXTENSIONS, UNITS, format_of
from sunarchive.importing.records import Records, file_sha256, record_key
from sunarchive.importing.report import FileReport, ImportReport
from sunarchive.importing.tables import read_table
from sunarchive.model import InputError, SampleBatch, SunarchiveError
from sunarchive.pipeline.accumulator import Accumulator, QueueFullError
from sunarchive.pipeline.agent import Agent
from sunarchive.profiles import Profile

BATCH_ROWS = 100_000
Progress = Callable[[str, int], None]
"""Called with (stage, n): ``"read"`` per file, ``"total"`` once with the rows to write, then
``"rows"`` per batch of rows written."""
__all__ = ["FileReport", "ImportOptions", "ImportReport", "collect_files", "import_files"]


def collect_files(paths: Iterable[Path], fmt: str | None = None) -> list[Path]:
    """Files named, and the files in directories named (recursively, by extension)."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out.extend(sorted(p for p in path.rglob("*") if p.is_file()
                              and not p.name.startswith(".") and _wanted(p, fmt)))
        elif path.is_file():
            out.append(path)
        else:
            raise InputError(f"{path}: no such file or directory")
    unique: dict[Path, Path] = {}
    for p in out:
        unique.setdefault(p.resolve(), p)
    return list(unique.values())


def _wanted(path: Path, fmt: str | None) -> bool:
    found = EXTENSIONS.get(path.suffix.lower())
    if found is None or fmt is None:
        return found is not None
    return found == fmt or (found == "json" and fmt == "jsonl")


@dataclass
class _Part:
    """The rows one file gives one measurement."""

    measurement: str
    rows: list[Mapped]
    key: str
    report: FileReport

    @property
    def count(self) -> int:
        return sum(len(m.time_ns) for m in self.rows)


def prepare_file(path: Path, profiles: dict[str, Profile], options: ImportOptions,
                 records: Records, store: Any | None = None,
                 plans: dict[tuple[str, ...], tuple[Profile, Mapping]] | None = None
                 ) -> tuple[FileReport, list[_Part]]:
    """Read, check and map one file; the report says what happened to it. ``store`` is the
    store being written (None in a dry run); ``plans`` the run's mappings by columns."""
    report = FileReport(str(path))
    try:
        fmt = format_of(path, options.fmt)
        report.unit = UNITS[fmt]
        sha = report.sha256 = file_sha256(path)
        ctx = FileContext(options, profiles, lambda m: records.when(record_key(sha, m)), store,
                          {} if plans is None else plans)
        content = read_lineprotocol(path, ctx) if fmt == "lineprotocol" else \
            read_table(path, fmt, ctx)
    except (SunarchiveError, OSError, ValueError) as exc:
        report.status = "failed"
        report.message = str(exc)
        return report, []
    return report, _account(report, content)


def _account(report: FileReport, content: FileContent) -> list[_Part]:
    """Fill the report from what the file gave; its parts to import."""
    report.rows_read = content.rows_read
    report.unknown_columns = content.unknown_columns
    for text in content.notes:
        report.note(text)
    report.add_rejected(content.rejected + [r for rows in content.parts.values()
                                            for m in rows for r in m.rejected])
    names = sorted(content.parts.keys() | content.skipped.keys())
    report.measurement = ", ".join(names) or None
    parts = [_Part(name, rows, record_key(report.sha256, name), report)
             for name, rows in content.parts.items()]
    for part in parts:
        report.measurements[part.measurement] = part.count
        times = [m.time_ns for m in part.rows if len(m.time_ns)]
        if times:
            first, last = min(int(t.min()) for t in times), max(int(t.max()) for t in times)
            report.first_ns = first if report.first_ns is None else min(first, report.first_ns)
            report.last_ns = last if report.last_ns is None else max(last, report.last_ns)
    report.imported = sum(p.count for p in parts)
    for name, when in content.skipped.items():
        if parts:
            report.note(f"{name}: already imported on {when}")
        else:
            report.message = f"already imported on {when}"
    report.status = "skipped" if content.skipped and not parts else "imported"
    return parts


def import_files(store: Any, files: list[Path], profiles: dict[str, Profile],
                 options: ImportOptions, progress: Progress | None = None,
                 notes: Callable[[str], None] | None = None) -> ImportReport:
    """Import ``files`` into ``store`` (with ``dry_run`` only validate; ``store`` may then be
    None, or a read-only store that tells which files were imported before)."""
    started = datetime.now(UTC)
    report = ImportReport(dry_run=options.dry_run)
    records = Records(store)
    todo: list[_Part] = []
    keys: set[str] = set()
    plans: dict[tuple[str, ...], tuple[Profile, Mapping]] = {}
    for path in files:
        item, parts = prepare_file(path, profiles, options, records,
                                   None if options.dry_run else store, plans)
        if item.status == "imported" and options.dry_run:
            item.status = "valid"
        if parts and all(p.key in keys for p in parts):
            item.status = "skipped"
            item.message = "same content as a file before it in this import"
            item.imported = 0
            parts = []
        keys.update(p.key for p in parts)
        if notes is not None and item.message:
            notes(f"{path}: {item.message}")
        report.files.append(item)
        todo.extend(p for p in parts if p.count)
        if progress is not None:
            progress("read", 1)
    if not options.dry_run and todo:
        if progress is not None:
            progress("total", sum(p.count for p in todo))
        _feed(store, todo, report, progress)
        _record(records, todo, started)
    report.seconds = (datetime.now(UTC) - started).total_seconds()
    return report


def _record(records: Records, todo: list[_Part], started: datetime) -> None:
    """Record the parts written: only when every row of the run was stored (after a write
    error, a writer that died or rows left in the spool their files are failed instead, and
    the next import of them is not skipped)."""
    if any(p.report.status == "failed" for p in todo):
        return
    records.add([p.key for p in todo], started.isoformat(timespec="seconds"))


def _feed(store: Any, todo: list[_Part], report: ImportReport,
          progress: Progress | None) -> None:
    accumulator = Accumulator(max_samples=4 * BATCH_ROWS, policy="block", put_timeout_s=1e9)
    # rows go in time order, so a small lateness closes seconds as the import advances and
    # nothing is too late; seconds stored before are merged exactly by the writer
    agent = Agent(store, accumulator, lateness_s=2.0, commit_interval_s=1.0,
                  maintenance_interval_s=1e9)
    agent.live_clock = False   # file times, not arrival times, close the seconds
    agent.start()
    try:
        refused = _put_all(accumulator, todo, progress)
    finally:
        agent.stop(timeout_s=3600)
    stats = agent.stats
    report.rows_written = stats.rows_written
    report.rollup_rows = stats.rollup_rows
    report.too_late_samples = stats.too_late_samples
    died = getattr(agent, "writer_error", None) or refused
    report.write_errors = stats.write_errors + len(agent.spool) + (
        1 if agent.writer_alive() or died else 0) + accumulator.stats.samples_dropped
    why = _not_stored(agent, accumulator, died)
    if why is not None:
        for part in todo:
            part.report.status = "failed"
            part.report.message = f"{why}; not recorded as imported: import it again"


def _put_all(accumulator: Accumulator, todo: list[_Part],
             progress: Progress | None) -> str | None:
    """Queue every row, per measurement in time order; why the queue refused, or None."""
    by_measurement: dict[str, list[Mapped]] = {}
    for part in todo:
        by_measurement.setdefault(part.measurement, []).extend(part.rows)
    for name, rows in by_measurement.items():
        for batch in _batches(name, rows):
            try:
                accumulator.put(batch)
            except QueueFullError as exc:   # the writer stopped: nothing more is taken
                return str(exc)
            if progress is not None:
                progress("rows", len(batch))
    return None


def _not_stored(agent: Agent, accumulator: Accumulator, died: str | None) -> str | None:
    """Why some rows of the run may not be in the store, or None when all are."""
    if died:
        return f"the writer stopped ({died})"
    if agent.writer_alive():
        return "the writer did not finish"
    if len(agent.spool):
        return (f"{len(agent.spool)} batches could not be written "
                f"({agent.stats.last_error or 'store unreachable'})")
    if agent.stats.write_errors:
        return f"write errors ({agent.stats.last_error})"
    if accumulator.stats.samples_dropped:
        return f"{accumulator.stats.samples_dropped} samples dropped by the queue"
    return None


def _batches(measurement: str, parts: list[Mapped]) -> Iterable[SampleBatch]:
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
