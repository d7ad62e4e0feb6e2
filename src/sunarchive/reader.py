"""Read a store from Python (a notebook, a script): ``sunarchive.open_reader(url)``.

The reader opens the store read-only, the way ``sunarchive query`` does: it never writes, and a
DuckDB file that a running ``sunarchive run`` holds is refused (:class:`StoreLockedError`; read
through that instance's HTTP API instead). Every method returns an Arrow table, or a pandas
frame when the reader was opened with ``output="pandas"``. Times in results are UTC and
timezone-aware; times given may be aware ``datetime`` values or text (ISO 8601 with an offset,
``now``, ``-24h``, ``-7d``); a naive ``datetime`` is refused (:class:`InputError`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import pyarrow as pa

from sunarchive.errors import ConfigError, InputError
from sunarchive.model import require_aware
from sunarchive.profiles.loader import load_profiles
from sunarchive.query import (
    DEFAULT_MAX_POINTS,
    aware_times,
    energy_by_period,
    parse_time,
    run_query,
)
from sunarchive.storage.open import SqlStore, StoreOptions, open_store

Output = Literal["arrow", "pandas"]
When = datetime | str | None


class Reader:
    """A read-only view of one store. Close it (or use ``with``) to let the file go."""

    def __init__(self, store: SqlStore, output: Output = "arrow") -> None:
        if output not in ("arrow", "pandas"):
            raise ConfigError(f"output {output!r} is not one of arrow, pandas")
        self._store = store
        self.output: Output = output

    @property
    def measurements(self) -> list[str]:
        """Names of the measurements the store knows (shipped and stored profiles)."""
        return sorted(self._store.profiles)

    @property
    def timezone(self) -> str:
        """The site's IANA zone: daily rows and :meth:`energy` follow its calendar days."""
        return self._store.tz.key

    def query(self, measurement: str, start: When = None, end: When = None,
              tier: str = "auto", tags: dict[str, str] | None = None,
              fields: Sequence[str] | None = None,
              max_points: int = DEFAULT_MAX_POINTS) -> Any:
        """Statistics rows of ``measurement`` in [start, end) (default: the last 24 hours).
        ``tier`` is ``1s``, ``5min``, ``1hour``, ``daily`` or ``auto`` (the coarsest giving at
        least ``max_points`` buckets); ``fields`` are field or column names."""
        result = run_query(self._store, measurement, tier, _instant(start, "start"),
                           _instant(end, "end"), tags, list(fields) if fields else None,
                           max_points)
        return self._out(result.table)

    def sql(self, text: str) -> Any:
        """One read statement (SELECT, WITH … SELECT, VALUES, TABLE), run where it cannot
        write (``sql_timeout_s`` and ``sql_max_rows`` apply)."""
        return self._out(aware_times(self._store.read_sql(text).table))

    def latest(self, measurement: str) -> Any:
        """The newest stored 1 s row of each series of ``measurement``."""
        if measurement not in self._store.profiles:
            raise InputError(f"unknown measurement {measurement!r}; known: "
                             f"{', '.join(self.measurements)}")
        return self._out(aware_times(self._store.latest_rows(measurement)))

    def energy(self, measurement: str = "ps100_readings", start: When = None,
               end: When = None, period: str = "day") -> Any:
        """kWh per series for each local ``day`` or ``month`` in [start, end) (default: the
        last 30 days): columns ``period``, ``series``, ``kwh``."""
        stop = _instant(end, "end") or datetime.now(UTC)
        begin = _instant(start, "start") or stop - timedelta(days=30)
        rows = energy_by_period(self._store, measurement, begin, stop, period)
        flat = [(r["period"], name, kwh) for r in rows
                for name, kwh in sorted(r["series"].items())]
        return self._out(pa.table({
            "period": pa.array([p for p, _, _ in flat], pa.string()),
            "series": pa.array([s for _, s, _ in flat], pa.string()),
            "kwh": pa.array([k for _, _, k in flat], pa.float64())}))

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _out(self, table: pa.Table) -> Any:
        return table.to_pandas() if self.output == "pandas" else table


def _instant(value: When, what: str) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return None if value is None else require_aware(value, what)
    return parse_time(value, what)


def open_reader(url: str, output: Output = "arrow", timezone: str | None = None,
                profiles_dir: Path | None = None) -> Reader:
    """Open the store at ``url`` (``duckdb:///path``, ``duckdb:////abs/path``, a file path,
    or ``postgresql://user@host/db``) for reading. ``timezone``: the site zone (default:
    the one the store recorded); ``profiles_dir``: your own profile files, as the
    ``profiles_dir`` setting."""
    options = StoreOptions(load_profiles(profiles_dir), timezone=timezone or "UTC",
                           timezone_explicit=timezone is not None)
    return Reader(open_store(url, options, read_only=True), output)
