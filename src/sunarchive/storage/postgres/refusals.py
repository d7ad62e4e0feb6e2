"""Tell a PostgreSQL server that refused for good from one that will answer again soon."""

from __future__ import annotations

PASSING_REFUSALS = ("starting up", "shutting down", "in recovery mode", "too many clients",
                    "remaining connection slots")
"""Refusals of a server that will take connections again soon."""


def refused_for_good(message: str) -> bool:
    """True when the server answered and refused (wrong password, role or database): waiting
    does not help. Connection refused, timeouts and a server starting up are transient."""
    return "FATAL:" in message and not any(p in message for p in PASSING_REFUSALS)
