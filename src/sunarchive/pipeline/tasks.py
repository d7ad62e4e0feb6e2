"""Work other threads hand to the writer thread, the one owner of store writes.

A :class:`WriterTask` (create or grow a measurement, add state labels, ...) travels the
writer's one queue (:class:`~sunarchive.pipeline.accumulator.Accumulator`) among the sample
batches, so it runs in order with them: a task queued before a batch has run when that batch
is ingested (a measurement a task creates exists before the batch that needs it). The caller
gets a :class:`concurrent.futures.Future`: a worker thread waits with :func:`wait`, an async
handler awaits :func:`awaited` without blocking the event loop.

The task's check-then-act runs on the writer thread, so tasks are serialized by the writer
alone: no lock is needed between two callers creating the same measurement. A task's
exception goes to its future; a writer that dies (or stops) fails every task still queued, and
every task queued later, with :class:`~sunarchive.errors.WriterStoppedError` — never a hang.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from contextlib import suppress
from typing import Any, Generic, TypeAlias, TypeVar

from sunarchive.errors import QueueFullError, WriterStoppedError
from sunarchive.model import SampleBatch

T = TypeVar("T")


class WriterTask(Generic[T]):
    """``fn`` to run on the writer thread; ``what`` names it in messages
    (``"creating measurement 'x'"``); ``future`` gets its result or exception."""

    def __init__(self, fn: Callable[[], T], what: str) -> None:
        self.fn = fn
        self.what = what
        self.future: Future[T] = Future()

    def run(self) -> None:
        """Run on the writer thread (unless the caller cancelled it first). An exception goes
        to the future; a ``BaseException`` (not an ``Exception``) also escapes, ending the
        writer, as any failure of the writer's own does."""
        if not self.future.set_running_or_notify_cancel():
            return
        try:
            result = self.fn()
        except Exception as exc:
            self.future.set_exception(exc)
            return
        except BaseException as exc:
            self.future.set_exception(exc)
            raise
        self.future.set_result(result)

    def fail(self, reason: str) -> None:
        """Fail the future: the writer will not run this task (``reason``: why it stopped)."""
        if self.future.done():
            return
        with suppress(InvalidStateError):   # the caller cancelled it meanwhile
            self.future.set_exception(WriterStoppedError(
                f"the writer stopped ({reason}); {self.what} was not done"))


QueueItem: TypeAlias = SampleBatch | WriterTask[Any]
"""What the writer's queue carries."""


def wait(future: Future[T], timeout_s: float, what: str) -> T:
    """The task's result, waiting at most ``timeout_s`` seconds (blocking: call it from a
    worker thread, never on the event loop). The task's own exception is raised here; if
    the writer did not get to the task in time, the task is cancelled when it has not
    started and :class:`~sunarchive.errors.QueueFullError` says to retry later (HTTP 503)."""
    try:
        return future.result(timeout_s)
    except TimeoutError:
        future.cancel()
        raise QueueFullError(f"the writer did not get to {what} within {timeout_s:g} s "
                             "(it is busy); retry later") from None


async def awaited(future: Future[T]) -> T:
    """The task's result, awaited on the event loop without blocking it."""
    return await asyncio.wrap_future(future)
