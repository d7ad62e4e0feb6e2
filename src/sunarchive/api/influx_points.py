"""A parsed write body → the batches to queue and the lines refused, point by point.

Every point (line) is stored or refused on its own; a refused line is named by its 1-based
number, and the lines around it are kept. A point is refused when:

* the parser refuses its line (syntax, values beyond float64/int64/uint64, times beyond
  int64 nanoseconds);
* the store cannot hold its time or a numeric value (:mod:`sunarchive.bounds`: 1970 …
  2200, finite and within ±1e100), named with the field;
* it is stamped more than ``max_future_s`` ahead of the clock (:mod:`sunarchive.timecheck`);
* it carries more than ``max_tags_per_series`` tags;
* its measurement is new and cannot be created: the store already holds
  ``max_measurements`` measurements, or the body gives it more than
  ``max_fields_per_measurement`` fields or ``max_tags_per_series`` tag keys.

Measurements whose profile was inferred from line protocol take every tag key and field
(schema on write, :mod:`sunarchive.api.growth`); a point of one is also refused when:

* it gives a field another type than the field's first write (InfluxDB's "field type
  conflict");
* it brings a tag key or field past ``max_tags_per_series`` tag keys or
  ``max_fields_per_measurement`` fields for its measurement.

A measurement with a built-in or user profile keeps that profile's rules: a point carrying a
tag the profile does not have is refused; a field it lacks is dropped from a point that keeps
others (that line is reported too, but stored); a point left without any field is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from sunarchive.api.context import ApiContext
from sunarchive.api.growth import new_keys, plan_growth
from sunarchive.api.inferred import is_inferred, spec_of, type_conflicts
from sunarchive.api.limits import WriteLimits
from sunarchive.errors import QueueFullError, StoreUnavailableError, SunarchiveError
from sunarchive.lineprotocol import (
    MAX_SHOWN,
    LineError,
    ParsedMeasurement,
    ParseResult,
    unstorable_points,
)
from sunarchive.lineprotocol_samples import Samples, StateCodes, to_samples
from sunarchive.model import SampleBatch
from sunarchive.profiles import Profile
from sunarchive.profiles.loader import parse_profile
from sunarchive.timecheck import drop_ahead


@dataclass
class Plan:
    """What a write body becomes: batches to queue, errors by line, points not stored."""

    batches: list[SampleBatch] = field(default_factory=list)
    errors: list[LineError] = field(default_factory=list)
    dropped: int = 0
    """Points (lines) not stored, the parser's refusals included."""

    def refuse(self, m: ParsedMeasurement, mask: npt.NDArray[np.bool_],
               why: Callable[[int], str]) -> ParsedMeasurement:
        """Refuse the points of ``m`` where ``mask`` is true (``why(i)`` for point ``i``);
        returns the rest."""
        at = np.flatnonzero(mask)
        self.errors += [LineError(int(m.line_numbers[i]), "",
                                  f"line {int(m.line_numbers[i])}: {why(int(i))}")
                        for i in at.tolist()]
        self.dropped += len(at)
        return m.take(~mask)


def plan_write(ctx: ApiContext, parsed: ParseResult, now_ns: int) -> Plan:
    """Check every point of ``parsed`` (see the module docstring); create the profiles of
    new measurements that pass. Nothing is queued here."""
    limits = ctx.limits
    parsed = drop_ahead(parsed, now_ns, limits.max_future_s)
    plan = Plan(errors=list(parsed.errors), dropped=len(parsed.errors))
    for m in parsed.measurements.values():
        m = _within_tag_limit(_storable(m, plan), limits, plan)
        profile = _profile(ctx, m, plan) if len(m.time_ns) else None
        if profile is not None and is_inferred(profile):
            m, profile = _grown(ctx, m, profile, plan)
        if profile is not None and len(m.time_ns):
            _samples(ctx, m, profile, plan)
    plan.errors.sort(key=lambda e: e.line_number)
    return plan


def with_lines(errors: list[LineError], body: bytes) -> None:
    """Fill in the original text of errors that lack it, from the body."""
    if all(e.line for e in errors):
        return
    lines = body.decode("utf-8", errors="replace").split("\n")
    for e in errors:
        if not e.line and 0 < e.line_number <= len(lines):
            text = lines[e.line_number - 1].rstrip("\r").lstrip(" \t")
            e.line = text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN] + "…"


def _storable(m: ParsedMeasurement, plan: Plan) -> ParsedMeasurement:
    """Refuse the points whose time or a numeric field value the store cannot hold."""
    return _refuse_points(plan, m, unstorable_points(m))


def _within_tag_limit(m: ParsedMeasurement, limits: WriteLimits,
                      plan: Plan) -> ParsedMeasurement:
    most = limits.max_tags_per_series
    if len(m.tag_keys) <= most:
        return m
    per_set = np.array([sum(1 for v in values if v) for values in m.tag_sets], np.int64)
    count = per_set[m.tag_index]
    return plan.refuse(m, count > most, lambda i: f"{int(count[i])} tags, more than "
                       f"max_tags_per_series = {most}")


def _profile(ctx: ApiContext, m: ParsedMeasurement, plan: Plan) -> Profile | None:
    """The profile of ``m``, created (on the writer thread) when new and within the limits;
    else its points are refused and None is returned."""
    profile = ctx.profiles.get(m.measurement)
    if profile is not None:
        return profile
    try:
        found = ctx.on_writer(lambda: _create(ctx, m),
                              f"creating measurement {m.measurement!r}")
    except (StoreUnavailableError, QueueFullError):
        raise           # the whole write waits: 503 with Retry-After (api/app.py)
    except SunarchiveError as exc:
        found = f"measurement {m.measurement!r}: cannot store it: {exc}"
    if isinstance(found, Profile):
        return found
    plan.refuse(m, np.ones(len(m.time_ns), bool), lambda _: found)
    return None


def _create(ctx: ApiContext, m: ParsedMeasurement) -> Profile | str:
    """On the writer thread: the profile of ``m`` — another write's, if one created it
    first, else a new one inferred from ``m`` and stored — or why ``m`` is over the limits.
    The store's errors are raised (to the waiting write)."""
    profile = ctx.profiles.get(m.measurement)
    if profile is not None:
        return profile
    why = _over_limits(m, ctx.limits, len(ctx.profiles))
    if why is not None:
        return why
    document = spec_of(m, ctx.profiles)
    profile = parse_profile(document, f"<inferred from line protocol: {m.measurement}>")
    ctx.store.add_profile(profile, document)
    return profile


@dataclass
class _Grown:
    """What growing a measurement gave: its points left, its profile, its refusals."""

    m: ParsedMeasurement
    profile: Profile
    plan: Plan


def _grown(ctx: ApiContext, m: ParsedMeasurement, profile: Profile,
           plan: Plan) -> tuple[ParsedMeasurement, Profile]:
    """Refuse the points of ``m`` whose field types conflict with the inferred ``profile``;
    grow the profile (on the writer thread) by the tag keys and fields the others bring,
    within the limits."""
    m = _refuse_points(plan, m, type_conflicts(profile, m))
    tags, fields = new_keys(profile, m)
    if not tags and not fields:
        return m, profile
    grown = ctx.on_writer(lambda: _grow(ctx, m), f"growing measurement {m.measurement!r}")
    plan.errors += grown.plan.errors
    plan.dropped += grown.plan.dropped
    return grown.m, grown.profile


def _grow(ctx: ApiContext, m: ParsedMeasurement) -> _Grown:
    """On the writer thread: grow the profile of ``m`` as it is now (another write may have
    grown it) by what ``m`` brings; points in conflict or past a limit are refused, and
    those carrying the new keys too if the store refuses them. Store unavailable: raised."""
    local = Plan()
    profile = ctx.profiles[m.measurement]
    m = _refuse_points(local, m, type_conflicts(profile, m))
    growth = plan_growth(profile, m, ctx.limits)
    m = _refuse_points(local, m, growth.refused)
    document = growth.document(profile, m)
    if document is None:
        return _Grown(m, profile, local)
    try:
        grown = parse_profile(document, f"<grown from line protocol: {m.measurement}>")
        ctx.store.grow_profile(grown, document)
    except StoreUnavailableError:
        raise                   # the whole write waits: 503 with Retry-After (api/app.py)
    except SunarchiveError as exc:
        why = f"measurement {m.measurement!r}: cannot add {growth.keys()}: {exc}"
        m = _refuse_points(local, m, dict.fromkeys(growth.carrying(m), why))
        return _Grown(m, profile, local)
    return _Grown(m, grown, local)


def _refuse_points(plan: Plan, m: ParsedMeasurement,
                   reasons: dict[int, str]) -> ParsedMeasurement:
    """Refuse the points of ``m`` that ``reasons`` names (index → why)."""
    if not reasons:
        return m
    mask = np.zeros(len(m.time_ns), bool)
    mask[list(reasons)] = True
    return plan.refuse(m, mask, reasons.__getitem__)


def _over_limits(m: ParsedMeasurement, limits: WriteLimits, measurements: int) -> str | None:
    """Why the new measurement ``m`` cannot be created, or None."""
    name = m.measurement
    if measurements >= limits.max_measurements:
        return (f"measurement {name!r} is new and the store already holds "
                f"{measurements} measurements (max_measurements = {limits.max_measurements})")
    if len(m.fields) > limits.max_fields_per_measurement:
        return (f"measurement {name!r} is new with {len(m.fields)} fields, more than "
                f"max_fields_per_measurement = {limits.max_fields_per_measurement}")
    if len(m.tag_keys) > limits.max_tags_per_series:
        return (f"measurement {name!r} is new with {len(m.tag_keys)} tag keys, more than "
                f"max_tags_per_series = {limits.max_tags_per_series}")
    return None


def _samples(ctx: ApiContext, m: ParsedMeasurement, profile: Profile, plan: Plan) -> None:
    """Convert ``m``'s points; each refused or trimmed point becomes an error of its line."""
    samples = to_samples(m, profile, _state_codes(ctx))
    refused = dict(samples.refused)
    carries = _carried_dropped_fields(m, samples)
    for i in np.flatnonzero(~samples.kept).tolist():
        why = refused.get(i) or "; ".join(carries.get(i, [])) or "no field value"
        n = int(m.line_numbers[i])
        suffix = "" if i in refused else "; nothing of the line was stored"
        plan.errors.append(LineError(n, "", f"line {n}: {why}{suffix}"))
    plan.dropped += int((~samples.kept).sum())
    for i in np.flatnonzero(samples.kept).tolist():
        if i in carries:
            n = int(m.line_numbers[i])
            plan.errors.append(LineError(n, "", f"line {n}: {'; '.join(carries[i])}; "
                                               "its other fields were stored"))
    if samples.batch is not None and len(samples.batch):
        plan.batches.append(samples.batch)


def _state_codes(ctx: ApiContext) -> StateCodes:
    """The store's codes of text states: those kept already are read here, new labels are
    added on the writer thread."""
    def codes(measurement: str, field: str, labels: Iterable[str]) -> dict[str, int]:
        wanted = set(labels)
        known = ctx.store.known_state_codes(measurement, field)
        if wanted <= known.keys():
            return {label: known[label] for label in wanted}
        return ctx.on_writer(lambda: ctx.store.state_codes(measurement, field, wanted),
                             f"adding states of {measurement}.{field}")
    return codes


def _carried_dropped_fields(m: ParsedMeasurement, samples: Samples) -> dict[int, list[str]]:
    """Point index → why each dropped field it carries was dropped."""
    out: dict[int, list[str]] = {}
    for name, why in samples.dropped_fields.items():
        values: Any = m.fields[name].values
        carried = np.array([v is not None for v in values], bool) \
            if m.fields[name].kind == "string" else ~np.isnan(values)
        for i in np.flatnonzero(carried).tolist():
            out.setdefault(i, []).append(why)
    return out
