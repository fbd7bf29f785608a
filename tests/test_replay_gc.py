"""A replay keeps CPython's cyclic garbage collector nearly idle.

Every bar in flight between the coordinator's worker and its consumer keeps a few tracked objects alive
(the store's new snapshot and what it holds, until the consumer installs it). When the worker runs far
ahead, each of its turns allocates thousands of them before the consumer frees any, so the collector's
young generation (2000 tracked objects by default) fills again and again, and the in-flight objects it
finds alive are promoted and scanned again by older, costlier collections. The default run-ahead is kept
short enough that a turn stays under the young generation's threshold.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from sessiondata import BacktestStreamCoordinator, Bar, SessionData, StreamType

SYMBOLS = 80
MINUTES = 390


def _bars(k: int) -> list[Bar]:
    start = datetime(2024, 3, 4, 9, 30)
    return [
        Bar(f"S{k:03d}", start + timedelta(minutes=m), 10.0, 10.5, 9.5, 10.0, 100) for m in range(MINUTES)
    ]


@pytest.fixture
def collections_counted() -> Iterator[list[int]]:
    """Counts the cyclic collections started (any generation) while the test runs, with CPython's
    default thresholds pinned (as a user who never tuned them has) and the switch interval too."""
    count = [0]

    def callback(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            count[0] += 1

    thresholds = gc.get_threshold()
    interval = sys.getswitchinterval()
    gc.set_threshold(2000, 10, 10)
    sys.setswitchinterval(0.005)
    gc.collect()
    gc.callbacks.append(callback)
    try:
        yield count
    finally:
        gc.callbacks.remove(callback)
        gc.set_threshold(*thresholds)
        sys.setswitchinterval(interval)


def test_a_default_replay_leaves_the_cyclic_collector_nearly_idle(collections_counted: list[int]) -> None:
    """80 symbols x 390 bars through a default coordinator: a handful of collections at most (with a
    4096-item run-ahead, the previous default, ~30 here: one every ~1000 bars)."""
    streams = {k: _bars(k) for k in range(SYMBOLS)}
    coord = BacktestStreamCoordinator(SessionData())
    for k, bars in streams.items():
        coord.register_stream(f"S{k:03d}", StreamType.BAR, bars)
    collections_counted[0] = 0
    count = sum(1 for _ in coord.merged_stream())
    assert count == SYMBOLS * MINUTES
    assert collections_counted[0] <= 5, collections_counted[0]
