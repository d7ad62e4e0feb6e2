"""The ``sunarchive import`` command: options → import → progress bar and report. The import
itself is the library's (``sunarchive.importing``)."""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from sunarchive.cli.common import EPILOG, add_common, settings_of
from sunarchive.importing.context import ImportOptions
from sunarchive.importing.lab import MEASUREMENTS, lab_files, lab_layout
from sunarchive.importing.mapping import pairs
from sunarchive.importing.readers import FORMATS
from sunarchive.importing.report import ImportReport
from sunarchive.importing.run import Progress, collect_files, import_files
from sunarchive.model import InputError


def add_parser(sub: Any) -> None:
    """Register ``import``."""
    imp = sub.add_parser("import", help="historical files (CSV, JSON, JSON lines, line "
                         "protocol, Parquet, the lab rig's layout) into every tier",
                         description="Import historical data through the same reducer as "
                         "live data into every tier. Re-importing a file adds nothing; "
                         "--timezone also says the zone of times without an offset. See "
                         "docs/import.md.", epilog=EPILOG)
    add_common(imp)
    add_arguments(imp)
    imp.set_defaults(handler=cmd_import)


def cmd_import(args: argparse.Namespace) -> int:
    return run(args, settings_of(args))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", type=Path, metavar="PATH",
                        help="files, or directories searched for .csv/.tsv/.txt, .jsonl/"
                        ".ndjson/.json, .lp/.line/.influx and .parquet/.pq files")
    parser.add_argument("--format", choices=FORMATS,
                        help="file format (default: from the extension; .json is json for "
                        "one document, jsonl for one object per line)")
    parser.add_argument("--measurement", help="profile to import into (default: the one "
                        "whose fields and tags the columns name; line protocol: each line's "
                        "own, or only M's lines)")
    parser.add_argument("--time-column", help="column with the time (default: time, "
                        "timestamp, ts, datetime, date_time, _time)")
    parser.add_argument("--tag", action="append", default=[], metavar="K=V",
                        help="a constant tag for every row (repeatable)")
    parser.add_argument("--map", action="append", default=[], metavar="COLUMN=NAME",
                        help="rename a column (or a line-protocol tag or field, or a "
                        "flattened JSON key like pv.power) to a profile field or tag "
                        "(repeatable)")
    parser.add_argument("--precision", choices=["ns", "us", "ms", "s", "m", "h", "auto"],
                        default="ns", help="unit of line-protocol timestamps, as InfluxDB's "
                        "precision (default ns; m minutes, h hours; auto: by magnitude)")
    lab = parser.add_argument_group("lab rig layout (upstream upload_historical_data.py)")
    lab.add_argument("--data-dir", type=Path, metavar="DIR",
                     help="import every *.txt (tab-delimited) and *.csv file directly in DIR")
    lab.add_argument("--data-type", choices=list(MEASUREMENTS),
                     help="mpp → mpp_measurement, temperature → temperature_measurement, "
                     "irradiance → irradiance_measurement; columns matched case-insensitively")
    lab.add_argument("--board", type=int, metavar="N", help="board tag (required for mpp)")
    lab.add_argument("--channel", type=int, metavar="N",
                     help="channel tag (required for mpp)")
    from sunarchive.upstream.goodwe.command import add_arguments as goodwe_arguments
    goodwe_arguments(parser)
    parser.add_argument("--dry-run", action="store_true",
                        help="read and check everything, write nothing")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--quiet", "-q", action="store_true",
                        help="no progress bar and no per-file lines: only failed files and "
                             "the totals")


def options_of(args: argparse.Namespace) -> ImportOptions:
    options = ImportOptions(fmt=args.format, measurement=args.measurement,
                            time_column=args.time_column, timezone=args.timezone,
                            tags=pairs(args.tag, "--tag"), renames=pairs(args.map, "--map"),
                            dry_run=args.dry_run, precision=args.precision)
    if args.data_type is None:
        if args.data_dir is not None or args.board is not None or args.channel is not None:
            raise InputError("--data-dir, --board and --channel need --data-type")
        return options
    layout = lab_layout(args.data_type, args.board, args.channel)
    if options.measurement not in (None, layout.measurement):
        raise InputError(f"--data-type {args.data_type} imports into {layout.measurement}, "
                         f"not --measurement {options.measurement}")
    clash = sorted(k for k in ("board", "channel") if k in options.tags)
    if clash:
        raise InputError(f"--tag {clash[0]}=…: give --{clash[0]} instead")
    options.measurement = layout.measurement
    options.tags = {**layout.tags, **options.tags}
    options.preset = layout.preset
    return options


def files_of(args: argparse.Namespace, options: ImportOptions) -> list[Path]:
    """The files named, found in directories, and the lab files of ``--data-dir``."""
    files = collect_files(args.paths, options.fmt)
    if args.data_dir is not None:
        files += collect_files(lab_files(args.data_dir))
    if not files:
        raise InputError("no files to import" if args.paths or args.data_dir else
                         "give files or directories to import (or --data-dir DIR)")
    return files


IMPORT_DUCKDB_MEMORY_LIMIT_MB = 128
"""DuckDB memory_limit of an import unless ``duckdb_memory_limit_mb`` is set: a bulk append
needs little, and the process's peak stays low (bench/import_slow_series.py)."""


def run(args: argparse.Namespace, settings: Any) -> int:
    from sunarchive.stores import open_reader, open_writer, profiles_for

    if args.goodwe:   # the GoodWe optimiser's files, then the plan's validation
        from sunarchive.upstream.goodwe.command import run as run_goodwe
        return run_goodwe(args, settings)
    if "duckdb_memory_limit_mb" not in settings.model_fields_set:
        settings = settings.model_copy(
            update={"duckdb_memory_limit_mb": IMPORT_DUCKDB_MEMORY_LIMIT_MB})
    options = options_of(args)
    files = files_of(args, options)
    with ExitStack() as stack:
        store: Any = None
        if options.dry_run:
            profiles = profiles_for(settings)
            try:   # only to say which files were imported before
                store = stack.enter_context(open_reader(settings))
                profiles = dict(store.profiles)
            except Exception:
                store = None
        else:
            store, _ = stack.enter_context(open_writer(settings))
            profiles = dict(store.profiles)
        progress, done = (None, lambda: None) if args.quiet else _progress_bar(len(files))
        notes = None if args.quiet or progress is not None else \
            (lambda text: print(text, file=sys.stderr))
        try:
            report = import_files(store, files, profiles, options, progress, notes=notes)
        finally:
            done()
    if args.json:
        print(json.dumps(report.as_dict()))
    else:
        print(render(report, only_failed=args.quiet))
    failed = any(f.status == "failed" for f in report.files) or report.write_errors
    return 1 if failed else 0


def _progress_bar(files: int) -> tuple[Progress | None, Any]:
    if not sys.stderr.isatty():
        return None, lambda: None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    bar = Progress("[progress.description]{task.description}", BarColumn(),
                   MofNCompleteColumn(), TimeElapsedColumn(),
                   console=Console(stderr=True), transient=True)
    bar.start()
    read = bar.add_task("reading files", total=files)
    rows: list[Any] = []

    def update(stage: str, n: int) -> None:
        if stage == "read":
            bar.advance(read, n)
            return
        if not rows:
            rows.append(bar.add_task("importing rows", total=n if stage == "total" else None))
        if stage == "rows":
            bar.advance(rows[0], n)

    return update, bar.stop


def render(report: ImportReport, only_failed: bool = False) -> str:
    """The report as text; ``only_failed``: leave out the files that did not fail."""
    data = report.as_dict()
    lines = []
    for f in report.files:
        if only_failed and f.status != "failed":
            continue
        line = (f"{f.path}: {f.status}" + (f" into {f.measurement}" if f.measurement else "")
                + f", {f.rows_read:,} rows read, {f.imported:,} imported, "
                f"{f.rejected:,} rejected")
        if f.message:
            line += f" — {f.message}"
        lines.append(line)
        if f.unknown_columns:
            lines.append(f"  unknown columns (ignored): {', '.join(f.unknown_columns)}")
        lines.extend(f"  note: {text}" for text in f.notes)
        for r in f.reasons:
            lines.append(f"  line {r['line']}: {r['reason']}" if f.unit == "line"
                         else f"  {r['reason']}")
        if f.rejected > len(f.reasons):
            lines.append(f"  … and {f.rejected - len(f.reasons):,} more rejected {f.unit}s")
    verb = "would import" if report.dry_run else "imported"
    lines.append(f"{'dry run: ' if report.dry_run else ''}{report.rows_read:,} rows read, "
                 f"{verb} {report.imported:,}, rejected {report.rejected:,}"
                 + (f", time range {data['start']} … {data['end']}" if data["start"] else ""))
    if not report.dry_run:
        lines.append(f"wrote {report.rows_written:,} 1 s rows and {report.rollup_rows:,} "
                     f"rollup rows in {report.seconds:.1f} s")
    return "\n".join(lines)
