"""Large writer batches in parallel COPY streams, each part recorded with its rows.

One COPY stream is bound by the server backend that parses it (≈ 250 k rows/s of the 26-column
PS100 row here); a second connection doubles what the server can take when it has the cores.
The writer stays single: it splits a large batch's fresh rows into contiguous parts and copies
them at once, one connection each. Each part commits with a row in ``sunarchive_batch_parts``;
the batch itself (merged rows, the batch id, the newest second, dirty buckets) commits after
all parts on the writer connection. A replay of the batch after a lost connection skips the
parts already committed, so nothing is written twice and nothing is lost.

Readers may see a batch's parts before the batch commits; the batch id, the recorded newest
second (``sunarchive_newest``) and the rollups move only with the batch.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from contextlib import suppress
from typing import Any

import numpy as np
import psycopg

from sunarchive.model import StatsRows

Con = psycopg.Connection[tuple[Any, ...]]
MIN_PART_ROWS = 10_000
"""Parts smaller than this are not worth a connection: a batch is split into at most
``len(fresh) // MIN_PART_ROWS`` parts (live batches of a few hundred rows stay whole)."""


def split(rows: StatsRows, parts: int) -> list[StatsRows]:
    """``rows`` in ``parts`` contiguous, near-equal slices (the same slices on a replay)."""
    bounds = np.linspace(0, len(rows), parts + 1).astype(int)
    return [StatsRows(rows.measurement, rows.time_s[lo:hi], rows.series_id[lo:hi],
                      {k: v[lo:hi] for k, v in rows.columns.items()})
            for lo, hi in itertools.pairwise(int(b) for b in bounds)]


def parts_for(rows: int, streams: int) -> int:
    """How many parts a batch of ``rows`` fresh rows is copied in."""
    return max(1, min(streams, rows // MIN_PART_ROWS))


def committed_parts(con: Con, measurement: str, batch_id: int) -> set[int]:
    rows = con.execute("SELECT part FROM sunarchive_batch_parts WHERE measurement = %s AND "
                       "batch_id = %s", [measurement, batch_id]).fetchall()
    return {int(r[0]) for r in rows}


def forget_parts(con: Con, measurement: str, batch_id: int) -> None:
    """Inside the batch's own transaction: its parts are now covered by the batch id."""
    con.execute("DELETE FROM sunarchive_batch_parts WHERE measurement = %s AND batch_id <= %s",
                [measurement, batch_id])


def copy_part(con: Con, measurement: str, batch_id: int, part: int,
              copy: Callable[[Con], None]) -> None:
    """Copy one part and record it, in one transaction on ``con``."""
    with con.transaction():
        con.execute("INSERT INTO sunarchive_batch_parts VALUES (%s, %s, %s)",
                    [measurement, batch_id, part])
        copy(con)


class HelperConnections:
    """Extra connections for the parts after the first (which goes on the writer's own)."""

    def __init__(self, connect: Callable[[], Con]) -> None:
        self._connect = connect
        self._cons: list[Con] = []

    def get(self, index: int) -> Con:
        while len(self._cons) <= index:
            self._cons.append(self._connect())
        if self._cons[index].closed:
            self._cons[index] = self._connect()
        return self._cons[index]

    def close(self) -> None:
        for con in self._cons:
            with suppress(psycopg.Error):
                con.close()
        self._cons = []


def run_parallel(jobs: list[Callable[[], None]]) -> None:
    """Run ``jobs`` at once: the first on this thread, the others on threads of their own;
    the first error of any is raised after all have ended."""
    errors: list[BaseException] = []

    def guarded(job: Callable[[], None]) -> None:
        try:
            job()
        except BaseException as exc:  # re-raised below, on the writer thread
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(job,), name="sunarchive-copy")
               for job in jobs[1:]]
    for thread in threads:
        thread.start()
    if jobs:
        guarded(jobs[0])
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
