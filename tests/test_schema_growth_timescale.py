"""Schema on write on TimescaleDB (issue 17, point 1), on PGlite: a continuous aggregate
cannot gain a column, so an inferred profile that grows has its three aggregates made again
and refreshed from the 1 s rows — they hold the new columns and the same rollups as before;
when retention already dropped 1 s chunks, the growth is refused and nothing changes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from sunarchive.model import ConfigError
from sunarchive.profiles.loader import parse_profile
from sunarchive.profiles.spec import Profile
from sunarchive.rollup import ROLLUP_TIERS
from sunarchive.storage.postgres import timescale
from sunarchive.storage.postgres.schema import existing_columns
from sunarchive.storage.postgres.store import PostgresStore
from sunarchive.storage.postgres.user_sql import ReaderRole
from tests.support.pglite_server import drop_schema, fresh_schema

pytestmark = pytest.mark.engine
UTC_ZONE = ZoneInfo("UTC")
START_S = 1_782_036_000                       # 2026-06-21 10:00 UTC
Con = psycopg.Connection[tuple[Any, ...]]


def cpu(tags: list[str], fields: dict[str, str]) -> Profile:
    return parse_profile({"name": "cpu", "tags": tags, "extra": {"inferred": True},
                          "fields": {n: {"kind": "gauge", "type": t} for n, t in fields.items()}},
                         "<test>")


@pytest.fixture
def con(pglite_url: str) -> Iterator[Con]:
    """A schema where ``cpu`` (tag host, field u) was set up by the store, one connection."""
    name = fresh_schema(pglite_url)
    store = PostgresStore(pglite_url, {"cpu": cpu(["host"], {"u": "float"})},
                          reader=ReaderRole(as_owner=True))
    try:
        store.setup()
        assert store.layout == "timescaledb"
    finally:
        store.close()
    with psycopg.connect(pglite_url, autocommit=True) as connection:
        connection.execute("SET TIME ZONE 'UTC'")
        yield connection
    drop_schema(pglite_url, name)


def insert_hour(con: Con) -> None:
    """An hour of host a at 1.0 and 3.0 alternating (rows as the writer would store them)."""
    con.execute("INSERT INTO cpu_1s (time, series_id, host, sample_count, covered_s, u_avg, "
                "u_min, u_max, u_stddev, u_count) SELECT to_timestamp(t), 1, 'a', 1, 1, "
                "1 + 2 * (t %% 2), 1 + 2 * (t %% 2), 1 + 2 * (t %% 2), 0, 1 "
                "FROM generate_series(%s::BIGINT, %s::BIGINT) AS t",
                [START_S, START_S + 3599])


def sums(con: Con, tier: str) -> list[tuple[Any, ...]]:
    return con.execute(f"SELECT EXTRACT(EPOCH FROM time)::BIGINT, u_count, u_avg "
                       f"FROM cpu_{tier} ORDER BY 1").fetchall()


def test_aggregates_are_made_again_with_the_new_columns(con: Con) -> None:
    insert_hour(con)
    timescale.refresh(con, cpu(["host"], {"u": "float"}), START_S, START_S + 3600, UTC_ZONE)
    before = {tier: sums(con, tier) for tier in ROLLUP_TIERS}
    assert before["1hour"] == [(START_S, 3600, 2.0)]
    grown = cpu(["host", "region"], {"u": "float", "s": "int"})
    changes = timescale.grow_layout(con, grown, UTC_ZONE, {})
    assert "added column cpu_1s.region" in changes and "added column cpu_1s.s_avg" in changes
    for tier in ROLLUP_TIERS:
        assert {"region", "s_avg", "s_count"} <= set(existing_columns(con, f"cpu_{tier}"))
        assert sums(con, tier) == before[tier]
    assert timescale.grow_layout(con, grown, UTC_ZONE, {}) == []     # nothing left to do


def test_growth_is_refused_once_retention_dropped_raw_rows(con: Con) -> None:
    insert_hour(con)
    con.execute("INSERT INTO sunarchive_retained VALUES ('cpu_1s', to_timestamp(%s))",
                [START_S])
    grown = cpu(["host"], {"u": "float", "s": "int"})
    with pytest.raises(ConfigError, match="cannot gain tags or fields on TimescaleDB"):
        timescale.grow_layout(con, grown, UTC_ZONE, {})
    assert "s_avg" not in existing_columns(con, "cpu_5min")
