"""Waiting for a store that is not reachable yet: retry with a capped, doubling backoff.

Used at start-up (opening the store, the writer's catch-up reads): a collector started while
its PostgreSQL server restarts waits for it instead of exiting. Only
:class:`~sunarchive.model.TransientStoreError` is retried; a wrong password or a missing
database fails at once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TypeVar

from sunarchive.model import TransientStoreError

log = logging.getLogger(__name__)
T = TypeVar("T")
FIRST_DELAY_S = 0.5
MAX_DELAY_S = 30.0


def until_reachable(call: Callable[[], T], what: str,
                    stop: threading.Event | None = None) -> T:
    """``call()``, retried while it raises :class:`TransientStoreError`; one warning line per
    attempt names ``what`` and the next delay. ``stop`` set during a wait re-raises."""
    delay_s = FIRST_DELAY_S
    while True:
        try:
            return call()
        except TransientStoreError as exc:
            log.warning("%s: %s; retrying in %.1f s", what, exc, delay_s)
            if stop is not None and stop.wait(delay_s):
                raise
            if stop is None:
                threading.Event().wait(delay_s)
            delay_s = min(delay_s * 2, MAX_DELAY_S)
