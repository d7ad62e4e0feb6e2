"""The tiered store every SQL engine shares, assembled from one layer per concern.

Tier tables ``<m>_1s``, ``<m>_5min``, ``<m>_1hour``, ``<m>_daily``. Engines (DuckDB,
PostgreSQL) subclass :class:`TieredStore` and provide the primitives of
:class:`~sunarchive.storage.engine.Engine`. The layers, each a module about one concern, in
the order they build on each other:

=============================  ==============================================================
:mod:`.engine`                 primitives, shared state, the lock, numbered migrations
:mod:`.catalog`                profiles added at run time, meta, state labels, series, events
:mod:`.rollups`                program-maintained rollups, horizons, dirty buckets, tier views
:mod:`.writes`                 the 1 s tier: append, merge late rows, replace ranges
:mod:`.retention`              what retention lets go
:mod:`.reads`                  newest rows, tier reads with the open buckets
=============================  ==============================================================

Engine-only abilities (chunks, compression, continuous aggregates) are capability protocols
(:mod:`.capabilities`), not methods every engine must have.
"""

from __future__ import annotations

from sunarchive.storage.catalog import growth_of
from sunarchive.storage.engine import INCOMING, PROTECT_ALL, iso_seconds, iso_time, tier_columns
from sunarchive.storage.reads import Reads
from sunarchive.storage.writes import written_seconds

__all__ = ["INCOMING", "PROTECT_ALL", "TieredStore", "growth_of", "iso_seconds", "iso_time",
           "tier_columns", "written_seconds"]


class TieredStore(Reads):
    """Tier tables ``<m>_1s``, ``<m>_5min``, ``<m>_1hour``, ``<m>_daily`` on a SQL engine.

    Methods that write run on the single writer thread (in a running server or agent every
    write goes through :meth:`sunarchive.pipeline.agent.Agent.submit` or the writer's own
    loop); readers may run on other threads. The store lock is described on
    :class:`~sunarchive.storage.engine.Engine`.
    """
