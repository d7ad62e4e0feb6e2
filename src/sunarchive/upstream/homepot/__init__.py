"""HOMEPOT's device-health schema on sunarchive (``docs/upstream/homepot.md``): the
``devices`` and ``sites`` registries, the views ``device_metrics_hourly``,
``device_metrics_daily`` and ``site_metrics_hourly`` merged exactly from the rollup tiers of
``health_checks``, and TimescaleDB's ``first``/``last`` aggregates on plain PostgreSQL. The
``health_checks`` relation itself is the profile's plain view
(:mod:`sunarchive.storage.plain_views`), on TimescaleDB a hypertable derived from the 1 s tier
(:mod:`sunarchive.storage.postgres.view_tables`)."""
