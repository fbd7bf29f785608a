"""A runnable example: one writer thread fills a store from the bundled SPY bars while a reader reads.

Run with ``python -m sessiondata._demo``. The reader never locks: it waits for new versions with
`SessionData.wait_for_update` and reads one consistent snapshot each time.
"""

from __future__ import annotations

import threading
from datetime import date

from ._sample import SAMPLE_SYMBOL, iter_sample_bars
from .core.store import SessionData


def main() -> int:
    """Replay the bundled SPY sessions into a store and print what a concurrent reader saw."""
    store = SessionData(historical_bars_trailing_days=5)
    bars = list(iter_sample_bars())
    done = threading.Event()

    def writer() -> None:
        current: date | None = None
        for bar in bars:
            day = store.session_clock.session_date(bar.timestamp)
            if day != current:
                store.start_new_session(day)
                current = day
            store.add_bar(SAMPLE_SYMBOL, bar)
        store.end_session()
        done.set()

    reads = 0
    inconsistent = 0
    seen = 0
    t = threading.Thread(target=writer, name="demo-writer")
    t.start()
    while not done.is_set() or store.version > seen:
        version = store.wait_for_update(after_version=seen, timeout=1.0)
        if version is None:
            continue
        seen = version
        snap = store.get_symbol_data(SAMPLE_SYMBOL)
        if snap is None:
            continue
        reads += 1
        if snap.session_volume != sum(b.volume for b in snap.get_last_n_bars(len(snap.bars_1m))):
            inconsistent += 1
    t.join()

    snap = store.get_symbol_data(SAMPLE_SYMBOL)
    assert snap is not None
    print(f"wrote {len(bars)} SPY 1-minute bars over 20 sessions from a writer thread")
    print(f"reader took {reads} snapshots while it wrote; inconsistent snapshots: {inconsistent}")
    m = store.get_session_metrics(SAMPLE_SYMBOL)
    print(
        f"last session {store.current_session_date}: {m['bar_count']} bars, volume {m['session_volume']:,}, "
        f"high {m['session_high']}, low {m['session_low']}, quality {m['bar_quality']:.1f}%"
    )
    for k in store.derived_intervals:
        print(f"  {k}-minute bars: {store.get_bar_count(SAMPLE_SYMBOL, k)}")
    history = store.get_historical_bars(SAMPLE_SYMBOL)
    print(f"trailing sessions kept: {', '.join(str(d) for d in sorted(history))}")
    return 0 if inconsistent == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
