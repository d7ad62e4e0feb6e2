"""The writer's one queue: sample batches from sources (bounded, with an explicit full-queue
policy) and tasks for the writer thread (:mod:`sunarchive.pipeline.tasks`), in order."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Any, Literal

from sunarchive.errors import QueueFullError as QueueFullError  # re-exported: older name place
from sunarchive.errors import WriterStoppedError as WriterStoppedError
from sunarchive.model import SampleBatch
from sunarchive.pipeline.tasks import QueueItem, WriterTask

FullPolicy = Literal["block", "drop_newest"]


@dataclass
class AccumulatorStats:
    """Counters of what went through the queue."""

    batches_in: int = 0
    samples_in: int = 0
    values_in: int = 0
    batches_dropped: int = 0
    samples_dropped: int = 0


class Accumulator:
    """Bounded FIFO of sample batches, bounded by the number of samples queued.

    Policy when full: ``block`` waits up to ``put_timeout_s`` (back-pressure on the source),
    then raises :class:`QueueFullError` so the source can report it; ``drop_newest`` drops the
    incoming batch at once and counts it. Dropped samples were never acknowledged. A single
    batch larger than the whole capacity is accepted when the queue is empty.

    Tasks (:meth:`put_task`) share the queue, so the writer takes batches and tasks in the
    order they were put; a task counts no samples and is never refused for room. Once
    closed, every put is refused and every task put fails at once.
    """

    def __init__(self, max_samples: int = 1_000_000, policy: FullPolicy = "block",
                 put_timeout_s: float = 5.0) -> None:
        self._items: deque[QueueItem] = deque()
        self._woken = False
        self.max_samples = max_samples
        self.policy = policy
        self.put_timeout_s = put_timeout_s
        self.stats = AccumulatorStats()
        self._queued_samples = 0
        lock = threading.RLock()
        self._space = threading.Condition(lock)
        """Room for samples (producers wait on it)."""
        self._ready = threading.Condition(lock)
        """Something queued (the writer waits on it)."""
        self._closed_because: str | None = None

    def close(self, reason: str) -> None:
        """Refuse every later put with :class:`WriterStoppedError` (the writer is gone)."""
        with self._space:
            self._closed_because = reason
            self._space.notify_all()

    def put(self, batch: SampleBatch) -> None:
        """Queue a batch according to the full-queue policy."""
        size = len(batch)
        if size == 0:
            return
        with self._space:
            self._refuse_if_closed(batch)
            if not self._has_room(size) and (
                    self.policy == "drop_newest"
                    or not self._space.wait_for(lambda: self._has_room(size),
                                                self.put_timeout_s)):
                self._drop(batch)
                return
            self._refuse_if_closed(batch)
            self._queued_samples += size
            self.stats.batches_in += 1
            self.stats.samples_in += size
            self.stats.values_in += batch.value_count
            self._enqueue(batch)   # under the lock: never after a close and final drain

    def put_task(self, task: WriterTask[Any]) -> None:
        """Queue a task behind everything queued so far; fail it at once when closed."""
        with self._space:
            if self._closed_because is None:
                self._enqueue(task)
                return
        task.fail(self._closed_because)

    @property
    def closed_because(self) -> str | None:
        """Why puts are refused (None while the writer takes them)."""
        return self._closed_because

    def _refuse_if_closed(self, batch: SampleBatch) -> None:
        if self._closed_because is not None:
            raise WriterStoppedError(f"the writer stopped ({self._closed_because}); "
                                     f"{len(batch)} samples of {batch.measurement} not "
                                     "accepted")

    def _has_room(self, size: int) -> bool:
        if self._closed_because is not None:
            return True   # wake a blocked put; it raises after the wait
        return self._queued_samples == 0 or self._queued_samples + size <= self.max_samples

    def _drop(self, batch: SampleBatch) -> None:
        self.stats.batches_dropped += 1
        self.stats.samples_dropped += len(batch)
        if self.policy == "block":
            raise QueueFullError(f"queue full ({self.max_samples} samples) for "
                                 f"{self.put_timeout_s:g} s; {len(batch)} samples of "
                                 f"{batch.measurement} not accepted")

    def _enqueue(self, item: QueueItem) -> None:
        """Append under the lock and wake the writer."""
        self._items.append(item)
        self._ready.notify()

    def _take(self) -> QueueItem:
        """Pop the head under the lock; a batch gives its room back."""
        item = self._items.popleft()
        if isinstance(item, SampleBatch):
            self._queued_samples -= len(item)
            self._space.notify_all()
        return item

    def get(self, timeout_s: float) -> QueueItem | None:
        """Next batch or task, or None when none arrives within ``timeout_s`` (or
        :meth:`wake` was called)."""
        with self._space:
            self._ready.wait_for(lambda: self._items or self._woken, max(timeout_s, 0.0))
            if self._woken or not self._items:
                self._woken = False
                return None
            return self._take()

    def drain(self) -> list[QueueItem]:
        """Everything queued right now, batches and tasks in order."""
        out: list[QueueItem] = []
        with self._space:
            while self._items:
                out.append(self._take())
        return out

    def wake(self) -> None:
        """Wake a waiting consumer: its :meth:`get` returns None (used at stop)."""
        with self._space:
            self._woken = True
            self._ready.notify()

    @property
    def depth(self) -> int:
        """Batches and tasks waiting."""
        return len(self._items)

    @property
    def queued_samples(self) -> int:
        """Samples waiting."""
        return self._queued_samples
