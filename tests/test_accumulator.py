"""The bounded queue's full-queue policies."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from sunarchive.model import SampleBatch
from sunarchive.pipeline.accumulator import Accumulator, QueueFullError

pytestmark = pytest.mark.unit


def _batch(n: int) -> SampleBatch:
    return SampleBatch("m", [("a",)], np.zeros(n, np.int32), np.arange(n, dtype=np.int64),
                       {"v": np.ones(n)})


def test_drop_newest_counts_what_it_drops() -> None:
    acc = Accumulator(max_samples=10, policy="drop_newest")
    acc.put(_batch(6))
    acc.put(_batch(6))  # would exceed 10: dropped
    acc.put(_batch(4))
    assert acc.stats.samples_in == 10 and acc.stats.samples_dropped == 6
    assert [len(b) for b in acc.drain() if isinstance(b, SampleBatch)] == [6, 4]


def test_block_waits_for_room_then_reports() -> None:
    acc = Accumulator(max_samples=10, policy="block", put_timeout_s=0.2)
    acc.put(_batch(8))
    with pytest.raises(QueueFullError, match="queue full"):
        acc.put(_batch(8))
    assert acc.stats.samples_dropped == 8
    released = threading.Timer(0.1, lambda: acc.get(1.0))
    released.start()
    acc.put_timeout_s = 5.0
    acc.put(_batch(8))  # succeeds once the consumer took the first batch
    released.join()
    assert acc.queued_samples == 8


def test_oversized_batch_accepted_when_empty() -> None:
    acc = Accumulator(max_samples=10)
    acc.put(_batch(50))
    assert acc.queued_samples == 50
    batch = acc.get(0.1)
    assert isinstance(batch, SampleBatch) and len(batch) == 50
    assert acc.get(0.01) is None
