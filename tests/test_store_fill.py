"""An out-of-order fill (the upkeep's, or any batch of older bars) derives each window it changes once,
and the result equals deriving the bars from scratch."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from reference import check_store, derive_from_scratch
from sessiondata import Bar, Provenance, SessionData
from sessiondata.core import windows as aggregation

OPEN = datetime(2025, 3, 10, 9, 30)
M = timedelta(minutes=1)


def bar(m: int) -> Bar:
    price = 10.0 + (m % 7) * 0.25
    return Bar("T", OPEN + m * M, price, price + 1, price - 1, price + 0.5, 100 + m)


# The windows the fill changes: the 09:45 .. 10:10 five-minute windows, the 09:45 and 10:00 fifteen-minute.
CHANGED = [OPEN + m * M for m in range(15, 45, 5)] + [OPEN + 15 * M, OPEN + 30 * M]
# The windows of the bars around the gap, owed to the first settle of a lazy store's log.
OWED = [OPEN + m * M for m in (0, 5, 10, 45, 50, 55)] + [OPEN, OPEN + 45 * M]


@pytest.mark.parametrize("derivation", ["eager", "lazy"])
@pytest.mark.parametrize("provenance", [Provenance.STREAMED, Provenance.GAP_FILLED])
def test_a_30_minute_fill_builds_each_changed_window_once(
    monkeypatch: pytest.MonkeyPatch, provenance: Provenance, derivation: str
) -> None:
    """Eager: the fill builds the 8 windows it changes, each once. Lazy: the writer first settles the log
    from the log itself (a reader's earlier settle is the readers' cache, never the writer's), so the fill
    also builds the 8 windows the log owed; still none twice."""
    store = SessionData(derived_intervals=(5, 15), derivation=derivation)
    gap = range(15, 45)  # 09:45 .. 10:14
    store.add_bars_batch("T", [bar(m) for m in range(60) if m not in gap])
    store.get_bars("T", 5)  # a read (lazy: settles the log for readers)
    built: list[datetime] = []
    aggregate_range = aggregation._aggregate_range

    def counting(symbol: str, start: datetime, *args: Any) -> Bar:
        built.append(start)
        return aggregate_range(symbol, start, *args)

    # The one way to see "built once" without timing: count window bars built (every derived bar is
    # aggregated by this one function).
    monkeypatch.setattr(aggregation, "_aggregate_range", counting)
    stored = store.add_bars_batch("T", [bar(m) for m in gap], provenance=provenance, replace=False)
    assert stored == 30
    assert sorted(built) == sorted(CHANGED if derivation == "eager" else CHANGED + OWED)
    everything = [bar(m) for m in range(60)]
    for k in (5, 15):  # 10:29 completes the last windows: every derived bar is complete
        assert store.get_bars("T", k) == derive_from_scratch(everything, store.session_clock, k)
    check_store(store)
