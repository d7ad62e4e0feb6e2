"""``first(value, time)`` and ``last(value, time)`` on plain PostgreSQL, as TimescaleDB
defines them: the value at the earliest (latest) time of the group; rows whose time is NULL
are skipped, a NULL value at that time is the answer (TimescaleDB does the same).

TimescaleDB's are polymorphic C functions; in SQL a state must hold the value with its
time, so there is one composite state type per value type (:data:`VALUE_TYPES`) and one
overload per time type (:data:`TIME_TYPES`); a time that is a ``TIMESTAMP`` is compared as
UTC. Other value types (``CAST`` to one of these) are not covered. TimescaleDB stores keep
the extension's own; DuckDB has ``first``/``last`` of its own (order-dependent: the
document's blocks that use them are PostgreSQL-only).
"""

from __future__ import annotations

VALUE_TYPES = {"float8": "double precision", "float4": "real", "int8": "bigint",
               "int4": "integer", "int2": "smallint", "numeric": "numeric", "text": "text",
               "bool": "boolean", "jsonb": "jsonb"}
"""Short name (in the state type's name) → value type."""
TIME_TYPES = {"timestamptz": "t", "timestamp": "t AT TIME ZONE 'UTC'", "date": "t::timestamptz",
              "bigint": "to_timestamp(t)", "integer": "to_timestamp(t)"}
"""Time type → SQL of it as ``timestamptz`` (epoch seconds for the integers)."""
STATE_PREFIX = "sunarchive_pick_"


def _state_type(short: str, value: str) -> list[str]:
    name = STATE_PREFIX + short
    return [f"""DO $$ BEGIN
        CREATE TYPE {name} AS (v {value}, t timestamptz);
        EXCEPTION WHEN duplicate_object THEN NULL; END $$"""]


def _step(kind: str, short: str, value: str, time: str, as_tz: str) -> str:
    """State function: keep the new row when its time is earlier (first) or not earlier
    (last) than the kept one's."""
    state = STATE_PREFIX + short
    cmp = "<" if kind == "first" else ">="
    return f"""CREATE OR REPLACE FUNCTION sunarchive_{kind}_step(s {state}, v {value},
        t {time}) RETURNS {state} LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT CASE WHEN t IS NULL THEN s
                    WHEN s IS NULL OR ({as_tz}) {cmp} s.t THEN ROW(v, {as_tz})::{state}
                    ELSE s END $$"""


def _final(short: str, value: str) -> str:
    state = STATE_PREFIX + short
    return f"""CREATE OR REPLACE FUNCTION sunarchive_pick_value(s {state}) RETURNS {value}
        LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT s.v $$"""


def _aggregate(kind: str, short: str, value: str, time: str) -> str:
    return f"""CREATE OR REPLACE AGGREGATE {kind}({value}, {time}) (
        SFUNC = sunarchive_{kind}_step, STYPE = {STATE_PREFIX}{short},
        FINALFUNC = sunarchive_pick_value)"""


def statements() -> list[str]:
    """Every statement, idempotent (``CREATE OR REPLACE``; the types once)."""
    out: list[str] = []
    for short, value in VALUE_TYPES.items():
        out += _state_type(short, value)
        out.append(_final(short, value))
        for time, as_tz in TIME_TYPES.items():
            for kind in ("first", "last"):
                out.append(_step(kind, short, value, time, as_tz))
                out.append(_aggregate(kind, short, value, time))
    return out
