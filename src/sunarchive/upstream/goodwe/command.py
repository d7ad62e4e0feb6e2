"""``sunarchive import --goodwe``: the GoodWe optimiser's older JSON files into the store,
then the plan's "validate migration" step (``docs/upstream/goodwe.md``).

Energy snapshots go through the import's writer agent into ``energy_data`` (every tier, as a
live reading would); charging sessions into ``charging_sessions`` on the writer connection.
Nothing is stored twice: a file's snapshots are recorded by content hash as every import's
are, a snapshot whose series already holds its second is left out, and a session whose id the
table holds is kept as stored.
"""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import ExitStack
from typing import Any

import numpy as np

from sunarchive.importing.mapping import Mapped
from sunarchive.importing.records import Records, record_key
from sunarchive.importing.report import FileReport, ImportReport
from sunarchive.importing.run import _feed, _Part, collect_files
from sunarchive.model import InputError
from sunarchive.profiles import Profile
from sunarchive.upstream.goodwe.files import (
    MEASUREMENT,
    TAGS,
    Problem,
    Snapshot,
    SourceFile,
    read_file,
)
from sunarchive.upstream.goodwe.tables import insert_sessions
from sunarchive.upstream.goodwe.validate import (
    NS,
    Validation,
    _stored_seconds,
    unique_sessions,
    unique_snapshots,
    validate_energy,
    validate_sessions,
)

HELP = ("the GoodWe price optimiser's older JSON files (its out/ directory): energy "
        "snapshots into energy_data, charging sessions into charging_sessions; then the "
        "plan's 'validate migration' step compares source and store (counts, first and last "
        "time, sums per local day) and prints the result. Exit 0: imported and matching; 1: "
        "the store differs from the files (or a write failed); 2: a bad record (each named "
        "on stderr with file, record and field; the good records are imported). With "
        "--dry-run nothing is written and the files are validated against the store as it "
        "is. --tag K=V sets a tag of every snapshot (defaults device_id=goodwe, "
        "data_source=goodwe-json, location=home). See docs/upstream/goodwe.md")
NOT_WITH = {"format": "--format", "measurement": "--measurement",
            "time_column": "--time-column", "data_dir": "--data-dir",
            "data_type": "--data-type", "board": "--board", "channel": "--channel"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("GoodWe optimiser migration")
    group.add_argument("--goodwe", action="store_true", help=HELP)


def run(args: argparse.Namespace, settings: Any) -> int:
    from sunarchive.importing.mapping import pairs
    from sunarchive.stores import open_reader, open_writer

    given = [flag for name, flag in NOT_WITH.items() if getattr(args, name, None)]
    if given or getattr(args, "map", None):
        raise InputError(f"--goodwe reads the optimiser's own files: drop "
                         f"{(given or ['--map'])[0]}")
    tags = pairs(args.tag, "--tag")
    for key in tags:
        if key not in TAGS:
            raise InputError(f"--tag {key}: energy_data has tags {', '.join(TAGS)}")
    if not args.paths:
        raise InputError("give the optimiser's JSON files or its out/ directory")
    files = collect_files(args.paths, "json")
    if not files:
        raise InputError("no .json files to import")
    with ExitStack() as stack:
        if args.dry_run:
            store: Any = stack.enter_context(open_reader(settings))
        else:
            store, _ = stack.enter_context(open_writer(settings))
        profile = store.profiles[MEASUREMENT]
        sources = [read_file(path, [f.name for f in profile.fields], args.timezone, tags)
                   for path in files]
        problems = [p for s in sources for p in s.problems] + _repeated_sessions(sources)
        summary = {"files": len(sources), "snapshots_imported": 0, "snapshots_skipped": 0,
                   "sessions_imported": 0, "sessions_skipped": 0, "write_failed": None}
        if not args.dry_run:
            _import(store, profile, sources, summary)
        result = Validation()
        validate_energy(result, store, profile,
                        [s for f in sources for s in f.snapshots], store.tz)
        validate_sessions(result, store, [s for f in sources for s in f.sessions], store.tz)
    for problem in problems:
        print(f"sunarchive: error: {problem.line()}", file=sys.stderr)
    if args.json:
        print(json.dumps({**summary, "dry_run": args.dry_run,
                          "files_read": [_file_dict(s) for s in sources],
                          "problems": [p.line() for p in problems],
                          "validation": result.as_dict()}))
    else:
        print(_render(sources, summary, args.dry_run, quiet=args.quiet))
        print(result.render())
    if problems:
        return 2
    return 1 if summary["write_failed"] or not result.ok else 0


def _repeated_sessions(sources: list[SourceFile]) -> list[Problem]:
    """A session id given again with other values: the first record is kept."""
    first: dict[str, tuple[Any, str, int]] = {}
    out: list[Any] = []
    for source in sources:
        for session, number in zip(source.sessions, source.session_records, strict=True):
            seen = first.setdefault(session.session_id, (session, str(source.path), number))
            if seen[0] != session:
                out.append(Problem(str(source.path), number, "session_id",
                                   f"{session.session_id!r} repeats record {seen[2]} of "
                                   f"{seen[1]} with other values; that one is kept"))
    return out


def _import(store: Any, profile: Profile, sources: list[SourceFile],
            summary: dict[str, Any]) -> None:
    records = Records(store)
    fresh = [s for s in sources if s.snapshots and
             records.when(record_key(s.sha256, MEASUREMENT)) is None]
    owner = {id(snap): i for i, s in enumerate(fresh) for snap in s.snapshots}
    candidates = unique_snapshots([snap for s in fresh for snap in s.snapshots])
    kept = _not_stored(store, profile, candidates)
    total = sum(len(s.snapshots) for s in sources)
    summary["snapshots_imported"] = len(kept)
    summary["snapshots_skipped"] = total - len(kept)
    report = ImportReport()
    parts = []
    for i, source in enumerate(fresh):
        mine = [snap for snap in kept if owner[id(snap)] == i]
        file_report = FileReport(str(source.path), status="imported", sha256=source.sha256)
        report.files.append(file_report)
        parts.append(_Part(MEASUREMENT, [_mapped(profile, mine)],
                           record_key(source.sha256, MEASUREMENT), file_report))
    if kept:
        _feed(store, [p for p in parts if p.count], report, None)
    failed = [p.report.message for p in parts if p.report.status == "failed"]
    if failed:
        summary["write_failed"] = failed[0]
    elif parts:
        records.add([p.key for p in parts], _now())
    unique = list(unique_sessions([x for s in sources for x in s.sessions]).values())
    inserted = insert_sessions(store, unique)
    summary["sessions_imported"] = len(inserted)
    summary["sessions_skipped"] = sum(len(s.sessions) for s in sources) - len(inserted)


def _now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat(timespec="seconds")


def _not_stored(store: Any, profile: Profile, snaps: list[Snapshot]) -> list[Snapshot]:
    """The snapshots whose series does not hold their second yet (an earlier import of
    another file with the same readings)."""
    from sunarchive.model import SeriesKey

    ids = store.load_series()
    by_series: dict[tuple[str, ...], list[Snapshot]] = {}
    for snap in snaps:
        by_series.setdefault(snap.tags, []).append(snap)
    out: list[Any] = []
    for tags, mine in by_series.items():
        seconds = [s.time_ns // NS for s in mine]
        stored = _stored_seconds(store, profile, ids.get(SeriesKey(MEASUREMENT, tags)),
                                 min(seconds), max(seconds) + 1, [])
        held = set(stored["time"][stored["sample_count"] > 0].tolist())
        out.extend(s for s, sec in zip(mine, seconds, strict=True) if sec not in held)
    return sorted(out, key=lambda s: s.time_ns)


def _mapped(profile: Profile, snaps: list[Snapshot]) -> Mapped:
    tag_sets = sorted({s.tags for s in snaps})
    where = {t: i for i, t in enumerate(tag_sets)}
    names = [f.name for f in profile.fields if any(f.name in s.fields for s in snaps)]
    return Mapped(np.array([s.time_ns for s in snaps], np.int64), tag_sets,
                  np.array([where[s.tags] for s in snaps], np.int32),
                  {n: np.array([s.fields.get(n, np.nan) for s in snaps], np.float64)
                   for n in names})


def _file_dict(source: SourceFile) -> dict[str, Any]:
    return {"path": str(source.path), "records": source.records,
            "snapshots": len(source.snapshots), "sessions": len(source.sessions),
            "rejected": sum(p.record is not None for p in source.problems),
            "failed": any(p.record is None for p in source.problems),
            "unknown_keys": sorted(source.unknown_keys)}


def _render(sources: list[SourceFile], summary: dict[str, Any], dry_run: bool,
            quiet: bool) -> str:
    lines: list[str] = []
    for source in sources:
        item = _file_dict(source)
        if quiet and not item["rejected"] and not item["failed"]:
            continue
        state = "unreadable" if item["failed"] else \
            f"{item['records']} records: {item['snapshots']} snapshots, " \
            f"{item['sessions']} sessions, {item['rejected']} rejected"
        lines.append(f"{source.path}: {state}")
        if item["unknown_keys"]:
            lines.append(f"  keys not imported: {', '.join(item['unknown_keys'])}")
    if dry_run:
        lines.append("dry run: nothing written; validating the files against the store")
    else:
        lines.append(f"imported {summary['snapshots_imported']:,} snapshots into "
                     f"{MEASUREMENT} ({summary['snapshots_skipped']:,} already stored or "
                     f"repeated) and {summary['sessions_imported']:,} charging sessions "
                     f"({summary['sessions_skipped']:,} already stored or repeated)")
        if summary["write_failed"]:
            lines.append(f"write failed: {summary['write_failed']}")
    return "\n".join(lines)
