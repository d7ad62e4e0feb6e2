"""A PostgreSQL store with two ps100 panels (series 1 and 2) and their per-second rows, for the
TimescaleDB refresh tests and the writer they kill in a subprocess."""

from __future__ import annotations

from sunarchive.model import SeriesKey, StatsRows
from sunarchive.profiles import load_profiles
from sunarchive.storage.postgres.store import PostgresStore
from tests.support.stats_rows import stats_rows

PROFILES = load_profiles(None)
PS100 = "ps100_readings"
TAGS: dict[int, tuple[str, ...]] = {1: ("panel_1",), 2: ("panel_2",)}


def rows(start_s: int, seconds: int, power_w: float = 90.0) -> StatsRows:
    """Two panels at ``power_w`` (min/max ± 5 W) for ``seconds`` seconds from ``start_s``."""
    return stats_rows(PS100, start_s, seconds, series=2, power_w=power_w, power_spread_w=5.0)


def open_store(url: str, timezone: str = "UTC") -> PostgresStore:
    """The store at ``url``, set up, with the two panels' series."""
    store = PostgresStore(url, PROFILES, timezone=timezone)
    store.setup()
    for sid, tags in TAGS.items():
        store.add_series(SeriesKey(PS100, tags), sid)
    return store
