"""SQL names for the exact names of line protocol (schema on write).

Measurements, tag keys and field keys are kept exactly as a client wrote them — any case,
any Unicode (``kWh``, ``°C``, ``m³``, ``Active_Power``, ``com.docker.compose.project``) —
and used as quoted SQL names: the tables of ``kWh`` are ``"kWh_1s"`` ..., the columns of a
field ``Active_Power`` are ``"Active_Power_avg"`` ... Two limits of the engines make a name
unusable as it is, and only then it gets a derived one (lower-case ASCII of the name, an
underscore and 8 hex digits of its SHA-256, e.g. ``cpu_1b4f0e98``), recorded in the profile
so that the exact name stays the key:

* DuckDB compares SQL names case-insensitively even when quoted: ``Cpu`` and ``cpu`` would
  share tables, ``pH`` and ``ph`` columns. The first keeps its name; a later one whose
  tables or columns would clash (letter case aside) gets a derived name.
* PostgreSQL cuts names at 63 bytes: a table prefix longer than ``MAX_PREFIX_BYTES`` (room
  for ``_1hour_materialized``, the longest table name made from it), or a column longer than
  63 bytes, gets a derived name. An index whose name would pass 63 bytes is named after the
  derived name of its table (:func:`index_name`): cut short, it could equal its table's.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from itertools import chain

MAX_NAME_BYTES = 63
"""PostgreSQL's longest name (NAMEDATALEN - 1)."""
LONGEST_TABLE_SUFFIX = "_1hour_materialized"
"""The longest suffix of a table made from a prefix (a 1 s partition's, ``_1s_p202606210000``,
is shorter)."""
MAX_PREFIX_BYTES = MAX_NAME_BYTES - len(LONGEST_TABLE_SUFFIX)
"""A table prefix leaves room for the longest table name made from it. Stores made before
this limit (46 bytes then) keep the names they have."""
TIERS = ("1s", "5min", "1hour", "daily")
DERIVED_BASE_CHARS = 24


def folded(names: Iterable[str]) -> set[str]:
    """Names as DuckDB compares them."""
    return {name.casefold() for name in names}


def derived(name: str, attempt: int = 0) -> str:
    """A lower-case ASCII identifier standing for ``name``: ``m³`` → ``m_0d5f2c3a``."""
    base = re.sub(r"[^a-z0-9_]+", "_", name.lower()).strip("_")[:DERIVED_BASE_CHARS] or "x"
    if base[0].isdigit():
        base = "n_" + base
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:8]
    return f"{base}_{digest}" + (f"_{attempt}" if attempt else "")


def _choose(name: str, usable: Callable[[str], bool]) -> str:
    for candidate in chain([name], (derived(name, i) for i in range(100))):
        if usable(candidate):
            return candidate
    raise ValueError(f"no SQL name found for {name!r}")   # 101 clashes: cannot happen


def table_prefix(measurement: str, taken_tables: set[str]) -> str:
    """The table prefix of a new measurement: its exact name unless a table of it would
    clash with ``taken_tables`` (case-folded) or the name is too long."""
    def usable(prefix: str) -> bool:
        return len(prefix.encode("utf-8")) <= MAX_PREFIX_BYTES and \
            not folded(f"{prefix}_{tier}" for tier in TIERS) & taken_tables
    return _choose(measurement, usable)


def column(name: str, suffixes: list[str], taken: set[str]) -> str:
    """The column stem of a tag (suffix ``""``) or a field (its statistics suffixes,
    ``_avg`` ...): ``name`` unless one of its columns would clash with ``taken`` (case-folded)
    or pass 63 bytes. The columns chosen are added to ``taken``."""
    def usable(stem: str) -> bool:
        columns = [stem + suffix for suffix in suffixes]
        return all(len(c.encode("utf-8")) <= MAX_NAME_BYTES for c in columns) and \
            not folded(columns) & taken
    stem = _choose(name, usable)
    taken.update(folded(stem + suffix for suffix in suffixes))
    return stem


def index_name(table: str, suffix: str) -> str:
    """The name of an index of ``table``: ``<table><suffix>`` when it fits 63 bytes, else
    ``<derived name of the table><suffix>`` (PostgreSQL would cut the long one, maybe to the
    table's own name: "relation already exists")."""
    name = table + suffix
    if len(name.encode("utf-8")) <= MAX_NAME_BYTES:
        return name
    return derived(table) + suffix
