"""The retention layer of the tiered store: rows older than a tier's retention are deleted,
only once the next tier has consumed them.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sunarchive.profiles.spec import Profile
from sunarchive.rollup import (
    ALL_TIERS,
    TIER_SOURCE,
)
from sunarchive.storage.engine import PROTECT_ALL
from sunarchive.storage.writes import Writes


class Retention(Writes):
    """Deletes what the retention settings let go, never a row a coarser tier still needs."""

    # -- retention ---------------------------------------------------------------------------
    def apply_retention(self, now: datetime) -> dict[str, int]:
        deleted: dict[str, int] = {}
        with self._lock, self._transaction():
            for profile in self.profiles.values():
                for tier in ALL_TIERS:
                    cutoff = self.retention_cutoff(profile, tier, now)
                    if cutoff is None:
                        continue
                    gone = self._delete_before(profile, tier, cutoff)
                    if gone:
                        deleted[profile.table(tier)] = gone
        return deleted

    def retention_cutoff(self, profile: Profile, tier: str, now: datetime) -> int | None:
        """Rows of ``tier`` before this instant may go (None: keep all).

        The cutoff never passes the horizon of a rollup that reads the tier: raw data that a
        rollup has not yet materialized is never dropped.
        """
        days = self.retention_of(profile, tier)
        if days is None:
            return None
        cutoff = int((now - timedelta(days=days)).timestamp())
        protected = self._protected_from(profile.name, tier)
        return cutoff if protected is None else min(cutoff, protected)

    def _delete_before(self, profile: Profile, tier: str, cutoff: int) -> int:
        table = self.q(self.stored_table(profile, tier))
        return max(self._execute(f"DELETE FROM {table} WHERE time < {self.ts(cutoff)}"), 0)

    def retention_of(self, profile: Profile, tier: str) -> float | None:
        """Days ``tier`` of ``profile`` is kept: the profile's own setting, else the config's."""
        own = profile.extra.get(f"retention_{tier}_days")
        if own is None and tier == "1s":
            own = profile.extra.get("retention_days")
        if isinstance(own, int | float):
            return float(own)
        return self.retention_days.get(tier)

    def _protected_from(self, measurement: str, tier: str) -> int | None:
        """Rows at or after this instant feed a rollup not yet materialized: never drop them.

        None when no rollup reads this tier.
        """
        consumers = [t for t, src in TIER_SOURCE.items() if src == tier]
        if not consumers:
            return None
        bounds = [self._horizons.get((measurement, t)) for t in consumers]
        return min(PROTECT_ALL if b is None else b for b in bounds)


