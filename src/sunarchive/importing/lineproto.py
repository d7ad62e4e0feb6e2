"""Line-protocol files (``--format lineprotocol``): every measurement of a file into its own
profile, exactly as the HTTP write endpoints store the same lines.

* Parsed by :func:`sunarchive.lineprotocol.parse_lines` (its columnar fast path takes the
  simple lines) in blocks of whole lines, timestamps in ``--precision`` (default ``ns``;
  ``auto`` reads the unit from the magnitude). A bad line is rejected with its number and the
  parser's message; a line without a timestamp too (an import has no "now").
* A point whose timestamp or a numeric field value the store cannot hold
  (:mod:`sunarchive.bounds`: 1970 … 2200, finite and within ±1e100) is rejected with its line.
* Points become samples as over HTTP (:mod:`sunarchive.lineprotocol_samples`): a tag a
  built-in or user profile lacks rejects the point; a field it lacks is dropped (noted).
* A measurement without a profile gets one inferred from its fields and created in the store
  (:mod:`sunarchive.api.inferred`, as over HTTP); the report notes it. A dry run only says so.
  An inferred profile grows by the tag keys and fields of later points, and a point giving a
  field another type than its first write is rejected (:mod:`sunarchive.api.growth`).
* ``--measurement M`` imports the lines of M only; a file without M holding a single other
  measurement is imported as M. ``--map`` renames tag and field keys, ``--tag k=v`` sets a tag
  on every point.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import numpy.typing as npt

from sunarchive.api.growth import plan_growth
from sunarchive.api.inferred import is_inferred, spec_of, stored_kinds, type_conflicts
from sunarchive.api.limits import WriteLimits
from sunarchive.importing.context import FileContent, FileContext
from sunarchive.importing.mapping import Mapped
from sunarchive.lineprotocol import (
    ParsedField,
    ParsedMeasurement,
    parse_lines,
    unstorable_points,
)
from sunarchive.lineprotocol_samples import StateCodes, to_samples
from sunarchive.model import InputError, SunarchiveError
from sunarchive.profiles import Profile
from sunarchive.profiles.loader import parse_profile

NO_TIME = int(np.iinfo(np.int64).min)
"""The parser's "now" for lines without a timestamp: marks them for rejection."""
BLOCK_BYTES = 32 << 20
"""Lines parsed at once (whole lines; bounds the parser's memory)."""
Found = dict[str, list[ParsedMeasurement]]


def read_lineprotocol(path: Path, ctx: FileContext) -> FileContent:
    """The rows of each measurement of a line-protocol file."""
    options = ctx.options
    content = FileContent()
    found: Found = {}
    for offset, block in _blocks(path):
        parsed = parse_lines(block, precision=options.precision, now_ns=NO_TIME,
                             stored_kinds=stored_kinds(ctx.profiles))
        content.rows_read += parsed.lines
        content.rejected += [(e.line_number + offset, _without_line(e.message))
                             for e in parsed.errors]
        for m in parsed.measurements.values():
            found.setdefault(m.measurement, []).append(
                replace(m, line_numbers=m.line_numbers + offset))
    chosen, left_out = _select(found, options.measurement)
    if left_out:
        content.notes.append(f"{left_out} lines of other measurements than "
                             f"{options.measurement} left out")
    for name, parts in chosen.items():
        when = ctx.imported_before(name)
        if when is not None:
            content.skipped[name] = when
            continue
        parts = [_adjust(m, name, options.renames, options.tags) for m in parts]
        try:
            profile = _profile(name, parts[0], ctx, content.notes)
        except SunarchiveError as exc:
            why = f"measurement {name!r} has no profile and none can be inferred: {exc}"
            content.rejected += [(int(n), why) for m in parts for n in m.line_numbers]
            continue
        if is_inferred(profile):
            parts, profile = _grown(parts, profile, ctx, content)
        content.parts[name] = [_convert(m, profile, _state_codes(ctx), content.notes)
                               for m in parts]
    return content


def _grown(parts: list[ParsedMeasurement], profile: Profile, ctx: FileContext,
           content: FileContent) -> tuple[list[ParsedMeasurement], Profile]:
    """Schema on write, as over HTTP (:mod:`sunarchive.api.growth`): points giving a field
    another type than its first write are rejected, and the inferred ``profile`` grows by
    the tag keys and fields of every part (created unless a dry run)."""
    kept = []
    for m in parts:
        m = _reject(m, type_conflicts(profile, m), content.rejected)
        growth = plan_growth(profile, m, WriteLimits())
        m = _reject(m, growth.refused, content.rejected)
        document = growth.document(profile, m)
        if document is not None:
            try:
                grown = parse_profile(document, f"<grown from line protocol: {profile.name}>")
                if ctx.store is not None:
                    ctx.store.grow_profile(grown, document)
            except SunarchiveError as exc:
                why = f"measurement {profile.name!r}: cannot add {growth.keys()}: {exc}"
                m = _reject(m, dict.fromkeys(growth.carrying(m), why), content.rejected)
            else:
                profile = ctx.profiles[profile.name] = grown
                verb = "grew" if ctx.store is not None else "would grow"
                content.notes.append(f"measurement {profile.name!r} {verb}: added "
                                     f"{growth.keys()}")
        kept.append(m)
    return kept, profile


def _reject(m: ParsedMeasurement, reasons: dict[int, str],
            rejected: list[tuple[int, str]]) -> ParsedMeasurement:
    """Reject the points of ``m`` that ``reasons`` names (index → why), with their lines."""
    if not reasons:
        return m
    rejected += [(int(m.line_numbers[i]), why) for i, why in reasons.items()]
    keep = np.ones(len(m.time_ns), bool)
    keep[list(reasons)] = False
    return _subset(m, keep)


def _blocks(path: Path) -> Iterator[tuple[int, bytes]]:
    """``(lines before, block of whole lines)`` of the file."""
    offset = 0
    carry = b""
    with path.open("rb") as f:
        while chunk := f.read(BLOCK_BYTES):
            data = carry + chunk
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                carry = data
                continue
            block, carry = data[:cut], data[cut:]
            yield offset, block
            offset += block.count(b"\n")
    if carry:
        yield offset, carry


def _without_line(message: str) -> str:
    """The parser's message without its ``line N:`` prefix (the report gives the line)."""
    head, sep, rest = message.partition(": ")
    return rest if sep and head.startswith("line ") else message


def _select(found: Found, measurement: str | None) -> tuple[Found, int]:
    """The measurements to import and how many points were left out by ``--measurement``."""
    if measurement is None or measurement in found:
        chosen = found if measurement is None else {measurement: found[measurement]}
        return chosen, sum(len(m.time_ns) for name, parts in found.items() for m in parts
                           if name not in chosen)
    if len(found) == 1:
        return {measurement: next(iter(found.values()))}, 0
    raise InputError(f"--measurement {measurement}: the file holds "
                     f"{', '.join(sorted(found)) or 'no points'}, not {measurement}")


def _adjust(m: ParsedMeasurement, name: str, renames: dict[str, str],
            tags: dict[str, str]) -> ParsedMeasurement:
    """``m`` named ``name``, with tag and field keys renamed and constant tags set."""
    keys = [renames.get(k, k) for k in m.tag_keys]
    sets = [list(values) for values in m.tag_sets]
    for key, value in tags.items():
        if key in keys:
            at = keys.index(key)
            for values in sets:
                values[at] = value
        else:
            keys.append(key)
            for values in sets:
                values.append(value)
    fields = {renames.get(k, k): v for k, v in m.fields.items()}
    if len(fields) < len(m.fields):
        raise InputError(f"--map gives two fields of {m.measurement!r} the same name")
    unique: dict[tuple[str, ...], int] = {}
    remap = np.array([unique.setdefault(tuple(v), len(unique)) for v in sets], np.int32)
    index = remap[m.tag_index] if len(m.tag_index) else m.tag_index
    return replace(m, measurement=name, tag_keys=tuple(keys), tag_sets=list(unique),
                   tag_index=index, fields=fields)


def _profile(name: str, m: ParsedMeasurement, ctx: FileContext, notes: list[str]) -> Profile:
    """The profile of ``name``, inferred (and created unless a dry run) when there is none;
    SunarchiveError when nothing of it can be stored."""
    profile = ctx.profiles.get(name)
    if profile is not None:
        return profile
    document = spec_of(m, ctx.profiles)
    profile = parse_profile(document, f"<inferred from line protocol: {name}>")
    if ctx.store is not None:
        ctx.store.add_profile(profile, document)
    ctx.profiles[name] = profile
    kinds = ", ".join(f"{f.name} {f.kind}" for f in profile.fields)
    verb = "created" if ctx.store is not None else "a real import would create"
    notes.append(f"measurement {name!r} had no profile: {verb} one from its line protocol "
                 f"({kinds})")
    return profile


def _state_codes(ctx: FileContext) -> StateCodes:
    """The store's codes of text states; in a dry run codes that are only counted."""
    if ctx.store is not None:
        codes: StateCodes = ctx.store.state_codes
        return codes
    return lambda measurement, field, labels: {v: i for i, v in enumerate(sorted(set(labels)))}


def _convert(m: ParsedMeasurement, profile: Profile, state_codes: StateCodes,
             notes: list[str]) -> Mapped:
    """Points → rows of ``profile``; points without a timestamp or any field are rejected."""
    rejected: list[tuple[int, str]] = []
    stamped = m.time_ns != NO_TIME
    if not stamped.all():
        rejected += [(int(n), "no timestamp (an import cannot use the time of now)")
                     for n in m.line_numbers[~stamped]]
        m = _subset(m, stamped)
    m = _storable(m, rejected)
    m = _without_unknown_tags(m, profile, rejected)
    samples = to_samples(m, profile, state_codes)
    batch = samples.batch
    if batch is None:
        why = "; ".join(samples.problems) or f"no field of {profile.name}"
        rejected += [(int(n), why) for n in m.line_numbers]
        return Mapped(np.empty(0, np.int64), [()], np.empty(0, np.int32), {}, rejected)
    notes += [p for p in samples.problems if p not in notes]
    rejected += [(int(n), f"no field of {profile.name} "
                  f"({', '.join(f.name for f in profile.fields)})")
                 for n in m.line_numbers[~samples.kept]]
    return Mapped(batch.time_ns, batch.tag_sets, batch.tag_index, batch.fields, rejected)


def _storable(m: ParsedMeasurement, rejected: list[tuple[int, str]]) -> ParsedMeasurement:
    """Reject the points whose time or a numeric value the store cannot hold
    (:mod:`sunarchive.bounds`), naming the field."""
    return _reject(m, unstorable_points(m), rejected)


def _without_unknown_tags(m: ParsedMeasurement, profile: Profile,
                          rejected: list[tuple[int, str]]) -> ParsedMeasurement:
    """Reject the points that carry a tag the profile lacks (only those: in a file, one odd
    line does not drop its measurement) and drop that tag key from the others."""
    unknown = [i for i, key in enumerate(m.tag_keys) if key not in profile.tags]
    if not unknown:
        return m
    tagged = np.array([any(values[i] for i in unknown) for values in m.tag_sets], bool)
    carries = tagged[m.tag_index] if len(m.tag_index) else np.zeros(0, bool)
    for n, values in zip(m.line_numbers[carries].tolist(),
                         [m.tag_sets[i] for i in m.tag_index[carries]], strict=True):
        key = next(m.tag_keys[i] for i in unknown if values[i])
        rejected.append((int(n), f"tag {key!r} is not one of the tags of {profile.name} "
                                 f"({', '.join(profile.tags) or 'none'})"))
    kept = _subset(m, ~carries)
    known = [i for i in range(len(m.tag_keys)) if i not in unknown]
    unique: dict[tuple[str, ...], int] = {}
    remap = np.array([unique.setdefault(tuple(v[i] for i in known), len(unique))
                      for v in m.tag_sets], np.int32)
    index = remap[kept.tag_index] if len(kept.tag_index) else kept.tag_index
    return replace(kept, tag_keys=tuple(m.tag_keys[i] for i in known), tag_sets=list(unique),
                   tag_index=index)


def _subset(m: ParsedMeasurement, keep: npt.NDArray[np.bool_]) -> ParsedMeasurement:
    fields = {k: ParsedField(f.kind, f.values[keep]) for k, f in m.fields.items()}
    return replace(m, tag_index=m.tag_index[keep], time_ns=m.time_ns[keep], fields=fields,
                   line_numbers=m.line_numbers[keep])
