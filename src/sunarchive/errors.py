"""Every error sunarchive raises on purpose, in one tree.

::

    SunarchiveError                      anything sunarchive refuses or cannot do
    ├── ConfigError                      a setting, profile or URL is wrong (names file and key)
    ├── InputError                       bad data in (names the line number or the field)
    │   └── UserSqlError                 user SQL refused or failed (names the problem)
    ├── SourceError                      a device or source failed (.transient: retried)
    ├── QueueFullError                   the writer's queue stayed full: retry later
    │   └── WriterStoppedError           the writer died: nothing more is accepted
    └── StoreError                       the store cannot do what was asked
        ├── StoreUnavailableError        unreachable for now; retrying later may succeed
        ├── StoreLockedError             another process holds the DuckDB file (also a
        │                                ConfigError: the setup is wrong, not the data)
        ├── StoreTooNewError             made by a newer sunarchive (also a ConfigError)
        └── NotSupportedError            this engine or layout cannot do it

``TransientStoreError`` is the older name of :class:`StoreUnavailableError`; the older import
places (``sunarchive.model``, ``sunarchive.pipeline.accumulator``, ...) still work.

Boundaries map the tree in one place each: the HTTP API in :func:`http_status` (input 400,
unavailable or queue full 503 with ``Retry-After``, not supported 501), the CLI prints one line
and exits 2.
"""

from __future__ import annotations

RETRY_AFTER_S = 5
"""Seconds a 503 answer asks the client to wait before trying again."""


class SunarchiveError(Exception):
    """Base of every error sunarchive raises on purpose."""


class ConfigError(SunarchiveError):
    """A configuration or profile problem; the message names the file and key."""


class InputError(SunarchiveError):
    """Bad input data; the message names the line or field."""


class UserSqlError(InputError):
    """User SQL refused or failed; the message is one line naming the statement problem."""


class SourceError(SunarchiveError):
    """A device problem. ``transient`` errors are retried with backoff; permanent ones stop
    the source (a wrong configuration, a device that is not what the config says)."""

    def __init__(self, message: str, transient: bool = True) -> None:
        super().__init__(message)
        self.transient = transient


class QueueFullError(SunarchiveError):
    """The queue stayed full for the whole put timeout under the ``block`` policy."""


class WriterStoppedError(QueueFullError):
    """The writer died: nothing more is accepted (a write is answered "retry later", never
    acknowledged and then lost)."""


class StoreError(SunarchiveError):
    """The store cannot do what was asked."""


class StoreUnavailableError(StoreError):
    """The store is unreachable for now; retrying later may succeed."""


TransientStoreError = StoreUnavailableError


class StoreLockedError(StoreError, ConfigError):
    """Another process holds the DuckDB file for writing."""


class StoreTooNewError(StoreError, ConfigError):
    """The store was migrated by a newer sunarchive than this one; it is not opened."""


class NotSupportedError(StoreError):
    """This engine or layout cannot do what was asked."""


def http_status(exc: SunarchiveError) -> int:
    """The HTTP status an error answers with: 501 for what this engine cannot do, 503 (with
    ``Retry-After``) for what may pass (store unavailable or locked, queue full), 400 for
    everything else (the request itself is wrong)."""
    if isinstance(exc, NotSupportedError):
        return 501
    if isinstance(exc, StoreError | QueueFullError):
        return 503
    return 400
