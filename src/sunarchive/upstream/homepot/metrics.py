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
  with a check in that hour, ``unhealthy_devices``: those with an unhealthy check.

``hour`` and ``day`` are the bucket's start (``TIMESTAMPTZ``); a day is the site's local day
(setting ``timezone``), as every daily figure of sunarchive. ``device_id`` and ``site_id`` are
integers (NULL for a tag value that is not one).
"""

from __future__ import annotations

from sunarchive.profiles.spec import Profile
from sunarchive.rollup import Dialect
from sunarchive.storage.plain_views import tag_value

MEANS = {"cpu": "cpu_percent", "memory": "memory_percent", "disk": "disk_percent",
         "latency": "latency_ms"}
"""State kept per device and bucket: Σ(mean × count) and Σ count of these fields."""
NEEDED = ("cpu_percent", "memory_percent", "disk_percent", "latency_ms", "transactions",
          "errors", "is_healthy")
VIEWS = ("device_metrics_hourly", "device_metrics_daily", "site_metrics_hourly")


def usable(profile: Profile | None) -> bool:
    """Has the profile the tags and fields the views read?"""
    if profile is None or not {"device_id", "site_id"} <= set(profile.tags):
        return False
    return {f.name for f in profile.fields} >= set(NEEDED)


def per_device(profile: Profile, tier: str, d: Dialect) -> str:
    """Parenthesised SQL of one row per bucket, device and site with the mergeable state."""
    q = d.quote

    def col(field: str, stat: str) -> str:
        return q(f"{profile.field(field).stem}_{stat}")

    cols = ["time AS bucket", f"{tag_value(profile, 'device_id', d)} AS device_id",
            f"{tag_value(profile, 'site_id', d)} AS site_id"]
    for key, field in MEANS.items():
        cols.append(f"SUM({col(field, 'avg')} * {col(field, 'count')}) AS {key}_sum")
        cols.append(f"SUM({col(field, 'count')}) AS {key}_n")
    cols += [f"MAX({col('cpu_percent', 'max')}) AS max_cpu",
             f"MAX({col('memory_percent', 'max')}) AS max_memory",
             f"SUM({col('transactions', 'increase')}) AS total_transactions",
             f"SUM({col('errors', 'increase')}) AS total_errors",
             "CAST(SUM(sample_count) AS BIGINT) AS checks",
             f"CAST(SUM({col('is_healthy', 'true_count')}) AS BIGINT) AS healthy",
             f"CAST(SUM({col('is_healthy', 'count')}) AS BIGINT) AS flagged"]
    return (f"(SELECT {', '.join(cols)} FROM {q(profile.table(tier))} "
            "WHERE sample_count > 0 GROUP BY 1, 2, 3)")


def _mean(key: str) -> str:
    return f"{key}_sum / NULLIF({key}_n, 0)"


def device_select(profile: Profile, tier: str, d: Dialect) -> str:
    """``device_metrics_hourly`` (``tier`` 1hour) or ``device_metrics_daily`` (daily)."""
    first = "hour" if tier == "1hour" else "day"
    cols = [f"bucket AS {first}", "device_id", "site_id",
            f"{_mean('cpu')} AS avg_cpu", "max_cpu", f"{_mean('memory')} AS avg_memory",
            "max_memory", f"{_mean('disk')} AS avg_disk", "total_transactions",
            "total_errors", f"{_mean('latency')} AS avg_latency_ms", "checks",
            "flagged - healthy AS unhealthy_checks"]
    if tier == "daily":
        cols.append("100.0 * healthy / NULLIF(flagged, 0) AS uptime_percent")
    return f"SELECT {', '.join(cols)} FROM {per_device(profile, tier, d)} AS dev"


def site_select(profile: Profile, d: Dialect) -> str:
    """``site_metrics_hourly``: every device of a site merged per hour."""
    cols = ["bucket AS hour", "site_id",
            "CAST(COUNT(DISTINCT device_id) AS BIGINT) AS device_count",
            "SUM(cpu_sum) / NULLIF(SUM(cpu_n), 0) AS avg_cpu",
            "SUM(memory_sum) / NULLIF(SUM(memory_n), 0) AS avg_memory",
            "SUM(total_transactions) AS total_transactions",
            "SUM(total_errors) AS total_errors",
            "CAST(COUNT(DISTINCT device_id) FILTER (WHERE flagged > healthy) AS BIGINT) "
            "AS unhealthy_devices"]
    return (f"SELECT {', '.join(cols)} FROM {per_device(profile, '1hour', d)} AS dev "
            "GROUP BY 1, 2")


def view_sql(name: str, profile: Profile, d: Dialect) -> str:
    """The SELECT of one of :data:`VIEWS`."""
    if name == "site_metrics_hourly":
        return site_select(profile, d)
    return device_select(profile, "1hour" if name.endswith("hourly") else "daily", d)
