"""Large batches in parallel COPY streams on PostgreSQL and TimescaleDB: every row once, a
replay after a part committed without its batch adds only the missing parts, and a helper
connection killed by the server makes the write fail transiently, then succeed on retry."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from sunarchive.model import SeriesKey, StatsRows, TransientStoreError
from sunarchive.profiles import load_profiles
from sunarchive.storage.postgres import parallel
from sunarchive.storage.postgres.store import PostgresStore
from tests.support.stats_rows import stats_rows

pytestmark = pytest.mark.engine

PS100 = "ps100_readings"
START_S = 1_780_000_000
SERIES = 4
TAGS: dict[int, tuple[str, ...]] = {i: (f"panel_{i}",) for i in range(1, SERIES + 1)}


@pytest.fixture(params=["plain", "timescaledb"])
def store(request: pytest.FixtureRequest) -> Iterator[PostgresStore]:
    url = request.getfixturevalue("pg_url" if request.param == "plain" else "timescale_url")
    opened = PostgresStore(url, {PS100: load_profiles(None)[PS100]}, copy_streams=3)
    opened.setup()
    assert opened.layout == request.param
    for i in TAGS:
        opened.add_series(SeriesKey(PS100, TAGS[i]), i)
    yield opened
    opened.close()


def _count(store: PostgresStore) -> tuple[int, int, float]:
    """Rows, distinct (series, second) pairs, sum of power_avg in the 1 s tier."""
    row = store.sql("SELECT COUNT(*), COUNT(DISTINCT (series_id, time)), "
                    "COALESCE(SUM(power_avg), 0) FROM ps100_readings_1s").rows()[0]
    return int(row[0]), int(row[1]), float(row[2])


def _distinct_rows(seconds: int, start_s: int = START_S) -> StatsRows:
    rows = stats_rows(PS100, start_s, seconds, SERIES)
    rows.columns["power_avg"] = np.arange(len(rows), dtype=np.float64) % 997
    return rows


def test_a_large_batch_is_copied_in_parts_once(store: PostgresStore) -> None:
    rows = _distinct_rows(10_000)
    assert parallel.parts_for(len(rows), store.copy_streams) == 3
    empty = StatsRows.empty(PS100)
    assert store.write(rows, empty, TAGS, batch_id=1)
    expected = (len(rows), len(rows), float(rows.columns["power_avg"].sum()))
    assert _count(store) == expected
    assert len(store._helpers._cons) == 2          # the two other parts had connections
    assert not store.write(rows, empty, TAGS, batch_id=1)   # a replay writes nothing
    assert _count(store) == expected
    assert store.sql("SELECT COUNT(*) FROM sunarchive_batch_parts").rows() == [(0,)]
    assert store.last_time_s(PS100) == START_S + 9_999


def test_a_replay_adds_only_the_parts_not_yet_committed(store: PostgresStore) -> None:
    rows = _distinct_rows(9_000)
    pieces = parallel.split(rows, 3)
    profile = store.profiles[PS100]
    # a writer that stopped after its second part committed, before the batch did
    if store.layout == "plain":
        store.partitions.ensure(store._con, profile, int(rows.time_s.min()),
                                int(rows.time_s.max()))
    store._part_job(store._con, profile, pieces[1], TAGS, 5, 1)()
    assert _count(store)[0] == len(pieces[1])
    assert store.last_batch(PS100) == 0
    assert store.write(rows, StatsRows.empty(PS100), TAGS, batch_id=5)
    assert _count(store) == (len(rows), len(rows), float(rows.columns["power_avg"].sum()))
    assert store.last_batch(PS100) == 5


def test_a_killed_helper_connection_fails_transiently_then_the_retry_writes_once(
        store: PostgresStore) -> None:
    empty = StatsRows.empty(PS100)
    first = _distinct_rows(6_000)
    assert store.write(first, empty, TAGS, batch_id=1)
    helper_pids = [con.info.backend_pid for con in store._helpers._cons]
    assert helper_pids
    store._execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid",
                   [helper_pids])
    second = _distinct_rows(6_000, START_S + 6_000)
    with pytest.raises(TransientStoreError):
        store.write(second, empty, TAGS, batch_id=2)
    assert store.write(second, empty, TAGS, batch_id=2)
    total = float(first.columns["power_avg"].sum() + second.columns["power_avg"].sum())
    assert _count(store) == (len(first) + len(second), len(first) + len(second), total)


def test_a_replay_after_every_part_committed_only_commits_the_batch(
        store: PostgresStore) -> None:
    rows = _distinct_rows(6_000)
    profile = store.profiles[PS100]
    if store.layout == "plain":
        store.partitions.ensure(store._con, profile, int(rows.time_s.min()),
                                int(rows.time_s.max()))
    for index, piece in enumerate(parallel.split(rows, 2)):
        store._part_job(store._con, profile, piece, TAGS, 3, index)()
    assert store.last_batch(PS100) == 0
    assert store.write(rows, StatsRows.empty(PS100), TAGS, batch_id=3)
    assert _count(store) == (len(rows), len(rows), float(rows.columns["power_avg"].sum()))
    assert store.last_batch(PS100) == 3 and store.last_time_s(PS100) == START_S + 5_999
