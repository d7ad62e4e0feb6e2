"""``device_metrics_hourly``, ``device_metrics_daily`` and ``site_metrics_hourly``: HOMEPOT's
aggregates as views over the rollup tiers of ``health_checks``.

They read ``health_checks_1hour`` and ``health_checks_daily`` — on DuckDB and plain
PostgreSQL the views that add the open buckets (:mod:`sunarchive.storage.tier_views`), on
TimescaleDB the real-time continuous aggregates — so the current hour and day are in them.
Every figure is merged from the tiers' mergeable state, never an average of averages:

* ``avg_cpu``, ``avg_memory``, ``avg_disk``, ``avg_latency_ms``: Σ(mean × count) ÷ Σ count
  of the field's samples (%, ms);
* ``max_cpu``, ``max_memory``: the largest sample (%);
* ``total_transactions``, ``total_errors``: the counters' increase in the bucket (the
  fields are monotonic totals; a reset counts from zero), Σ ``<field>_increase``;
* ``checks``: health checks (samples) in the bucket; ``unhealthy_checks``: those with
  ``is_healthy`` false; ``uptime_percent``: healthy checks ÷ checks × 100;
* ``site_metrics_hourly``: per site and hour over all its devices; ``device_count``: devices
  (series) with a check in that hour, ``unhealthy_devices``: those with an unhealthy check.

``hour`` and ``day`` are the bucket's start (``TIMESTAMPTZ``); a day is the site's local day
(setting ``timezone``), as every daily figure of sunarchive. ``device_id`` and ``site_id`` are
integers (NULL for a tag value that is not one).

One SELECT serves both forms: over the tier's rows as they are (a view: ``bucket`` is
``time``) and, on TimescaleDB, as a continuous aggregate on the tier's continuous aggregate
(``bucket`` is ``time_bucket`` of the tier's own width, so each row merges exactly the tier
rows of one bucket). No DISTINCT: continuous aggregates refuse it, and a series is one
device at one site.
"""

from __future__ import annotations

from dataclasses import dataclass

from sunarchive.profiles.spec import Profile
from sunarchive.rollup import Dialect
from sunarchive.storage.plain_views import tag_value

MEANS = {"avg_cpu": "cpu_percent", "avg_memory": "memory_percent", "avg_disk": "disk_percent",
         "avg_latency_ms": "latency_ms"}
NEEDED = ("cpu_percent", "memory_percent", "disk_percent", "latency_ms", "transactions",
          "errors", "is_healthy")
VIEWS = {"device_metrics_hourly": "1hour", "device_metrics_daily": "daily",
         "site_metrics_hourly": "1hour"}
"""Each view and the tier it reads."""


def usable(profile: Profile | None) -> bool:
    """Has the profile the tags and fields the views read?"""
    if profile is None or not {"device_id", "site_id"} <= set(profile.tags):
        return False
    return {f.name for f in profile.fields} >= set(NEEDED)


@dataclass(frozen=True)
class Columns:
    """SQL of the tier's columns the figures are merged from."""

    profile: Profile
    d: Dialect

    def col(self, field: str, stat: str) -> str:
        return self.d.quote(f"{self.profile.field(field).stem}_{stat}")

    def mean(self, field: str) -> str:
        """Σ(mean × count) ÷ Σ count: the mean of every sample merged."""
        avg, count = self.col(field, "avg"), self.col(field, "count")
        return f"SUM({avg} * {count}) / NULLIF(SUM({count}), 0)"

    def total(self, field: str) -> str:
        return f"SUM({self.col(field, 'increase')})"

    def unhealthy(self) -> str:
        """Checks with ``is_healthy`` false."""
        return (f"{self.col('is_healthy', 'count')} - "
                f"{self.col('is_healthy', 'true_count')}")


def device_select(profile: Profile, tier: str, d: Dialect, bucket: str = "time") -> str:
    """``device_metrics_hourly`` (``tier`` 1hour) or ``device_metrics_daily`` (daily)."""
    c = Columns(profile, d)
    cols = [f"{bucket} AS {'hour' if tier == '1hour' else 'day'}",
            f"{tag_value(profile, 'device_id', d)} AS device_id",
            f"{tag_value(profile, 'site_id', d)} AS site_id",
            f"{c.mean('cpu_percent')} AS avg_cpu",
            f"MAX({c.col('cpu_percent', 'max')}) AS max_cpu",
            f"{c.mean('memory_percent')} AS avg_memory",
            f"MAX({c.col('memory_percent', 'max')}) AS max_memory",
            f"{c.mean('disk_percent')} AS avg_disk",
            f"{c.total('transactions')} AS total_transactions",
            f"{c.total('errors')} AS total_errors",
            f"{c.mean('latency_ms')} AS avg_latency_ms",
            "CAST(SUM(sample_count) AS BIGINT) AS checks",
            f"CAST(SUM({c.unhealthy()}) AS BIGINT) AS unhealthy_checks"]
    if tier == "daily":
        cols.append(f"100.0 * CAST(SUM({c.col('is_healthy', 'true_count')}) AS FLOAT8) / "
                    f"NULLIF(SUM({c.col('is_healthy', 'count')}), 0) AS uptime_percent")
    return (f"SELECT {', '.join(cols)} FROM {d.quote(profile.table(tier))} "
            "WHERE sample_count > 0 GROUP BY 1, 2, 3")


def site_select(profile: Profile, d: Dialect, bucket: str = "time") -> str:
    """``site_metrics_hourly``: every device (series) of a site merged per hour."""
    c = Columns(profile, d)
    cols = [f"{bucket} AS hour", f"{tag_value(profile, 'site_id', d)} AS site_id",
            "CAST(COUNT(*) AS BIGINT) AS device_count",
            f"{c.mean('cpu_percent')} AS avg_cpu",
            f"{c.mean('memory_percent')} AS avg_memory",
            f"{c.total('transactions')} AS total_transactions",
            f"{c.total('errors')} AS total_errors",
            f"CAST(SUM(CASE WHEN {c.unhealthy()} > 0 THEN 1 ELSE 0 END) AS BIGINT) "
            "AS unhealthy_devices"]
    return (f"SELECT {', '.join(cols)} FROM {d.quote(profile.table('1hour'))} "
            "WHERE sample_count > 0 GROUP BY 1, 2")


def view_sql(name: str, profile: Profile, d: Dialect, bucket: str = "time") -> str:
    """The SELECT of one of :data:`VIEWS` (``bucket``: SQL of the row's bucket start)."""
    if name == "site_metrics_hourly":
        return site_select(profile, d, bucket)
    return device_select(profile, VIEWS[name], d, bucket)
