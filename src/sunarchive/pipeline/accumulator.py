"""The bounded queue between sources and the writer, with an explicit full-queue policy."""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from typing import Literal

from sunarchive.errors import QueueFullError as QueueFullError  # re-exported: older name place
from sunarchive.errors import WriterStoppedError as WriterStoppedError
from sunarchive.model import SampleBatch

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
    """

    def __init__(self, max_samples: int = 1_000_000, policy: FullPolicy = "block",
                 put_timeout_s: float = 5.0) -> None:
        self._queue: queue.Queue[SampleBatch | None] = queue.Queue()
        self.max_samples = max_samples
        self.policy = policy
        self.put_timeout_s = put_timeout_s
        self.stats = AccumulatorStats()
        self._queued_samples = 0
        self._space = threading.Condition()
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
        self._queue.put(batch)

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

    def _taken(self, batch: SampleBatch | None) -> SampleBatch | None:
        if batch is not None:
            with self._space:
                self._queued_samples -= len(batch)
                self._space.notify_all()
        return batch

    def get(self, timeout_s: float) -> SampleBatch | None:
        """Next batch, or None when none arrives within ``timeout_s`` (or at the end mark)."""
        try:
            return self._taken(self._queue.get(timeout=max(timeout_s, 0.0)))
        except queue.Empty:
            return None

    def drain(self) -> list[SampleBatch]:
        """Everything queued right now."""
        out: list[SampleBatch] = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return out
            if item is not None:
                self._taken(item)
                out.append(item)

    def wake(self) -> None:
        """Wake a waiting consumer (used at stop)."""
        self._queue.put_nowait(None)

    @property
    def depth(self) -> int:
        """Batches waiting."""
        return self._queue.qsize()

    @property
    def queued_samples(self) -> int:
        """Samples waiting."""
        return self._queued_samples
