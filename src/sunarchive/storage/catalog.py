"""The catalog layer of the tiered store: profiles added and grown at run time (schema on
write), bookkeeping in ``sunarchive_meta``, text values of state fields, series and events.
"""

from __future__ import annotations

import json
from abc import abstractmethod
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from sunarchive.errors import StoreError
from sunarchive.model import ConfigError, Event, SeriesKey
from sunarchive.profiles.spec import Profile
from sunarchive.storage.engine import Engine
from sunarchive.upstream.homepot import registry as homepot_registry


class Catalog(Engine):
    """What the store records about its data: profiles added and grown at run time,
    ``sunarchive_meta``, text labels of state fields, series and events."""

    # -- profiles added and grown at run time (schema on write) -----------------------------
    engine_errors: tuple[type[Exception], ...] = ()
    """The engine driver's errors (a refused ``ALTER TABLE``): a schema change failing with
    one is reported as a :class:`StoreError` naming the measurement."""

    def add_profile(self, profile: Profile, document: dict[str, Any]) -> list[str]:
        """Add a profile (inferred from line protocol), create its tables — only its own —
        and keep its document for the next start. Returns what was created."""
        with self._lock:
            taken = {p.table("1s").casefold() for p in self.profiles.values()}
            if profile.table("1s").casefold() in taken:   # DuckDB: Cpu_1s is cpu_1s
                raise ConfigError(f"measurement {profile.name!r} would use the tables of "
                                  "another measurement")
            changes = self._schema_change(profile.name, lambda: self._create_tables(profile))
            self._save_document(profile.name, document)
            self.profiles[profile.name] = profile
            self._profile_added(profile.name)
            return changes + self._tables_changed(profile)

    def grow_profile(self, profile: Profile, document: dict[str, Any]) -> list[str]:
        """Replace a measurement's profile by ``profile``, the same with tag keys or fields
        added: the new columns are added to its tables (existing rows hold NULL there), then
        the document is kept for the next start. Returns what changed."""
        with self._lock:
            old = self.profiles[profile.name]
            changes = self._schema_change(profile.name,
                                          lambda: self._grow_tables(old, profile))
            self._save_document(profile.name, document)
            self.profiles[profile.name] = profile
            return changes + self._tables_changed(profile)

    def _tables_changed(self, profile: Profile) -> list[str]:
        """What follows a measurement's tables made or grown at run time (the rollup layer:
        the views users read its tiers through)."""
        return []

    def inferred_profiles(self) -> list[dict[str, Any]]:
        """The profiles inferred from line protocol: tags, fields, and how they grew (for
        ``status`` and ``/api/v1/series``)."""
        return [{"measurement": p.name, "tags": list(p.tags),
                 "fields": [f.name for f in p.fields], **growth_of(p)}
                for p in self.profiles.values() if p.extra.get("inferred") is True]

    def _schema_change(self, measurement: str, change: Callable[[], list[str]]) -> list[str]:
        try:
            return change()
        except self.engine_errors as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise StoreError(f"cannot change the tables of {measurement!r}: {first}") from None

    def _save_document(self, name: str, document: dict[str, Any]) -> None:
        p = self._p
        with self._transaction():
            self._execute("DELETE FROM sunarchive_profiles WHERE name = " + p, [name])
            self._execute(f"INSERT INTO sunarchive_profiles VALUES ({p}, {p})",
                          [name, json.dumps(document)])

    @abstractmethod
    def _create_tables(self, profile: Profile) -> list[str]:
        """Create the tables (and what the engine keeps beside them) of one new profile."""

    @abstractmethod
    def _grow_tables(self, old: Profile, new: Profile) -> list[str]:
        """Give the tables of ``old`` the columns ``new`` adds."""

    def stored_profiles(self) -> list[dict[str, Any]]:
        """Profile documents added at run time by earlier runs."""
        rows = self._fetch("SELECT spec FROM sunarchive_profiles ORDER BY name")
        return [json.loads(r[0]) for r in rows]

    @abstractmethod
    def setup(self) -> list[str]:
        """Create or upgrade the schema (idempotent); return what changed."""

    def _profile_added(self, name: str) -> None:
        """Hook: a profile was added at run time (the rollup layer watches its buckets)."""

    # -- bookkeeping in ``sunarchive_meta`` ----------------------------------------------------
    def meta_values(self, prefix: str) -> dict[str, str]:
        """The ``sunarchive_meta`` records whose key starts with ``prefix``."""
        rows = self._fetch("SELECT key, value FROM sunarchive_meta "
                           f"WHERE starts_with(key, {self._p})", [prefix])
        return {str(key): str(value) for key, value in rows}

    def put_meta(self, items: dict[str, str], chunk_rows: int = 500) -> None:
        """Set ``sunarchive_meta`` records (replacing older values), in one transaction and
        a few multi-row statements of ``chunk_rows`` each."""
        p = self._p
        keys = list(items)
        with self._lock, self._transaction():
            for lo in range(0, len(keys), chunk_rows):
                chunk = keys[lo:lo + chunk_rows]
                self._execute(f"DELETE FROM sunarchive_meta WHERE key IN "
                              f"({', '.join([p] * len(chunk))})", chunk)
                self._execute(f"INSERT INTO sunarchive_meta VALUES "
                              f"{', '.join([f'({p}, {p})'] * len(chunk))}",
                              [v for key in chunk for v in (key, items[key])])

    # -- text values of state fields ----------------------------------------------------------
    def known_state_codes(self, measurement: str, field: str) -> dict[str, int]:
        """The codes of the text states of a state field kept so far (label → code; a code
        never changes once given, so a reader may use these without the writer)."""
        p = self._p
        with self._lock:
            rows = self._fetch("SELECT label, code FROM sunarchive_state_labels WHERE "
                               f"measurement = {p} AND field = {p}", [measurement, field])
        return {str(label): int(code) for label, code in rows}

    def state_codes(self, measurement: str, field: str, labels: Iterable[str]) -> dict[str, int]:
        """Integer codes of text states (``"on"``, ``"heating"``) of a state field; new
        labels get the next free codes, kept in ``sunarchive_state_labels`` for good
        (writers: in a running server, on the writer thread)."""
        wanted = set(labels)
        p = self._p
        with self._lock:
            codes = self.known_state_codes(measurement, field)
            new = sorted(wanted - codes.keys())
            if new:
                with self._transaction():
                    for label in new:
                        codes[label] = len(codes)
                        self._execute(f"INSERT INTO sunarchive_state_labels VALUES ({p}, {p}, "
                                      f"{p}, {p})", [measurement, field, codes[label], label])
        return {label: codes[label] for label in wanted}

    def state_labels(self) -> dict[str, dict[str, dict[int, str]]]:
        """measurement → field → code → label, for every state field written as text."""
        out: dict[str, dict[str, dict[int, str]]] = {}
        with self._lock:
            rows = self._fetch("SELECT measurement, field, code, label FROM "
                               "sunarchive_state_labels")
        for measurement, field, code, label in rows:
            out.setdefault(str(measurement), {}).setdefault(str(field), {})[int(code)] = \
                str(label)
        return out

    # -- series and events -------------------------------------------------------------------
    def load_series(self) -> dict[SeriesKey, int]:
        with self._lock:
            rows = self._fetch("SELECT series_id, measurement, tags FROM sunarchive_series")
        out: dict[SeriesKey, int] = {}
        for sid, measurement, tags in rows:
            profile = self.profiles.get(measurement)
            values = json.loads(tags)
            order = profile.tags if profile else tuple(values)
            out[SeriesKey(measurement, tuple(values.get(t, "") for t in order))] = int(sid)
        return out

    def add_series(self, key: SeriesKey, series_id: int) -> None:
        """Persist a series id (idempotent: adding a known id again changes nothing)."""
        self.save_series([(key, series_id)])

    def save_series(self, series: list[tuple[SeriesKey, int]]) -> None:
        """Persist series ids in one transaction — one commit (a WAL sync) for a fleet of
        new senders, not one each (idempotent)."""
        p = self._p
        with self._lock, self._transaction():
            for key, series_id in series:
                profile = self.profiles[key.measurement]
                values = key.tags + ("",) * (len(profile.tags) - len(key.tags))  # it grew
                tags = json.dumps(dict(zip(profile.tags, values, strict=True)))
                self._execute(f"INSERT INTO sunarchive_series SELECT {p}, {p}, {p} WHERE NOT "
                              f"EXISTS (SELECT 1 FROM sunarchive_series WHERE series_id = {p})",
                              [series_id, key.measurement, tags, series_id])
                if key.measurement == homepot_registry.MEASUREMENT:   # a new device?
                    homepot_registry.register(self._execute, self._fetch, p,
                                              json.loads(tags))

    def write_events(self, events: list[Event]) -> None:
        if not events:
            return
        p = self._p
        with self._lock, self._transaction():
            for e in events:
                end = None if e.end_s is None else self.time_param(e.end_s)
                self._execute(f"INSERT INTO sunarchive_events VALUES ({p}, {p}, {p}, {p}, {p}, "
                              f"{p})", [self.time_param(e.time_s), end, e.kind, e.measurement,
                                        e.series_id, e.message])

    def event_rows(self, limit: int = 100) -> Iterator[dict[str, Any]]:
        """Newest events first."""
        table = self._read_arrow(f"SELECT * FROM sunarchive_events ORDER BY time DESC "
                                 f"LIMIT {int(limit)}")
        yield from table.to_pylist()


def growth_of(profile: Profile) -> dict[str, Any]:
    """How often an inferred profile grew and its latest growths (when, tags, fields)."""
    grew = profile.extra.get("grew")
    growths = profile.extra.get("growths")
    return {"growths": growths if isinstance(growths, int) else 0,
            "grew": list(grew) if isinstance(grew, list) else []}

