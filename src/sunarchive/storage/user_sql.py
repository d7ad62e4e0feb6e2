"""User SQL (``sunarchive sql``, ``POST /api/v1/sql``): the limits it runs under and the
one-line errors it gives, shared by both engines.

Reads cannot write: each engine runs user SQL where it cannot change the store, read files,
reach the network or change settings (:mod:`sunarchive.storage.duckdb.user_sql`,
:mod:`sunarchive.storage.postgres.user_sql`). The program's own queries do not come here.
"""

from __future__ import annotations

from dataclasses import dataclass

from sunarchive.errors import UserSqlError as UserSqlError  # older import place

READ_KINDS = "SELECT, VALUES, TABLE or WITH … SELECT"


@dataclass(frozen=True)
class SqlLimits:
    """How long one user statement may run (s) and how many rows it may return."""

    timeout_s: float = 30.0
    max_rows: int = 100_000

    @property
    def timeout_ms(self) -> int:
        return max(1, round(self.timeout_s * 1000))


def check_text(text: str) -> None:
    """Refuse what no engine should be handed: no statement, a NUL character, text that is
    not Unicode (a lone surrogate from a JSON escape)."""
    if "\0" in text:
        raise UserSqlError("SQL refused: the statement contains a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise UserSqlError(f"SQL refused: the statement is not valid Unicode at character "
                           f"{exc.start + 1}") from None
    if not text.strip():
        raise UserSqlError("SQL refused: the statement is empty")


def first_line(exc: BaseException) -> str:
    """The first line of an engine's error message (no SQL echo, no caret lines)."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def failed(exc: BaseException) -> UserSqlError:
    return UserSqlError(f"SQL failed: {first_line(exc)}")


def not_one_read(found: str) -> UserSqlError:
    return UserSqlError(f"SQL refused: exactly one read statement ({READ_KINDS}) is allowed; "
                        f"got {found}")


def timed_out(limits: SqlLimits) -> UserSqlError:
    return UserSqlError(f"SQL cancelled: it ran longer than sql_timeout_s "
                        f"({limits.timeout_s:g} s)")


def too_many_rows(limits: SqlLimits) -> UserSqlError:
    return UserSqlError(f"SQL refused: the result has more than sql_max_rows "
                        f"({limits.max_rows}) rows; narrow it with WHERE, LIMIT or an "
                        "aggregate")
