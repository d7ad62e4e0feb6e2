"""Parsed line protocol → samples of a measurement's profile, the same for the HTTP write
endpoints and ``sunarchive import``.

The points must use the profile's tags: a point carrying a tag the profile lacks is refused
(only that point); a tag it lacks is empty. Fields the profile lacks are dropped, each named
once; text values are kept only for ``state`` fields, as integer codes. A point left without
any field value is dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
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
    refused: list[tuple[int, str]] = field(default_factory=list)
    """Points refused for a tag the profile lacks: (index among the points, why)."""
    dropped_fields: dict[str, str] = field(default_factory=dict)
    """Fields left out of every point: name → why (the sentence also in ``problems``)."""


def to_samples(m: ParsedMeasurement, profile: Profile, state_codes: StateCodes) -> Samples:
    """The points of ``m`` as samples of ``profile``."""
    refused = _unknown_tags(m, profile)
    problems: list[str] = []
    dropped: dict[str, str] = {}
    fields = _fields(m, profile, state_codes, dropped)
    problems += dropped.values()
    present = np.zeros(len(m.time_ns), bool)
    for values in fields.values():
        present |= ~np.isnan(values)
    present[[i for i, _ in refused]] = False
    if not present.any():
        return Samples(None, present, problems, refused, dropped)
    tag_sets, tag_index = _profile_tag_sets(m, profile, present)
    if not present.all():
        fields = {k: v[present] for k, v in fields.items()}
        return Samples(SampleBatch(m.measurement, tag_sets, tag_index[present],
                                   m.time_ns[present], fields), present, problems, refused,
                       dropped)
    return Samples(SampleBatch(m.measurement, tag_sets, tag_index, m.time_ns, fields),
                   present, problems, refused, dropped)


def _profile_tag_sets(m: ParsedMeasurement, profile: Profile, present: npt.NDArray[np.bool_]
                      ) -> tuple[list[tuple[str, ...]], npt.NDArray[np.int32]]:
    """The distinct tag sets of the present points in the profile's tag order, and each
    point's index into them (refused points may point anywhere)."""
    position = {t: i for i, t in enumerate(m.tag_keys)}
    used = np.unique(m.tag_index[present])
    unique: dict[tuple[str, ...], int] = {}
    remap = np.zeros(len(m.tag_sets), np.int32)
    for i in used.tolist():
        values = m.tag_sets[i]
        remap[i] = unique.setdefault(
            tuple(values[position[t]] if t in position else "" for t in profile.tags),
            len(unique))
    return list(unique), remap[m.tag_index]


def _unknown_tags(m: ParsedMeasurement, profile: Profile) -> list[tuple[int, str]]:
    """(index, why) of each point carrying a tag the profile lacks."""
    unknown = [i for i, key in enumerate(m.tag_keys) if key not in profile.tags]
    if not unknown:
        return []
    why: dict[int, str] = {}
    for set_index, values in enumerate(m.tag_sets):
        key = next((m.tag_keys[i] for i in unknown if values[i]), None)
        if key is not None:
            why[set_index] = (f"tag {key!r} is not one of the tags of {m.measurement!r} "
                              f"({', '.join(profile.tags) or 'none'}); point refused")
    return [(i, why[s]) for i, s in enumerate(m.tag_index.tolist()) if s in why]


def _fields(m: ParsedMeasurement, profile: Profile, state_codes: StateCodes,
            dropped: dict[str, str]) -> dict[str, FloatArray]:
    fields: dict[str, FloatArray] = {}
    known = {f.name: f.kind for f in profile.fields}
    for name, parsed in m.fields.items():
        if parsed.kind == "string" and known.get(name) is not FieldKind.STATE:
            dropped[name] = (f"measurement {m.measurement!r}: field {name!r} is a string but "
                             "not a state field of its profile, so it was dropped")
        elif parsed.kind == "string":
            fields[name] = _codes(m.measurement, name, parsed.values, state_codes)
        elif name not in known:
            dropped[name] = (f"measurement {m.measurement!r}: field {name!r} is not in its "
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
