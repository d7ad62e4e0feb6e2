"""The rollup tiers as users read them in SQL: views that add the open buckets.

On DuckDB and plain PostgreSQL sunarchive materializes the complete buckets of ``<m>_5min``,
``<m>_1hour`` and ``<m>_daily`` into tables named ``<m>_<tier>_materialized``, up to a
horizon kept in ``sunarchive_rollup_state``. Under the tier's own name is a view: the
materialized buckets before the horizon, UNION ALL the buckets from the horizon on, merged
exactly from the tier below (itself materialized and open in the same way) — what
TimescaleDB's real-time aggregates do, and what the program's own reads do
(:meth:`~sunarchive.storage.tiered.TieredStore.tier_relation`). The view reads the horizons
itself, and a rollup moves rows and horizon in one transaction, so every read sees each
bucket exactly once: today, this hour and these five minutes included. The open buckets are
merged in one step from the finest rows that cover them (the hour's materialized 5-minute
buckets and the 1 s rows after them): planning the view costs one merge, not one per tier.

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
        """Parenthesised SQL of every bucket of ``tier`` (time in the stored type): the
        materialized ones before the tier's horizon, the rest merged in one step from the
        finest rows that cover them (:meth:`rows_from`; merging is associative, so 1 s rows
        merge into an hour as their 5-minute buckets would)."""
        d = self.dialect
        cols = ", ".join(d.quote(c) for c in self.columns(profile, tier))
        horizon = d.from_epoch(horizon_sql(profile, tier))
        source = self.rows_from(profile, TIER_SOURCE[tier], [self._since(horizon)])
        if tier == "daily":
            live = daily_select_zoned(profile, source, self.zone, d)
        else:
            live = merge_select(profile, source, d.bucket(TIER_SECONDS[tier], "src.time"), d)
        return (f"(SELECT {cols} FROM {d.quote(materialized_table(profile, tier))} "
                f"WHERE time < {horizon} UNION ALL SELECT {cols} FROM ({live}) AS live)")

    def rows_from(self, profile: Profile, tier: str, since: list[str]) -> str:
        """Parenthesised SQL of unmerged rows covering every instant from the latest of the
        times ``since`` on: the materialized buckets of ``tier`` up to its horizon, then
        those of the tier below, down to the 1 s rows (columns of the 1 s tier). Each bound
        is a condition of its own: DuckDB pushes such a condition into the table scan."""
        d = self.dialect
        cols = ", ".join(d.quote(c) for c in self.columns(profile, "1s"))
        after = " AND ".join(f"time >= {bound}" for bound in since)
        if tier == "1s":
            return f"(SELECT {cols} FROM {d.quote(profile.table('1s'))} WHERE {after})"
        horizon = d.from_epoch(horizon_sql(profile, tier))
        finer = self.rows_from(profile, TIER_SOURCE[tier], [*since, self._since(horizon)])
        return (f"(SELECT {cols} FROM {d.quote(materialized_table(profile, tier))} WHERE "
                f"{after} AND time < {horizon} UNION ALL SELECT * FROM {finer} AS f)")

    def _since(self, horizon: str) -> str:
        """The horizon as a lower bound (before a tier's first rollup: every time)."""
        return f"COALESCE({horizon}, {self.dialect.earliest()})"

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
