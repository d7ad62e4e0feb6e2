"""A failure that ends the writer thread, for the tests of what a dead writer answers."""

from __future__ import annotations


class WriterKilled(BaseException):
    """Stands for any failure that escapes the writer thread (a bug, not a task's error)."""


def kill_the_writer() -> None:
    """A writer task that ends the writer (submit it with ``Agent.submit``)."""
    raise WriterKilled("simulated bug in the writer")
