"""What an engine can do beyond the store contract (:class:`sunarchive.storage.base.Store`),
asked for by ability, never by engine type.

Some abilities depend on the layout a PostgreSQL store chose at setup (TimescaleDB or plain),
so a store lists what it can do *now* in ``abilities()``; a function per ability gives the
store typed as that protocol, or None::

    store_that_compresses = compressing(store)
    if store_that_compresses is None:
        raise ConfigError("compression needs TimescaleDB")
    store_that_compresses.compress(7 * 86400)

| ability | DuckDB | plain PostgreSQL | TimescaleDB |
|---|---|---|---|
| :class:`Partitioned` (chunks or partitions of the 1 s tables) | – | ✓ | ✓ |
| :class:`Compressing` (columnar compression of old chunks) | – | – | ✓ |
| :class:`ContinuousAggregates` (the engine maintains the rollups) | – | – | ✓ |
| :class:`DroppedRanges` (raw chunks dropped under kept rollups) | – | – | ✓ |
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class HasAbilities(Protocol):
    def abilities(self) -> frozenset[str]:
        """Names of the capability protocols this store has now."""


@runtime_checkable
class Partitioned(Protocol):
    def chunks(self, table: str) -> list[dict[str, Any]]:
        """Chunks (TimescaleDB) or partitions (plain) of a table, oldest first."""


@runtime_checkable
class Compressing(Protocol):
    def compress(self, older_than_s: int) -> list[str]:
        """Compress 1 s chunks older than this (idempotent); the chunks compressed."""


@runtime_checkable
class ContinuousAggregates(Protocol):
    def create_aggregates(self) -> list[str]:
        """Create or repair the aggregates and their policies; what changed."""


@runtime_checkable
class DroppedRanges(Protocol):
    def raw_dropped(self, measurement: str, start_s: int, end_s: int,
                    look: bool = True) -> list[tuple[int, int]]:
        """Ranges (UTC epoch s) whose raw chunks were dropped while rollups keep them."""

    def has_raw_chunks(self, measurement: str, start_s: int, end_s: int) -> bool:
        """Does a raw chunk overlap [start_s, end_s)?"""


def _has(store: object, name: str) -> bool:
    return isinstance(store, HasAbilities) and name in store.abilities()


def partitioned(store: object) -> Partitioned | None:
    """``store`` if it lists chunks or partitions now, else None."""
    return store if _has(store, "Partitioned") and isinstance(store, Partitioned) else None


def compressing(store: object) -> Compressing | None:
    """``store`` if it compresses chunks now, else None."""
    return store if _has(store, "Compressing") and isinstance(store, Compressing) else None


def continuous_aggregates(store: object) -> ContinuousAggregates | None:
    """``store`` if the engine maintains its rollups, else None."""
    return store if _has(store, "ContinuousAggregates") \
        and isinstance(store, ContinuousAggregates) else None


def dropped_ranges(store: object) -> DroppedRanges | None:
    """``store`` if raw chunks can be dropped under kept rollups, else None."""
    return store if _has(store, "DroppedRanges") and isinstance(store, DroppedRanges) else None
