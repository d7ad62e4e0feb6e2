"""The tiny interface every source implements, and the sink it writes into."""

from __future__ import annotations

import threading
from typing import Protocol

from sunarchive.model import SampleBatch


class SampleSink(Protocol):
    """Where a source puts what it read (the accumulator)."""

    def put(self, batch: SampleBatch) -> None:
        """Accept a batch; may block briefly when the queue is full (see queue policy)."""


class Source(Protocol):
    """A device adapter. ``run`` reads until ``stop`` is set, putting batches into ``sink``."""

    name: str

    def run(self, sink: SampleSink, stop: threading.Event) -> None:
        """Read samples until ``stop`` is set or the source is exhausted."""
