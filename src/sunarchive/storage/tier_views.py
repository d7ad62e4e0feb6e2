"""The rollup tiers as users read them in SQL: views that add the open buckets.

On DuckDB and plain PostgreSQL sunarchive materializes the complete buckets of ``<m>_5min``,
``<m>_1hour`` and ``<m>_daily`` into tables named ``<m>_<tier>_materialized``, up to a
horizon kept in ``sunarchive_rollup_state``. Under the tier's own name is a view: the
materialized buckets before the horizon, UNION ALL the buckets from the horizon on, merged
exactly from the tier below (itself materialized and open in the same way) — what
TimescaleDB's real-time aggregates do, and what the program's own reads do
(:meth:`~sunarchive.storage.tiered.TieredStore.tier_relation`). The view reads the horizon
itself, and a rollup moves rows and horizon in one transaction, so every read sees each
bucket exactly once: today, this hour and these five minutes included.

The views' ``time`` is ``TIMESTAMPTZ`` on both engines (DuckDB stores UTC ``TIMESTAMP``s;
the view converts them without looking at the session's zone), so
``time AT TIME ZONE 'Europe/Berlin'`` gives the local wall-clock time everywhere. The open
part of the daily tier is bucketed by the site's local day with the engine's zone database.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from sunarchive.profiles.spec import Profile
from sunarchive.rollup import (
    ROLLUP_TIERS,
    TIER_SECONDS,
    TIER_SOURCE,
    Dialect,
    daily_select_zoned,
    merge_select,
)
from sunarchive.storage.migrations import materialized_table

VIEW_META_PREFIX = "tier_view:"
"""``sunarchive_meta`` keys (``tier_view:<view>``) holding a digest of each view's SQL: a
view is only replaced when its SQL changed (replacing locks it against readers)."""


@dataclass(frozen=True)
class TierViews:
    """SQL of the tier views of one store."""

    dialect: Dialect
    zone: str
    """IANA zone of the site (daily buckets)."""
    columns: Callable[[Profile, str], list[str]]
    """Column names of a tier, in order."""

    def view_select(self, profile: Profile, tier: str) -> str:
        """The view's query: every bucket of ``tier``, ``time`` as ``TIMESTAMPTZ``."""
        d = self.dialect
        cols = [d.instant("time") + " AS time" if c == "time" else d.quote(c)
                for c in self.columns(profile, tier)]
        return f"SELECT {', '.join(cols)} FROM {self.relation(profile, tier)} AS tier"

    def relation(self, profile: Profile, tier: str) -> str:
        """Parenthesised SQL of every bucket of ``tier`` (time in the stored type)."""
        d = self.dialect
        if tier == "1s":
            return d.quote(profile.table("1s"))
        cols = ", ".join(d.quote(c) for c in self.columns(profile, tier))
        horizon = d.from_epoch(horizon_sql(profile, tier))
        since = f"COALESCE({horizon}, {d.earliest()})"
        source = (f"(SELECT * FROM {self.relation(profile, TIER_SOURCE[tier])} AS s "
                  f"WHERE time >= {since})")
        if tier == "daily":
            live = daily_select_zoned(profile, source, self.zone, d)
        else:
            live = merge_select(profile, source, d.bucket(TIER_SECONDS[tier], "src.time"), d)
        return (f"(SELECT {cols} FROM {d.quote(materialized_table(profile, tier))} "
                f"WHERE time < {horizon} UNION ALL SELECT {cols} FROM ({live}) AS live)")

    def create_sql(self, profile: Profile, tier: str) -> str:
        view = self.dialect.quote(profile.table(tier))
        return f"CREATE OR REPLACE VIEW {view} AS {self.view_select(profile, tier)}"

    def wanted(self, profiles: list[Profile]) -> dict[str, tuple[Profile, str]]:
        """view name → (profile, tier) of every view a store should have."""
        return {p.table(tier): (p, tier) for p in profiles for tier in ROLLUP_TIERS}


def horizon_sql(profile: Profile, tier: str) -> str:
    """Scalar SQL: the tier's horizon (UTC epoch s; NULL before its first rollup)."""
    name = profile.name.replace("'", "''")
    return (f"(SELECT MAX(horizon_s) FROM sunarchive_rollup_state WHERE measurement = "
            f"'{name}' AND tier = '{tier}')")


def digest(sql: str) -> str:
    return hashlib.sha256(sql.encode()).hexdigest()[:32]
