"""Table files (csv, jsonl, json, parquet): read, pick the profile, map the columns."""

from __future__ import annotations

from pathlib import Path

from sunarchive.importing import mapping
from sunarchive.importing.context import FileContent, FileContext, ImportOptions
from sunarchive.importing.readers import read_file
from sunarchive.model import InputError
from sunarchive.profiles import Profile


def read_table(path: Path, fmt: str, ctx: FileContext) -> FileContent:
    """The rows of a table file, mapped to one profile (nothing mapped if imported before)."""
    options = ctx.options
    read = read_file(path, fmt, _time_names(options))
    content = FileContent(rows_read=read.table.num_rows + len(read.rejected))
    columns = tuple(read.table.column_names)
    if columns not in ctx.plans:
        ctx.plans[columns] = _plan(list(columns), ctx)
    profile, plan = ctx.plans[columns]
    when = ctx.imported_before(profile.name)
    if when is not None:
        content.skipped[profile.name] = when
        return content
    content.unknown_columns = plan.unknown
    content.notes = [f"{', '.join(cols)} all end in {name!r}, so none was used as {name!r}; "
                     f"pick one with --map" for name, cols in plan.ambiguous.items()
                     if name in profile.tags or name in {f.name for f in profile.fields}]
    content.notes += [f"no column {col!r} for --map {col}={options.renames.get(col, '…')}"
                      for col in plan.absent]
    content.parts[profile.name] = [mapping.apply(read.table, read.lines, plan,
                                                 options.timezone)]
    content.rejected = read.rejected
    return content


def _plan(columns: list[str], ctx: FileContext) -> tuple[Profile, mapping.Mapping]:
    """The profile and mapping of a file with these columns."""
    options = ctx.options
    preset = options.preset
    renames = {**(preset.renames(columns) if preset else {}), **options.renames}
    products = dict(preset.products) if preset else {}
    profile = choose_profile(columns, ctx.profiles, options, renames)
    return profile, mapping.plan(columns, profile, options.time_column, renames,
                                 options.tags, products)


def _time_names(options: ImportOptions) -> set[str]:
    """Names that mark a JSON object as a snapshot row (it has a time at the top)."""
    if options.time_column:
        return {options.time_column}
    return set(mapping.TIME_COLUMNS) | {c for c, n in options.renames.items()
                                        if n in mapping.TIME_COLUMNS}


def choose_profile(columns: list[str], profiles: dict[str, Profile], options: ImportOptions,
                   renames: dict[str, str]) -> Profile:
    """``--measurement``, else the profile whose tags are all there and whose fields the
    columns name most often (a tie is an error)."""
    if options.measurement:
        profile = profiles.get(options.measurement)
        if profile is None:
            raise InputError(f"--measurement {options.measurement!r}: no such profile "
                             f"({', '.join(sorted(profiles))})")
        return profile
    scored = []
    for name, profile in profiles.items():
        named, _ = mapping.names(columns, renames, set(profile.tags))
        if set(profile.tags) <= named.keys() | options.tags.keys():   # all tags given
            scored.append((mapping.score(columns, profile, renames), name))
    scored.sort(reverse=True)
    if not scored or scored[0][0] < 2 or (len(scored) > 1 and scored[1][0] == scored[0][0]):
        raise InputError("cannot tell the measurement from the columns "
                         f"({', '.join(columns)}); give --measurement")
    return profiles[scored[0][1]]
