"""sunarchive: a solar and home-energy telemetry historian.

The library API is what :data:`__all__` lists (``tests/test_library_api.py`` pins it; see
``docs/library.md``)::

    import sunarchive
    with sunarchive.open_reader("duckdb:///sunarchive-data/sunarchive.duckdb") as store:
        frame = store.query("ps100_readings", start="-24h").to_pandas()

Everything else is internal and may change between releases. The heavier names load on first
use, so ``import sunarchive`` stays quick and has no side effects.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from sunarchive.errors import (
    ConfigError,
    InputError,
    NotSupportedError,
    QueueFullError,
    SourceError,
    StoreError,
    StoreLockedError,
    StoreTooNewError,
    StoreUnavailableError,
    SunarchiveError,
    UserSqlError,
    WriterStoppedError,
)

if TYPE_CHECKING:
    from sunarchive.profiles.spec import Profile
    from sunarchive.reader import Reader, open_reader
    from sunarchive.settings import Settings, load_settings

try:
    __version__ = version("sunarchive")
except PackageNotFoundError:   # run from a source tree that is not installed
    __version__ = "0+unknown"

__all__ = [
    "ConfigError",
    "InputError",
    "NotSupportedError",
    "Profile",
    "QueueFullError",
    "Reader",
    "Settings",
    "SourceError",
    "StoreError",
    "StoreLockedError",
    "StoreTooNewError",
    "StoreUnavailableError",
    "SunarchiveError",
    "UserSqlError",
    "WriterStoppedError",
    "__version__",
    "load_settings",
    "open_reader",
]

_LAZY = {"open_reader": "sunarchive.reader", "Reader": "sunarchive.reader",
         "load_settings": "sunarchive.settings", "Settings": "sunarchive.settings",
         "Profile": "sunarchive.profiles.spec"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sunarchive' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
