"""Schema on write: an inferred profile grows with its data.

A point of a measurement whose profile was inferred from line protocol may bring tag keys
and fields its profile lacks: they are added (the store adds their columns) and the point is
stored, as InfluxDB does. Limits still hold: a measurement keeps at most
``max_tags_per_series`` tag keys and ``max_fields_per_measurement`` fields; the new keys
past them are not added, and the points carrying them are refused, each with one clear
reason. Built-in and user profiles never grow (their rules are the user's).

Each growth is recorded in the profile's ``extra.grew`` (when, which tags and fields), which
``sunarchive status`` and ``/api/v1/series`` show.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from sunarchive.api.inferred import (
    carried,
    document_of,
    field_document,
    name_columns,
    storable_name,
    tag_carried,
)
from sunarchive.api.limits import WriteLimits
from sunarchive.lineprotocol import ParsedMeasurement
from sunarchive.profiles.spec import Profile

GREW_KEPT = 20
"""Growths listed in a profile's ``extra.grew`` (the newest; ``extra.growths`` counts all)."""


@dataclass
class Growth:
    """What a measurement's points add to its inferred profile."""

    tags: list[str] = field(default_factory=list)
    fields: list[str] = field(default_factory=list)
    refused: dict[int, str] = field(default_factory=dict)
    """Point index → why, for points carrying a key past a limit."""

    def carrying(self, m: ParsedMeasurement) -> list[int]:
        """The points of ``m`` that carry a tag key or field this growth adds."""
        mask = np.zeros(len(m.time_ns), bool)
        for name in self.fields:
            mask |= carried(m, name)
        for key in self.tags:
            mask |= tag_carried(m, key)
        return np.flatnonzero(mask).tolist()

    def keys(self) -> str:
        """What this growth adds, for messages (``tag 'region', field 'x'``)."""
        return ", ".join([*(f"tag {t!r}" for t in self.tags),
                          *(f"field {f!r}" for f in self.fields)])

    def document(self, profile: Profile, m: ParsedMeasurement,
                 now: datetime | None = None) -> dict[str, Any] | None:
        """The grown profile's document (None: nothing to add)."""
        if not self.tags and not self.fields:
            return None
        doc = document_of(profile)
        doc["tags"] = [*profile.tags, *self.tags]
        doc["fields"].update({name: field_document(name, m.fields[name].kind)
                              for name in self.fields})
        name_columns(doc, profile)
        extra = doc["extra"]
        when = (now or datetime.now(UTC)).isoformat(timespec="seconds")
        entry = {"at": when, "tags": self.tags, "fields": self.fields}
        extra["grew"] = [*list(extra.get("grew") or []), entry][-GREW_KEPT:]
        extra["growths"] = int(extra.get("growths") or 0) + 1
        return doc


def new_keys(profile: Profile, m: ParsedMeasurement) -> tuple[list[str], list[str]]:
    """The tag keys and fields that points of ``m`` carry and ``profile`` lacks."""
    tags = [k for k in m.tag_keys if k not in profile.tags and storable_name(k)
            and bool(tag_carried(m, k).any())]
    known = {f.name for f in profile.fields}
    fields = [k for k in m.fields if k not in known and storable_name(k)
              and bool(carried(m, k).any())]
    return tags, fields


def plan_growth(profile: Profile, m: ParsedMeasurement, limits: WriteLimits) -> Growth:
    """What ``m`` adds to ``profile`` within the limits, and the points refused for keys
    past them."""
    tags, fields = new_keys(profile, m)
    tag_room = max(0, limits.max_tags_per_series - len(profile.tags))
    field_room = max(0, limits.max_fields_per_measurement - len(profile.fields))
    growth = Growth(tags[:tag_room], fields[:field_room])
    for key in tags[tag_room:]:
        why = (f"tag {key!r} would give {m.measurement!r} {len(profile.tags) + len(tags)} tag "
               f"keys, more than max_tags_per_series = {limits.max_tags_per_series}; "
               "point refused")
        for i in np.flatnonzero(tag_carried(m, key)).tolist():
            growth.refused.setdefault(int(i), why)
    for key in fields[field_room:]:
        why = (f"field {key!r} would give {m.measurement!r} "
               f"{len(profile.fields) + len(fields)} fields, more than "
               f"max_fields_per_measurement = {limits.max_fields_per_measurement}; "
               "point refused")
        for i in np.flatnonzero(carried(m, key)).tolist():
            growth.refused.setdefault(int(i), why)
    return growth
