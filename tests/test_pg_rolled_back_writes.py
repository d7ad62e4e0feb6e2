"""A write the server rolls back — a deadlock with a TimescaleDB job compressing or dropping
the chunk a late merge touches, a serialization failure — is tried again at once, on the
same connection, and stored exactly once; only after every attempt failed does the caller
see a transient error (the agent then spools the batch). Provoked on a real PostgreSQL
server by a trigger that raises ``deadlock_detected`` (SQLSTATE 40P01) the first N times
(a sequence counts: it is not rolled back with the transaction)."""

from __future__ import annotations

import psycopg
import pytest

from sunarchive.model import StatsRows, TransientStoreError
from sunarchive.profiles import load_profiles
from sunarchive.storage.postgres.store import ROLLBACK_ATTEMPTS, PostgresStore
from tests.support.stats_rows import stats_rows

pytestmark = pytest.mark.engine
PS100 = "ps100_readings"
START = 1_780_000_000


def _deadlock_first(url: str, times: int) -> None:
    with psycopg.connect(url, autocommit=True) as con:
        con.execute("CREATE SEQUENCE deadlocks")
        con.execute(f"""CREATE FUNCTION deadlock_once() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF nextval('deadlocks') <= {times} THEN
                RAISE EXCEPTION 'deadlock detected (provoked by the test)'
                  USING ERRCODE = '40P01';
              END IF;
              RETURN NULL;
            END $$""")
        con.execute("CREATE TRIGGER deadlock_once BEFORE INSERT ON ps100_readings_1s "
                    "FOR EACH STATEMENT EXECUTE FUNCTION deadlock_once()")


def _store(url: str) -> PostgresStore:
    profiles = load_profiles()
    store = PostgresStore(url, {PS100: profiles[PS100]}, timezone="UTC")
    store.setup()
    return store


def test_a_rolled_back_write_is_tried_again_and_stored_once(pg_url: str) -> None:
    store = _store(pg_url)
    try:
        _deadlock_first(pg_url, ROLLBACK_ATTEMPTS - 1)
        tags: dict[int, tuple[str, ...]] = {1: ("panel_1",)}
        assert store.write(stats_rows(PS100, START, 10, 1), StatsRows.empty(PS100), tags,
                           batch_id=1)
        rows = store.sql("SELECT COUNT(*), COUNT(DISTINCT time) FROM ps100_readings_1s").rows()
        assert rows == [(10, 10)]
        assert store.last_batch(PS100) == 1
    finally:
        store.close()


def test_rolled_back_every_time_is_a_transient_error_naming_it(pg_url: str) -> None:
    store = _store(pg_url)
    try:
        _deadlock_first(pg_url, ROLLBACK_ATTEMPTS)
        tags: dict[int, tuple[str, ...]] = {1: ("panel_1",)}
        with pytest.raises(TransientStoreError, match=r"rolled back.*deadlock detected"):
            store.write(stats_rows(PS100, START, 10, 1), StatsRows.empty(PS100), tags,
                        batch_id=1)
        # the next try (the agent's, from its spool) stores it once
        assert store.write(stats_rows(PS100, START, 10, 1), StatsRows.empty(PS100), tags,
                           batch_id=1)
        assert store.sql("SELECT COUNT(*) FROM ps100_readings_1s").rows() == [(10,)]
    finally:
        store.close()
