"""Waiting on state, bounded: poll a check until it holds or a deadline passes."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(check: Callable[[], T | None], what: str, timeout_s: float = 60.0,
               poll_s: float = 0.05) -> T:
    """Call ``check`` every ``poll_s`` seconds until it returns something truthy and return
    that; fail naming ``what`` once ``timeout_s`` seconds have passed."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what} ({timeout_s:g} s)")
        time.sleep(poll_s)
