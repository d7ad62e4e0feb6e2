"""The bounded queue between sources and the writer, with an explicit full-queue policy."""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from typing import Literal

from sunarchive.model import SampleBatch

FullPolicy = Literal["block", "drop_newest"]


class QueueFullError(Exception):
    """The queue stayed full for the whole put timeout under the ``block`` policy."""


@dataclass
class AccumulatorStats:
    """Counters of what went through the queue."""

    batches_in: int = 0
    samples_in: int = 0
    values_in: int = 0
    batches_dropped: int = 0
    samples_dropped: int = 0


class Accumulator:
    """Bounded FIFO of sample batches.

    Policy when full: ``block`` waits up to ``put_timeout_s`` (back-pressure on the source),
    then raises :class:`QueueFullError` so the source can report it; ``drop_newest`` drops the
    incoming batch at once and counts it. Dropped samples were never acknowledged.
    """

    def __init__(self, max_batches: int = 10_000, policy: FullPolicy = "block",
                 put_timeout_s: float = 5.0) -> None:
        self._queue: queue.Queue[SampleBatch | None] = queue.Queue(maxsize=max_batches)
        self.policy = policy
        self.put_timeout_s = put_timeout_s
        self.stats = AccumulatorStats()
        self._lock = threading.Lock()

    def put(self, batch: SampleBatch) -> None:
        """Queue a batch according to the full-queue policy."""
        if len(batch) == 0:
            return
        try:
            if self.policy == "drop_newest":
                self._queue.put_nowait(batch)
            else:
                self._queue.put(batch, timeout=self.put_timeout_s)
        except queue.Full:
            with self._lock:
                self.stats.batches_dropped += 1
                self.stats.samples_dropped += len(batch)
            if self.policy == "block":
                raise QueueFullError(f"queue full ({self._queue.maxsize} batches) for "
                                     f"{self.put_timeout_s:g} s; {len(batch)} samples of "
                                     f"{batch.measurement} not accepted") from None
            return
        with self._lock:
            self.stats.batches_in += 1
            self.stats.samples_in += len(batch)
            self.stats.values_in += batch.value_count

    def get(self, timeout_s: float) -> SampleBatch | None:
        """Next batch, or None when none arrives within ``timeout_s`` (or at the end mark)."""
        try:
            return self._queue.get(timeout=max(timeout_s, 0.0))
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
                out.append(item)

    def wake(self) -> None:
        """Wake a waiting consumer (used at stop)."""
        try:
            self._queue.put_nowait(None)
        except queue.Full:
            pass

    @property
    def depth(self) -> int:
        """Batches waiting."""
        return self._queue.qsize()
