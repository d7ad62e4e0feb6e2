"""Parsed line protocol → samples of a measurement's profile, the same for the HTTP write
endpoints and ``sunarchive import``.

The points must use the profile's tags (a tag the profile lacks drops them all; a tag they
lack is empty). Fields the profile lacks are dropped, each named once; text values are kept
only for ``state`` fields, as integer codes. A point left without any field value is dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from sunarchive.lineprotocol import ParsedMeasurement
from sunarchive.model import FieldKind, FloatArray, SampleBatch
from sunarchive.profiles import Profile

StateCodes = Callable[[str, str, list[str]], dict[str, int]]
"""``(measurement, field, labels) -> label → integer code`` (the store's ``state_codes``)."""


@dataclass
class Samples:
    """What a measurement's points became: the batch (None when nothing is left), which
    points it holds, and the problems, one sentence each."""

    batch: SampleBatch | None
    kept: npt.NDArray[np.bool_]
    problems: list[str]


def to_samples(m: ParsedMeasurement, profile: Profile, state_codes: StateCodes) -> Samples:
    """The points of ``m`` as samples of ``profile``."""
    none = np.zeros(len(m.time_ns), bool)
    unknown_tags = [t for t in m.tag_keys if t not in profile.tags]
    if unknown_tags:
        return Samples(None, none, [
            f"measurement {m.measurement!r}: tag {unknown_tags[0]!r} is not one of its tags "
            f"({', '.join(profile.tags) or 'none'}); points dropped"])
    problems: list[str] = []
    fields = _fields(m, profile, state_codes, problems)
    if not fields:
        return Samples(None, none, problems)
    position = {t: i for i, t in enumerate(m.tag_keys)}
    tag_sets = [tuple(values[position[t]] if t in position else "" for t in profile.tags)
                for values in m.tag_sets]
    present = np.zeros(len(m.time_ns), bool)
    for values in fields.values():
        present |= ~np.isnan(values)
    if not present.all():
        fields = {k: v[present] for k, v in fields.items()}
        return Samples(SampleBatch(m.measurement, tag_sets, m.tag_index[present],
                                   m.time_ns[present], fields), present, problems)
    return Samples(SampleBatch(m.measurement, tag_sets, m.tag_index, m.time_ns, fields),
                   present, problems)


def _fields(m: ParsedMeasurement, profile: Profile, state_codes: StateCodes,
            problems: list[str]) -> dict[str, FloatArray]:
    fields: dict[str, FloatArray] = {}
    known = {f.name: f.kind for f in profile.fields}
    for name, parsed in m.fields.items():
        if parsed.kind == "string" and known.get(name) is not FieldKind.STATE:
            problems.append(f"measurement {m.measurement!r}: field {name!r} is a string but "
                            "not a state field of its profile, so it was dropped")
        elif parsed.kind == "string":
            fields[name] = _codes(m.measurement, name, parsed.values, state_codes)
        elif name not in known:
            problems.append(f"measurement {m.measurement!r}: field {name!r} is not in its "
                            f"profile ({', '.join(sorted(known))}); that field was dropped")
        else:
            fields[name] = np.asarray(parsed.values, np.float64)
    return fields


def _codes(measurement: str, field: str, labels: np.ndarray[Any, Any],
           state_codes: StateCodes) -> FloatArray:
    """Text states as their integer codes (NaN where the point has no value)."""
    present = [label for label in labels if label is not None]
    codes = state_codes(measurement, field, present)
    return np.array([np.nan if label is None else codes[label] for label in labels],
                    np.float64)
