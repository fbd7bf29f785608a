"""`SessionData` against the contract (``shared/CONTRACT.md``), one rule at a time.

Each test states the rule it proves. Expected values are computed here from the rule (a plain aggregation,
a plain count), never read back from the store, and ``check_store(store)`` runs after the interesting
steps so the store's own consistency is checked too.
"""

from __future__ import annotations

import threading
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from reference import check_store
from sessiondata import (
    Bar,
    InvalidDataError,
    Provenance,
    Quote,
    RegularHoursCalendar,
    SessionData,
    SymbolSessionData,
    Tick,
    get_session_data,
    reset_session_data,
)

D = date(2025, 1, 2)
NY = ZoneInfo("America/New_York")
UTC = timezone.utc


def at(i: int, day: date = D, second: int = 0) -> datetime:
    """Naive exchange-local timestamp ``i`` minutes after 09:30 of ``day``."""
    return datetime.combine(day, time(9, 30)) + timedelta(minutes=i, seconds=second)


def mk(
    i: int = 0,
    price: float = 100.0,
    vol: float = 10,
    *,
    sym: str = "AAPL",
    day: date = D,
    second: int = 0,
    high: float | None = None,
    low: float | None = None,
    ts: datetime | None = None,
) -> Bar:
    """A bar with open ``price``, close ``price + 0.5`` and a range around both."""
    h = price + 1 if high is None else high
    lo = price - 1 if low is None else low
    return Bar(sym, at(i, day, second) if ts is None else ts, price, h, lo, price + 0.5, vol)


def agg(bars: list[Bar], ts: datetime) -> Bar:
    """The contract's aggregation: open of the first, max high, min low, close of the last, summed volume."""
    return Bar(
        bars[0].symbol,
        ts,
        bars[0].open,
        max(b.high for b in bars),
        min(b.low for b in bars),
        bars[-1].close,
        sum(b.volume for b in bars),
    )


def tick(i: int, price: float = 100.0, size: float = 1, sym: str = "AAPL", second: int = 0) -> Tick:
    return Tick(sym, at(i, second=second), price, size)


def quote(i: int, bid: float = 100.0, sym: str = "AAPL", second: int = 0) -> Quote:
    return Quote(sym, at(i, second=second), bid, bid + 0.01, 1, 2)


def state(store: SessionData) -> dict[Any, Any]:
    """Everything a reader can see, for comparing the store before and after a failed write."""
    out: dict[Any, Any] = {
        "symbols": sorted(store.get_active_symbols()),
        "ended": store.session_ended,
        "date": store.current_session_date,
        "version": store.version,
    }
    for sym in out["symbols"]:
        bars = store.get_bars(sym)
        out[sym] = {
            "metrics": store.get_session_metrics(sym),
            "ticks": store.get_ticks(sym),
            "quotes": store.get_quotes(sym),
            "bars": {k: store.get_bars(sym, k) for k in (1, *store.derived_intervals)},
            "forming": {k: store.get_forming_bar(sym, k) for k in store.derived_intervals},
            "provenance": [store.get_provenance(sym, b.timestamp) for b in bars],
            "history": {k: store.get_historical_bars(sym, k) for k in store.historical_bars_types},
        }
    return out


def check_metrics(store: SessionData, sym: str = "AAPL") -> None:
    """The metrics equal what the stored 1-minute bars imply."""
    bars = store.get_bars(sym)
    m = store.get_session_metrics(sym)
    assert m["symbol"] == sym
    assert m["bar_count"] == len(bars) == store.get_bar_count(sym)
    assert m["session_volume"] == sum(b.volume for b in bars)
    assert m["session_high"] == (max(b.high for b in bars) if bars else None)
    assert m["session_low"] == (min(b.low for b in bars) if bars else None)
    assert m["last_update"] == (max(b.timestamp for b in bars) if bars else None)
    check_store(store)


# ------------------------------------------------------------------------------ configuration


def test_configuration_defaults_and_state_attributes() -> None:
    s = SessionData()
    assert s.start_time == time(9, 30)
    assert s.end_time == time(16, 0)
    assert str(s.timezone) == "America/New_York"
    assert tuple(s.derived_intervals) == (5, 15)
    assert s.historical_bars_trailing_days == 0
    assert tuple(s.historical_bars_types) == (1,)
    assert s.session_ended is False
    assert s.current_session_date is None


def test_configuration_keywords_readable() -> None:
    s = SessionData(
        start_time=time(10, 0),
        end_time=time(15, 0),
        timezone="Europe/London",
        derived_intervals=(3, 30),
        historical_bars_trailing_days=4,
        historical_bars_types=(1, 30),
    )
    assert (s.start_time, s.end_time, str(s.timezone)) == (time(10, 0), time(15, 0), "Europe/London")
    assert tuple(s.derived_intervals) == (3, 30)
    assert s.historical_bars_trailing_days == 4
    assert tuple(s.historical_bars_types) == (1, 30)


def test_historical_bars_types_must_be_one_or_configured() -> None:
    with pytest.raises(ValueError):
        SessionData(derived_intervals=(5,), historical_bars_types=(1, 15))


@pytest.mark.parametrize(
    ("config", "named"),
    [
        ({"derived_intervals": (5, 15, 5)}, "derived_intervals"),
        ({"derived_intervals": (5,), "historical_bars_types": (1, 5, 5)}, "historical_bars_types"),
    ],
)
def test_an_interval_listed_twice_is_refused(config: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError, match=f"{named} has duplicates"):
        SessionData(**config)


# ------------------------------------------------------------------------------ unknown symbols


def test_unknown_symbol_reads_are_empty_not_errors(store: SessionData) -> None:
    store.add_bar("MSFT", mk(0, sym="MSFT"))
    for interval in (1, 5, 15):
        assert store.get_latest_bar("ZZZ", interval) is None
        assert store.get_last_n_bars("ZZZ", 5, interval) == []
        assert store.get_bars_since("ZZZ", at(0), interval) == []
        assert store.get_bars("ZZZ", interval) == []
        assert store.get_bars("ZZZ", interval, at(0), at(10)) == []
        assert store.get_bar_count("ZZZ", interval) == 0
        assert store.get_latest_bars_multi(["ZZZ"], interval) == {"ZZZ": None}
    assert store.get_symbol_data("ZZZ") is None
    assert store.get_session_metrics("ZZZ") == {}
    assert store.get_forming_bar("ZZZ", 5) is None
    assert store.get_active_symbols() == {"MSFT"}, "a read must not register a symbol"


@pytest.mark.parametrize("sym", [None, 42, b"MSFT", 1.5], ids=repr)
def test_non_str_symbols_read_as_unknown_everywhere(store: SessionData, sym: Any) -> None:
    store.add_bar("MSFT", mk(0, sym="MSFT"))
    for interval in (1, 5):
        assert store.get_latest_bar(sym, interval) is None
        assert store.get_last_n_bars(sym, 5, interval) == []
        assert store.get_bars_since(sym, at(0), interval) == []
        assert store.get_bars(sym, interval) == []
        assert store.get_bar_count(sym, interval) == 0
        assert store.get_latest_bars_multi(["msft", sym], interval) == {
            "MSFT": store.get_latest_bar("MSFT", interval),
            sym: None,
        }
    assert store.get_symbol_data(sym) is None
    assert store.get_session_metrics(sym) == {}
    assert store.get_forming_bar(sym, 5) is None


BAD_INTERVALS: list[Any] = [0, -5, 2, 7, 10, 60, 5.0, "5", None]


def _interval_reads(store: SessionData, sym: str, interval: Any) -> list[Any]:
    return [
        lambda: store.get_latest_bar(sym, interval),
        lambda: store.get_last_n_bars(sym, 3, interval),
        lambda: store.get_bars_since(sym, at(0), interval),
        lambda: store.get_bars(sym, interval),
        lambda: store.get_bar_count(sym, interval),
        lambda: store.get_latest_bars_multi([sym], interval),
        lambda: store.get_forming_bar(sym, interval),
    ]


@pytest.mark.parametrize("interval", BAD_INTERVALS, ids=repr)
@pytest.mark.parametrize("sym", ["AAPL", "ZZZ"])
def test_invalid_interval_is_value_error_even_for_unknown_symbols(
    store: SessionData, sym: str, interval: Any
) -> None:
    store.add_bars_batch("AAPL", [mk(i) for i in range(6)])
    for read in _interval_reads(store, sym, interval):
        with pytest.raises(ValueError):
            read()


@pytest.mark.parametrize("interval", [7, 0, 3])
def test_snapshot_reads_reject_invalid_interval(store: SessionData, interval: int) -> None:
    store.add_bar("AAPL", mk(0))
    snap = store.get_symbol_data("AAPL")
    assert snap is not None
    for read in (
        lambda: snap.get_latest_bar(interval),
        lambda: snap.get_last_n_bars(2, interval),
        lambda: snap.get_bars_since(at(0), interval),
        lambda: snap.get_bar_count(interval),
    ):
        with pytest.raises(ValueError):
            read()


def test_forming_bar_of_interval_one_is_rejected_for_known_and_unknown_symbols(store: SessionData) -> None:
    # interval=1 has no forming bar; the interval check comes first, so the symbol must not matter.
    store.add_bar("AAPL", mk(0))
    with pytest.raises(ValueError):
        store.get_forming_bar("AAPL", 1)
    with pytest.raises(ValueError):
        store.get_forming_bar("ZZZ", 1)


# ------------------------------------------------------------------------------ symbols


def test_register_symbol_is_idempotent_and_upper_cases(store: SessionData) -> None:
    first = store.register_symbol("aapl")
    again = store.register_symbol(" AAPL ")
    assert isinstance(first, SymbolSessionData)
    assert first.symbol == again.symbol == "AAPL"
    assert store.get_active_symbols() == {"AAPL"}
    store.add_bar("aapl", mk(0))
    store.register_symbol("Aapl")
    assert store.get_bar_count("aapl") == 1, "re-registering must not clear data"
    assert store.get_latest_bar("AaPl") == mk(0)
    assert store.get_latest_bars_multi(["aapl", "msft"]) == {"AAPL": mk(0), "MSFT": None}
    check_store(store)


@pytest.mark.parametrize("bad", ["", "   "])
def test_register_symbol_rejects_empty(store: SessionData, bad: str) -> None:
    with pytest.raises(ValueError):
        store.register_symbol(bad)
    assert store.get_active_symbols() == set()


def test_get_active_symbols_returns_a_copy(store: SessionData) -> None:
    store.register_symbol("AAPL")
    got = store.get_active_symbols()
    assert isinstance(got, set)
    got.add("EVIL")
    got.discard("AAPL")
    assert store.get_active_symbols() == {"AAPL"}


def test_add_bar_auto_registers(store: SessionData) -> None:
    store.add_bar("msft", mk(0, sym="MSFT"))
    assert store.get_active_symbols() == {"MSFT"}


# ------------------------------------------------------------------------------ ordering and reads


def test_sequences_are_oldest_to_newest_and_half_open(store: SessionData) -> None:
    bars = [mk(i, 100 + i) for i in range(20)]
    store.add_bars_batch("AAPL", bars)
    assert store.get_bars("AAPL") == bars
    assert store.get_bars("AAPL", 1, at(3), at(7)) == bars[3:7]
    assert store.get_bars("AAPL", start=at(3)) == bars[3:]
    assert store.get_bars("AAPL", end=at(3)) == bars[:3]
    assert store.get_bars("AAPL", 1, at(7), at(3)) == []
    assert store.get_bars("AAPL", 1, at(3, second=30), at(4, second=30)) == [bars[4]]
    assert store.get_bars_since("AAPL", at(17)) == bars[17:]
    assert store.get_bars_since("AAPL", at(17, second=1)) == bars[18:]
    assert store.get_last_n_bars("AAPL", 3) == bars[-3:]
    assert store.get_last_n_bars("AAPL", 0) == []
    assert store.get_last_n_bars("AAPL", -2) == []
    assert store.get_last_n_bars("AAPL", 100) == bars
    assert store.get_latest_bar("AAPL") == bars[-1]


def test_returned_sequences_never_change(store: SessionData) -> None:
    store.add_bars_batch("AAPL", [mk(i) for i in range(10)])
    store.add_ticks_batch("AAPL", [tick(i) for i in range(3)])
    snap = store.get_symbol_data("AAPL")
    assert snap is not None
    reads: list[tuple[Any, list[Any]]] = []
    for got in (
        store.get_bars("AAPL"),
        store.get_bars("AAPL", 5),
        store.get_last_n_bars("AAPL", 4),
        store.get_bars_since("AAPL", at(5)),
        store.get_ticks("AAPL"),
        list(snap.bars_1m),
    ):
        reads.append((got, list(got)))
    snap_bars = list(snap.bars_1m)
    snap_volume = snap.session_volume

    # Every kind of later write: append, out of order, replacement, ticks, end, new session, clear.
    store.add_bar("AAPL", mk(10))
    store.add_bar("AAPL", mk(3, 150, high=200))
    store.add_bar("AAPL", mk(30))
    store.add_tick("AAPL", tick(0))
    store.end_session()
    store.start_new_session(date(2025, 1, 3))
    store.clear_all()

    for got, copy in reads:
        assert list(got) == copy
    assert list(snap.bars_1m) == snap_bars
    assert snap.session_volume == snap_volume
    assert snap.get_bar_count() == 10


def test_mutating_a_returned_list_does_not_change_the_store(store: SessionData) -> None:
    bars = [mk(i) for i in range(5)]
    store.add_bars_batch("AAPL", bars)
    got = store.get_bars("AAPL")
    if isinstance(got, list):
        got.clear()
    last = store.get_last_n_bars("AAPL", 2)
    if isinstance(last, list):
        last.append(mk(99))
    assert store.get_bars("AAPL") == bars
    assert store.get_last_n_bars("AAPL", 2) == bars[-2:]


def test_out_of_order_bar_goes_to_its_place(store: SessionData) -> None:
    store.add_bar("AAPL", mk(0, 100))
    store.add_bar("AAPL", mk(2, 102))
    store.add_bar("AAPL", mk(1, 101))
    assert [b.timestamp for b in store.get_bars("AAPL")] == [at(0), at(1), at(2)]
    assert store.get_latest_bar("AAPL") == mk(2, 102)
    assert store.get_last_n_bars("AAPL", 2) == [mk(1, 101), mk(2, 102)]
    assert store.get_session_metrics("AAPL")["last_update"] == at(2)
    store.add_bar("AAPL", mk(-10, 90))  # before everything
    assert store.get_bars("AAPL")[0] == mk(-10, 90)
    check_metrics(store)


def test_replacement_keeps_metrics_exact(store: SessionData) -> None:
    store.add_bars_batch("AAPL", [mk(0, 100, 10), mk(1, 101, 20), mk(2, 102, 30)])
    store.add_bar("AAPL", mk(1, 101, 25))
    assert store.get_bar_count("AAPL") == 3
    assert store.get_bars("AAPL")[1].volume == 25
    assert store.get_session_metrics("AAPL")["session_volume"] == 65, "volume must not be double counted"
    # The same bar again (a duplicate delivery) changes nothing.
    store.add_bar("AAPL", mk(1, 101, 25))
    assert store.get_session_metrics("AAPL")["session_volume"] == 65
    check_metrics(store)


def test_replacement_recomputes_high_and_low_when_the_replaced_bar_held_the_extreme(
    store: SessionData,
) -> None:
    store.add_bars_batch(
        "AAPL",
        [mk(0, 100), mk(1, 100, high=150, low=50), mk(2, 100), mk(3, 100)],
    )
    m = store.get_session_metrics("AAPL")
    assert (m["session_high"], m["session_low"]) == (150, 50)
    store.add_bar("AAPL", mk(1, 100))  # the spike was bad data: corrected
    m = store.get_session_metrics("AAPL")
    assert (m["session_high"], m["session_low"]) == (101, 99)
    check_metrics(store)
    # Replacing the last bar (the in-order position) with a smaller one also recomputes.
    store.add_bar("AAPL", mk(4, 100, high=120, low=80))
    store.add_bar("AAPL", mk(4, 100))
    m = store.get_session_metrics("AAPL")
    assert (m["session_high"], m["session_low"]) == (101, 99)
    check_metrics(store)
    # Replacing a bar that did not hold an extreme with a new extreme raises it.
    store.add_bar("AAPL", mk(2, 100, high=130, low=70))
    m = store.get_session_metrics("AAPL")
    assert (m["session_high"], m["session_low"]) == (130, 70)
    check_metrics(store)


def test_fractional_volumes_arriving_out_of_order_stay_consistent(store: SessionData) -> None:
    # 0.1 + 0.2 + 0.3 depends on the order of the additions in floating point; the store's metric and its
    # own invariant checker must agree whatever order the bars arrive in.
    store.add_bar("AAPL", mk(1, vol=0.2))
    store.add_bar("AAPL", mk(2, vol=0.3))
    store.add_bar("AAPL", mk(0, vol=0.1))
    assert store.get_session_metrics("AAPL")["session_volume"] == pytest.approx(0.6)
    check_store(store)


# ------------------------------------------------------------------------------ derived bars


def test_window_completes_when_its_last_minute_arrives(store: SessionData) -> None:
    bars = [mk(i, 100 + i, 10 + i) for i in range(5)]
    for b in bars[:4]:
        store.add_bar("AAPL", b)
        assert store.get_bars("AAPL", 5) == [], "an incomplete window is not a derived bar"
    assert store.get_forming_bar("AAPL", 5) == agg(bars[:4], at(0))
    store.add_bar("AAPL", bars[4])
    assert store.get_bars("AAPL", 5) == [agg(bars, at(0))]
    assert store.get_latest_bar("AAPL", 5) == agg(bars, at(0))
    assert store.get_bar_count("AAPL", 5) == 1
    assert store.get_forming_bar("AAPL", 5) is None
    assert store.get_bars("AAPL", 15) == []
    assert store.get_forming_bar("AAPL", 15) == agg(bars, at(0))
    check_store(store)


def test_window_completes_when_a_later_bar_arrives(store: SessionData) -> None:
    store.add_bar("AAPL", mk(0, 100))
    store.add_bar("AAPL", mk(1, 101))
    store.add_bar("AAPL", mk(7, 107))  # window 09:35 begins; 09:30 is over even with minutes missing
    assert store.get_bars("AAPL", 5) == [agg([mk(0, 100), mk(1, 101)], at(0))]
    assert store.get_forming_bar("AAPL", 5) == agg([mk(7, 107)], at(5))
    store.add_bar("AAPL", mk(16, 116))  # skips the 09:40 window entirely
    assert [b.timestamp for b in store.get_bars("AAPL", 5)] == [at(0), at(5)]
    assert store.get_bars("AAPL", 15) == [agg([mk(0, 100), mk(1, 101), mk(7, 107)], at(0))]
    check_store(store)


def test_end_session_completes_forming_windows(store: SessionData) -> None:
    bars = [mk(i, 100 + i) for i in range(7)]
    store.add_bars_batch("AAPL", bars)
    assert store.get_bars("AAPL", 5) == [agg(bars[:5], at(0))]
    store.end_session()
    assert store.session_ended is True
    assert store.get_bars("AAPL", 5) == [agg(bars[:5], at(0)), agg(bars[5:], at(5))]
    assert store.get_bars("AAPL", 15) == [agg(bars, at(0))]
    assert store.get_forming_bar("AAPL", 5) is None
    assert store.get_forming_bar("AAPL", 15) is None
    check_store(store)


def test_windows_aligned_to_start_time_not_to_first_bar(store: SessionData) -> None:
    bars = [mk(i, 100 + i) for i in range(3, 12)]  # 09:33 .. 09:41
    store.add_bars_batch("AAPL", bars)
    assert store.get_bars("AAPL", 5) == [agg(bars[:2], at(0)), agg(bars[2:7], at(5))]
    assert store.get_forming_bar("AAPL", 5) == agg(bars[7:], at(10))
    assert store.get_forming_bar("AAPL", 15) == agg(bars, at(0))


def test_windows_aligned_to_a_custom_start_time() -> None:
    s = SessionData(start_time=time(9, 32), end_time=time(10, 0), derived_intervals=(5,))
    bars = [mk(i, 100 + i) for i in range(9)]  # 09:30 .. 09:38
    s.add_bars_batch("AAPL", bars)
    # 09:30 and 09:31 are before the session: stored, not derived; windows start at 09:32, 09:37.
    assert s.get_bar_count("AAPL") == 9
    assert s.get_bars("AAPL", 5) == [agg(bars[2:7], at(2))]
    assert s.get_forming_bar("AAPL", 5) == agg(bars[7:], at(7))
    check_store(s)


def test_late_bar_re_derives_its_completed_window(store: SessionData) -> None:
    store.add_bars_batch("AAPL", [mk(0, 100), mk(2, 102), mk(3, 103), mk(4, 104), mk(5, 105)])
    assert store.get_bars("AAPL", 5) == [agg([mk(0, 100), mk(2, 102), mk(3, 103), mk(4, 104)], at(0))]
    store.add_bar("AAPL", mk(1, 90, 99, low=50))  # the missing minute arrives late, with a new low
    window = [mk(0, 100), mk(1, 90, 99, low=50), mk(2, 102), mk(3, 103), mk(4, 104)]
    assert store.get_bars("AAPL", 5) == [agg(window, at(0))]
    assert store.get_bar_count("AAPL", 5) == 1
    check_store(store)


def test_corrected_bar_re_derives_its_window(store: SessionData) -> None:
    bars = [mk(i, 100 + i, 10) for i in range(10)]
    store.add_bars_batch("AAPL", bars)
    fixed = mk(7, 107, 500, high=300)
    store.add_bar("AAPL", fixed)
    second = [*bars[5:7], fixed, *bars[8:10]]
    assert store.get_bars("AAPL", 5) == [agg(bars[:5], at(0)), agg(second, at(5))]
    assert store.get_forming_bar("AAPL", 15) == agg([*bars[:7], fixed, *bars[8:]], at(0))
    # Correcting a bar in the forming window updates the forming bar.
    store.add_bar("AAPL", mk(11, 111))
    store.add_bar("AAPL", mk(10, 110, 1))
    store.add_bar("AAPL", mk(10, 110, 7))
    assert store.get_forming_bar("AAPL", 5) == agg([mk(10, 110, 7), mk(11, 111)], at(10))
    check_store(store)


def test_bars_outside_the_session_are_stored_but_not_derived(store: SessionData) -> None:
    pre = [mk(-3, 90), mk(-1, 91)]  # 09:27, 09:29
    regular = [mk(i, 100 + i) for i in range(5)]
    post = [Bar("AAPL", datetime(2025, 1, 2, 16, 0), 120, 121, 119, 120.5, 5)]
    store.add_bars_batch("AAPL", pre + regular + post)
    assert store.get_bar_count("AAPL") == 8
    assert store.get_bars("AAPL") == pre + regular + post
    assert store.get_bars("AAPL", 5) == [agg(regular, at(0))]
    assert store.get_bars("AAPL", 15) == [agg(regular, at(0))]  # 16:00 bar completed it, not joined it
    assert store.get_session_metrics("AAPL")["bar_count"] == 8
    check_metrics(store)


def test_window_is_complete_when_a_later_bar_was_stored_before_it(store: SessionData) -> None:
    # "A window completes when ... a later bar arrives": the later bar (here after the close) may arrive
    # before the window's own late bars; the window is still over, so it is a completed derived bar.
    post = Bar("AAPL", datetime(2025, 1, 2, 16, 5), 100, 101, 99, 100, 1)
    late = Bar("AAPL", datetime(2025, 1, 2, 15, 57), 100, 101, 99, 100, 2)
    store.add_bar("AAPL", post)
    store.add_bar("AAPL", late)
    assert store.get_bars("AAPL", 5) == [agg([late], datetime(2025, 1, 2, 15, 55))]
    assert store.get_forming_bar("AAPL", 5) is None
    check_store(store)


def test_window_crossing_end_time_ends_there() -> None:
    s = SessionData(derived_intervals=(7,))
    late = [
        Bar("AAPL", datetime(2025, 1, 2, 15, 48) + timedelta(minutes=i), 100, 101, 99, 100, 1)
        for i in range(12)
    ]
    s.add_bars_batch("AAPL", late[:12])  # 15:48 .. 15:59
    # 390 session minutes = 55 windows of 7 and one of 5: the last window is 15:55 - 16:00.
    got = s.get_bars("AAPL", 7)
    assert got == [agg(late[:7], datetime(2025, 1, 2, 15, 48)), agg(late[7:], datetime(2025, 1, 2, 15, 55))]
    assert s.get_forming_bar("AAPL", 7) is None, "15:59 is the last minute of the 15:55 window"
    s.add_bar("AAPL", Bar("AAPL", datetime(2025, 1, 2, 16, 0), 100, 101, 99, 100, 1))
    assert s.get_bars("AAPL", 7) == got
    first = [Bar("AAPL", at(i, date(2025, 1, 3)), 100, 101, 99, 100, 1) for i in range(8)]
    s.add_bars_batch("AAPL", first)
    assert s.get_bars("AAPL", 7)[-1] == agg(first[:7], at(0, date(2025, 1, 3)))
    check_store(s)


def test_get_forming_bar_tracks_the_partial_window(store: SessionData) -> None:
    assert store.get_forming_bar("AAPL", 5) is None
    store.add_bar("AAPL", mk(0, 100))
    assert store.get_forming_bar("AAPL", 5) == agg([mk(0, 100)], at(0))
    store.add_bar("AAPL", mk(1, 105, high=140))
    assert store.get_forming_bar("AAPL", 5) == agg([mk(0, 100), mk(1, 105, high=140)], at(0))
    assert store.get_bars("AAPL", 5) == []


# ------------------------------------------------------------------------------ bar quality


def quality(store: SessionData, sym: str = "AAPL") -> float:
    return float(store.get_session_metrics(sym)["bar_quality"])


def test_bar_quality_zero_without_a_regular_session_bar(store: SessionData) -> None:
    store.register_symbol("AAPL")
    assert quality(store) == 0.0
    store.add_bar("AAPL", mk(-5))  # 09:25, pre-market
    assert quality(store) == 0.0
    check_store(store)


def test_bar_quality_definition(store: SessionData) -> None:
    store.add_bar("AAPL", mk(0))
    assert quality(store) == 100.0
    store.add_bar("AAPL", mk(2))  # 09:30, 09:32 of 09:30 - 09:32
    assert quality(store) == pytest.approx(200 / 3)
    store.add_bar("AAPL", mk(9))  # 3 of 10 minutes
    assert quality(store) == pytest.approx(30.0)
    store.add_bar("AAPL", mk(1))  # late arrival fills a gap: 4 of 10
    assert quality(store) == pytest.approx(40.0)
    store.add_bar("AAPL", mk(1, 120))  # a correction adds no minute
    assert quality(store) == pytest.approx(40.0)
    store.add_bar("AAPL", mk(400))  # after the close: not in the regular session, no change
    assert quality(store) == pytest.approx(40.0)
    check_store(store)


def test_bar_quality_counts_from_start_time_even_if_first_bar_is_late(store: SessionData) -> None:
    store.add_bar("AAPL", mk(4))
    assert quality(store) == pytest.approx(20.0)  # 1 of 09:30 - 09:34


def test_bar_quality_seconds_within_a_minute_count_once(store: SessionData) -> None:
    store.add_bar("AAPL", mk(0))
    store.add_bar("AAPL", mk(0, second=30))
    store.add_bar("AAPL", mk(1, second=15))
    assert store.get_bar_count("AAPL") == 3
    assert quality(store) == 100.0
    store.add_bar("AAPL", mk(3, second=59))
    assert quality(store) == pytest.approx(75.0)  # minutes 0, 1, 3 of 0 - 3
    store.add_bar("AAPL", mk(2, second=10))
    store.add_bar("AAPL", mk(2, second=40))
    assert quality(store) == 100.0
    check_store(store)


@pytest.mark.parametrize(
    ("day", "utc_open"),
    [
        (date(2024, 3, 8), time(14, 30)),  # EST
        (date(2024, 3, 11), time(13, 30)),  # EDT, first weekday after the change
        (date(2024, 3, 10), time(13, 30)),  # the change day itself (a Sunday: a calendar with weekends)
        (date(2024, 11, 4), time(14, 30)),  # EST again, first weekday after the change back
    ],
)
def test_dst_days_still_open_at_0930_local_with_aware_timestamps(
    store: SessionData, day: date, utc_open: time
) -> None:
    if day.weekday() >= 5:
        store = SessionData(calendar=RegularHoursCalendar(weekends=True))
    open_utc = datetime.combine(day, utc_open, tzinfo=UTC)
    assert open_utc.astimezone(NY).time() == time(9, 30)
    bars = [mk(ts=open_utc + timedelta(minutes=i), price=100 + i) for i in range(-2, 6)]
    store.add_bars_batch("AAPL", bars)
    assert quality(store) == 100.0, "09:30 local is minute 0; the two earlier bars are pre-market"
    assert store.get_bars("AAPL", 5) == [agg(bars[2:7], open_utc)]
    assert store.get_forming_bar("AAPL", 5) == agg(bars[7:], open_utc + timedelta(minutes=5))
    check_store(store)


def test_aware_timestamps_in_the_exchange_zone(store: SessionData) -> None:
    bars = [mk(ts=datetime(2024, 7, 1, 9, 30, tzinfo=NY) + timedelta(minutes=i)) for i in range(5)]
    store.add_bars_batch("AAPL", bars)
    assert store.get_bars("AAPL", 5) == [agg(bars, bars[0].timestamp)]
    assert quality(store) == 100.0


def test_bar_quality_uses_the_newest_session_date(store: SessionData) -> None:
    store.add_bars_batch("AAPL", [mk(i) for i in range(10)])
    store.add_bars_batch("AAPL", [mk(0, day=date(2025, 1, 3)), mk(3, day=date(2025, 1, 3))])
    assert quality(store) == pytest.approx(50.0)
    store.add_bar("AAPL", mk(20))  # a late bar for the older date does not count for the newer one
    assert quality(store) == pytest.approx(50.0)
    check_store(store)


def test_naive_and_aware_never_mix_in_one_symbol(store: SessionData) -> None:
    store.add_bar("AAPL", mk(0))
    before = state(store)
    aware = datetime(2025, 1, 2, 14, 31, tzinfo=UTC)
    with pytest.raises(InvalidDataError):
        store.add_bar("AAPL", mk(ts=aware))
    with pytest.raises(InvalidDataError):
        store.add_tick("AAPL", Tick("AAPL", aware, 100, 1))
    with pytest.raises(InvalidDataError):
        store.add_quote("AAPL", Quote("AAPL", aware, 100, 101, 1, 1))
    assert state(store) == before
    # Another symbol may be aware; then it may not take naive data.
    store.add_bar("MSFT", mk(sym="MSFT", ts=aware))
    with pytest.raises(InvalidDataError):
        store.add_quote("MSFT", Quote("MSFT", at(2), 100, 101, 1, 1))
    check_store(store)


def test_first_tick_fixes_timezone_style_for_bars_too(store: SessionData) -> None:
    store.add_tick("AAPL", Tick("AAPL", datetime(2025, 1, 2, 14, 30, tzinfo=UTC), 100, 1))
    with pytest.raises(InvalidDataError):
        store.add_bar("AAPL", mk(0))
    assert store.get_bar_count("AAPL") == 0


# ------------------------------------------------------------------------------ ticks and quotes


def test_ticks_in_time_order_equal_timestamps_in_arrival_order(store: SessionData) -> None:
    t2, t1a, t1b, t3, t1c = tick(2, 102), tick(1, 101), tick(1, 111), tick(3, 103), tick(1, 121)
    store.add_tick("AAPL", t2)
    store.add_tick("AAPL", t1a)
    store.add_tick("AAPL", t1b)
    store.add_ticks_batch("AAPL", [t3, t1c])
    assert store.get_ticks("AAPL") == [t1a, t1b, t1c, t2, t3]
    assert store.get_ticks("AAPL", at(1), at(2)) == [t1a, t1b, t1c]
    assert store.get_ticks("AAPL", start=at(2)) == [t2, t3]
    assert store.get_latest_tick("AAPL") == t3
    assert store.get_bar_count("AAPL") == 0
    metrics = store.get_session_metrics("AAPL")
    assert metrics["session_volume"] == 0
    assert metrics["bar_count"] == 0
    check_store(store)


def test_quotes_in_time_order_equal_timestamps_in_arrival_order(store: SessionData) -> None:
    q2, q1a, q1b, q0 = quote(2, 102), quote(1, 101), quote(1, 111), quote(0, 100)
    store.add_quotes_batch("AAPL", [q2, q1a])
    store.add_quote("AAPL", q1b)
    store.add_quote("AAPL", q0)
    assert store.get_quotes("AAPL") == [q0, q1a, q1b, q2]
    assert store.get_latest_quote("AAPL") == q2
    crossed = Quote("AAPL", at(5), 101, 100, 0, 0)
    store.add_quote("AAPL", crossed)
    assert store.get_latest_quote("AAPL") == crossed
    check_store(store)


def test_unknown_symbol_tick_and_quote_reads(store: SessionData) -> None:
    assert store.get_ticks("ZZZ") == []
    assert store.get_quotes("ZZZ") == []
    assert store.get_latest_tick("ZZZ") is None
    assert store.get_latest_quote("ZZZ") is None


# ------------------------------------------------------------------------------ failed writes


def test_bar_for_another_symbol_is_rejected_without_change(store: SessionData) -> None:
    store.add_bars_batch("AAPL", [mk(i) for i in range(3)])
    before = state(store)
    with pytest.raises(InvalidDataError):
        store.add_bar("AAPL", mk(5, sym="MSFT"))
    with pytest.raises(InvalidDataError):
        store.add_bar("MSFT", mk(5))
    assert state(store) == before
    assert store.get_active_symbols() == {"AAPL"}, "a failed write must not register its symbol"


@pytest.mark.parametrize(
    "write",
    [
        lambda s: s.add_bar("AAPL", tick(5)),
        lambda s: s.add_bar("AAPL", None),
        lambda s: s.add_tick("AAPL", mk(5)),
        lambda s: s.add_quote("AAPL", tick(5)),
        lambda s: s.add_tick("AAPL", tick(5, sym="MSFT")),
        lambda s: s.add_quote("AAPL", quote(5, sym="MSFT")),
        lambda s: s.add_bar("", mk(5)),
    ],
)
def test_wrong_record_type_or_symbol_is_invalid_data(store: SessionData, write: Any) -> None:
    store.add_bars_batch("AAPL", [mk(i) for i in range(3)])
    store.add_tick("AAPL", tick(0))
    before = state(store)
    with pytest.raises(InvalidDataError):
        write(store)
    assert state(store) == before


def _naive_aware_mix(sym: str, n: int) -> list[Bar]:
    bars = [mk(10 + i, sym=sym) for i in range(n)]
    bars.append(mk(sym=sym, ts=datetime(2025, 1, 2, 15, 0, tzinfo=UTC)))
    return bars


@pytest.mark.parametrize(
    "write",
    [
        # Bad item last: everything before it would have been valid on its own.
        lambda s: s.add_bars_batch("AAPL", [mk(10), mk(11), mk(12, sym="MSFT")]),
        lambda s: s.add_bars_batch("AAPL", [mk(10), mk(1, 500, high=900), "not a bar"]),
        lambda s: s.add_bars_batch("AAPL", _naive_aware_mix("AAPL", 600)),  # fails past a chunk boundary
        lambda s: s.add_bars_batch("NEW", _naive_aware_mix("NEW", 3)),
        lambda s: s.add_ticks_batch("AAPL", [tick(5), tick(6), quote(7)]),
        lambda s: s.add_ticks_batch(
            "AAPL", [tick(5), Tick("AAPL", datetime(2025, 1, 2, 15, tzinfo=UTC), 1, 1)]
        ),
        lambda s: s.add_quotes_batch("AAPL", [quote(5), quote(6, sym="MSFT")]),
        lambda s: s.add_quotes_batch(
            "AAPL", [quote(5), Quote("AAPL", datetime(2025, 1, 2, tzinfo=UTC), 1, 1, 1, 1)]
        ),
    ],
)
def test_failed_batch_leaves_the_store_exactly_as_it_was(store: SessionData, write: Any) -> None:
    store.add_bars_batch("AAPL", [mk(i, 100 + i) for i in range(7)])  # a forming 5m window too
    store.add_ticks_batch("AAPL", [tick(0), tick(1)])
    store.add_quote("AAPL", quote(0))
    store.add_bar("AAPL", mk(3, 103, 99))  # a correction, for provenance
    before = state(store)
    snap = store.get_symbol_data("AAPL")
    with pytest.raises(InvalidDataError):
        write(store)
    assert state(store) == before
    assert store.get_symbol_data("AAPL") is snap
    check_store(store)
    # And the store still works normally afterwards (no half-applied state left behind).
    store.add_bars_batch("AAPL", [mk(i, 100 + i) for i in range(7, 12)])
    check_metrics(store)


def test_batches_equal_single_adds(store: SessionData) -> None:
    bars = [mk(i, 100 + i, i) for i in (3, 0, 1, 9, 2, 1, 20, 7)]
    other = SessionData()
    store.add_bars_batch("AAPL", bars)
    for b in bars:
        other.add_bar("AAPL", b)
    assert state(store)["AAPL"]["bars"] == state(other)["AAPL"]["bars"]
    assert state(store)["AAPL"]["forming"] == state(other)["AAPL"]["forming"]
    for key in ("session_volume", "session_high", "session_low", "last_update", "bar_quality", "bar_count"):
        assert store.get_session_metrics("AAPL")[key] == other.get_session_metrics("AAPL")[key]
    store.add_bars_batch("AAPL", [])  # an empty batch is a no-op
    assert store.get_bar_count("AAPL") == 7
    check_store(store)


# ------------------------------------------------------------------------------ provenance


def test_provenance_is_kept_beside_the_bar(store: SessionData) -> None:
    streamed, filled = mk(0, 100), mk(1, 101)
    store.add_bar("AAPL", streamed)
    store.add_bar("AAPL", filled, provenance=Provenance.GAP_FILLED)
    store.add_bars_batch("AAPL", [mk(2), mk(3)], provenance=Provenance.GAP_FILLED)
    assert store.get_provenance("AAPL", at(0)) is Provenance.STREAMED
    assert store.get_provenance("AAPL", at(1)) is Provenance.GAP_FILLED
    assert store.get_provenance("AAPL", at(3)) is Provenance.GAP_FILLED
    assert store.get_provenance("AAPL", at(9)) is None
    assert store.get_provenance("ZZZ", at(0)) is None
    # A gap-filled bar equals the same bar streamed: provenance is not inside Bar.
    other = SessionData()
    other.add_bar("AAPL", filled)
    assert store.get_bars("AAPL")[1] == other.get_latest_bar("AAPL")
    # A streamed bar replacing a stored one is a correction.
    store.add_bar("AAPL", mk(0, 99))
    assert store.get_provenance("AAPL", at(0)) is Provenance.CORRECTION
    store.add_bar("AAPL", mk(1, 99), provenance=Provenance.CORRECTION)
    assert store.get_provenance("AAPL", at(1)) is Provenance.CORRECTION
    # A new session forgets provenance with the bars.
    store.start_new_session(date(2025, 1, 3))
    store.add_bar("AAPL", mk(0, 100))
    assert store.get_provenance("AAPL", at(0)) is Provenance.STREAMED


# ------------------------------------------------------------------------------ lifecycle


def test_start_new_session_clears_data_keeps_symbols_and_config() -> None:
    s = SessionData(derived_intervals=(5,))
    s.add_bars_batch("AAPL", [mk(i) for i in range(7)])
    s.add_tick("AAPL", tick(0))
    s.add_quote("AAPL", quote(0))
    s.register_symbol("MSFT")
    s.start_new_session(date(2025, 1, 3))
    assert s.get_active_symbols() == {"AAPL", "MSFT"}
    assert s.current_session_date == date(2025, 1, 3)
    assert s.session_ended is False
    assert tuple(s.derived_intervals) == (5,)
    assert s.get_bars("AAPL") == []
    assert s.get_bars("AAPL", 5) == []
    assert s.get_forming_bar("AAPL", 5) is None
    assert s.get_ticks("AAPL") == []
    assert s.get_quotes("AAPL") == []
    m = s.get_session_metrics("AAPL")
    assert m["bar_count"] == 0
    assert m["session_volume"] == 0
    assert m["session_high"] is None
    assert m["session_low"] is None
    assert m["last_update"] is None
    assert m["bar_quality"] == 0.0
    assert s.get_historical_bars("AAPL") == {}, "no history kept with trailing days 0"
    check_store(s)


def test_start_new_session_rejects_a_non_date(store: SessionData) -> None:
    with pytest.raises(ValueError):
        store.start_new_session("2025-01-03")  # type: ignore[arg-type]
    assert store.current_session_date is None


def test_writes_after_end_session_are_late_data(store: SessionData) -> None:
    store.add_bars_batch("AAPL", [mk(i) for i in range(3)])
    store.end_session()
    store.add_bar("AAPL", mk(1, 120, 99))
    store.add_bar("AAPL", mk(3))
    assert store.session_ended is True
    assert store.get_bar_count("AAPL") == 4
    assert store.get_bars("AAPL", 5)[0] == agg([mk(0), mk(1, 120, 99), mk(2), mk(3)], at(0))
    check_metrics(store)


def _session(s: SessionData, day: date, n: int, price: float) -> list[Bar]:
    bars = [mk(i, price + i, day=day) for i in range(n)]
    s.add_bars_batch("AAPL", bars)
    return bars


def test_historical_rollover_keeps_newest_trailing_days() -> None:
    s = SessionData(historical_bars_trailing_days=2, historical_bars_types=(1, 5))
    d1, d2, d3, d4 = (date(2025, 1, k) for k in (6, 7, 8, 9))
    s.start_new_session(d1)
    b1 = _session(s, d1, 7, 100)
    s.end_session()
    s.start_new_session(d2)
    assert s.get_historical_bars("AAPL") == {d1: tuple(b1)}
    assert s.get_historical_bars("AAPL", 5) == {d1: (agg(b1[:5], at(0, d1)), agg(b1[5:], at(5, d1)))}
    b2 = _session(s, d2, 3, 200)
    s.end_session()
    s.start_new_session(d3)
    b3 = _session(s, d3, 12, 300)
    s.start_new_session(d4)  # without end_session: the running session is ended first
    hist = s.get_historical_bars("AAPL")
    assert hist == {d2: tuple(b2), d3: tuple(b3)}, "only the newest 2 sessions are kept"
    assert s.get_historical_bars("AAPL", 5)[d3] == (
        agg(b3[:5], at(0, d3)),
        agg(b3[5:10], at(5, d3)),
        agg(b3[10:], at(10, d3)),  # the forming window, completed by the implicit end_session
    )
    snap = s.get_symbol_data("AAPL")
    assert snap is not None
    assert set(snap.historical_bars[1]) == {d2, d3}
    assert tuple(snap.historical_bars[1][d3]) == tuple(b3)
    assert s.get_bars("AAPL") == []
    with pytest.raises(ValueError):
        s.get_historical_bars("AAPL", 7)
    check_store(s)


def test_history_is_keyed_by_the_ended_sessions_current_session_date() -> None:
    s = SessionData(historical_bars_trailing_days=3)
    s.start_new_session(date(2025, 1, 10))
    bars = _session(s, date(2025, 1, 2), 3, 100)  # the store does not police dates
    s.start_new_session(date(2025, 1, 13))
    assert s.get_historical_bars("AAPL") == {date(2025, 1, 10): tuple(bars)}


def test_history_survives_sessions_without_bars_for_the_symbol() -> None:
    s = SessionData(historical_bars_trailing_days=3)
    s.start_new_session(date(2025, 1, 6))
    b = _session(s, date(2025, 1, 6), 2, 100)
    s.start_new_session(date(2025, 1, 7))
    s.start_new_session(date(2025, 1, 8))
    assert s.get_historical_bars("AAPL")[date(2025, 1, 6)] == tuple(b)
    s.clear_all()
    assert s.get_historical_bars("AAPL") == {}


def test_clear_all_forgets_everything(store: SessionData) -> None:
    store.start_new_session(D)
    store.add_bars_batch("AAPL", [mk(i) for i in range(7)])
    store.add_tick("MSFT", tick(0, sym="MSFT"))
    store.end_session()
    store.clear_all()
    assert store.get_active_symbols() == set()
    assert store.get_symbol_data("AAPL") is None
    assert store.get_bars("AAPL") == []
    assert store.get_bars("AAPL", 5) == []
    assert store.get_session_metrics("AAPL") == {}
    assert store.get_ticks("MSFT") == []
    store.add_bar("AAPL", mk(0))
    assert store.get_bar_count("AAPL") == 1
    check_metrics(store)


# ------------------------------------------------------------------------------ snapshots


def test_snapshot_fields_and_reads(store: SessionData) -> None:
    bars = [mk(i, 100 + i, 10) for i in range(7)]
    store.add_bars_batch("AAPL", bars)
    store.add_tick("AAPL", tick(1))
    store.add_quote("AAPL", quote(1))
    snap = store.get_symbol_data("aapl")
    assert snap is not None
    assert snap.symbol == "AAPL"
    assert list(snap.bars_1m) == bars
    assert set(snap.bars_derived) == {5, 15}
    assert list(snap.bars_derived[5]) == [agg(bars[:5], at(0))]
    assert list(snap.ticks) == [tick(1)]
    assert list(snap.quotes) == [quote(1)]
    assert snap.session_volume == 70
    assert snap.session_high == max(b.high for b in bars)
    assert snap.session_low == min(b.low for b in bars)
    assert snap.last_update == at(6)
    assert snap.bar_quality == 100.0
    assert dict(snap.historical_bars) == {}
    assert snap.get_latest_bar() == bars[-1]
    assert snap.get_latest_bar(5) == agg(bars[:5], at(0))
    assert snap.get_last_n_bars(2) == bars[-2:]
    assert snap.get_bars_since(at(5)) == bars[5:]
    assert snap.get_bar_count() == 7
    assert snap.get_bar_count(5) == 1
    assert snap.get_bar_count(15) == 0
    with pytest.raises(AttributeError):
        snap.session_volume = 0  # type: ignore[misc]
    assert snap.session_volume == 70


def test_get_session_metrics_keys(store: SessionData) -> None:
    store.add_bar("AAPL", mk(0))
    m = store.get_session_metrics("AAPL")
    assert {
        "symbol",
        "session_volume",
        "session_high",
        "session_low",
        "last_update",
        "bar_quality",
        "bar_count",
    } <= set(m)
    m["session_volume"] = -1
    assert store.get_session_metrics("AAPL")["session_volume"] == 10


# ------------------------------------------------------------------------------ versions


def _snap(store: SessionData, sym: str = "AAPL") -> SymbolSessionData:
    snap = store.get_symbol_data(sym)
    assert snap is not None
    return snap


def test_only_the_changed_series_version_moves(store: SessionData) -> None:
    store.add_bar("AAPL", mk(0))
    store.add_bar("MSFT", mk(0, sym="MSFT"))
    a0, m0 = _snap(store), _snap(store, "MSFT")
    store.add_bar("AAPL", mk(1))
    a1 = _snap(store)
    assert a1.bars_version > a0.bars_version
    assert (a1.ticks_version, a1.quotes_version) == (a0.ticks_version, a0.quotes_version)
    assert a1.version > a0.version
    store.add_tick("AAPL", tick(0))
    a2 = _snap(store)
    assert a2.ticks_version > a1.ticks_version
    assert (a2.bars_version, a2.quotes_version) == (a1.bars_version, a1.quotes_version)
    store.add_quotes_batch("AAPL", [quote(0), quote(1)])
    a3 = _snap(store)
    assert a3.quotes_version > a2.quotes_version
    assert (a3.bars_version, a3.ticks_version) == (a2.bars_version, a2.ticks_version)
    m1 = _snap(store, "MSFT")
    assert (m1.bars_version, m1.ticks_version, m1.quotes_version) == (
        m0.bars_version,
        m0.ticks_version,
        m0.quotes_version,
    ), "another symbol's versions must not move"
    v = store.version
    with pytest.raises(InvalidDataError):
        store.add_bar("AAPL", mk(3, sym="MSFT"))
    assert store.version == v, "a failed write moves no version"
    assert _snap(store).version == a3.version, "a failed write moves no version"


def test_symbol_version_never_goes_back(store: SessionData) -> None:
    store.add_bar("AAPL", mk(0))
    store.add_tick("AAPL", tick(0))
    store.add_quote("AAPL", quote(0))
    seen = _snap(store).version
    store.start_new_session(date(2025, 1, 3))
    assert _snap(store).version > seen
    seen = _snap(store).version
    store.clear_all()
    store.add_bar("AAPL", mk(0))
    assert _snap(store).version > seen, "after clear_all a waiter must still see the symbol as newer"
    seen = _snap(store).version
    store.end_session()
    store.add_bar("AAPL", mk(1))
    assert _snap(store).version > seen


def test_wait_for_update_returns_at_once_when_already_newer(store: SessionData) -> None:
    store.add_bar("AAPL", mk(0))
    v = _snap(store).version
    assert store.wait_for_update("AAPL", after_version=v - 1, timeout=0) == v
    got = store.wait_for_update(None, after_version=0, timeout=0)
    assert got is not None
    assert got >= v


def test_wait_for_update_times_out_with_none(store: SessionData) -> None:
    store.add_bar("AAPL", mk(0))
    v = _snap(store).version
    assert store.wait_for_update("AAPL", after_version=v, timeout=0.01) is None
    assert store.wait_for_update("NOPE", after_version=0, timeout=0.01) is None
    assert store.wait_for_update(None, after_version=store.version, timeout=0.01) is None


@pytest.mark.parametrize("symbol", ["AAPL", "NEWSYM", None])
def test_wait_for_update_wakes_when_another_thread_writes(store: SessionData, symbol: str | None) -> None:
    store.add_bar("AAPL", mk(0))
    seen = store.version if symbol is None else (0 if symbol == "NEWSYM" else _snap(store).version)
    result: list[int | None] = []
    waiting = threading.Event()

    def waiter() -> None:
        waiting.set()
        result.append(store.wait_for_update(symbol, after_version=seen, timeout=30))

    t = threading.Thread(target=waiter)
    t.start()
    assert waiting.wait(timeout=30)
    target = symbol or "AAPL"
    store.add_bar(target, mk(1, sym=target))
    t.join(timeout=30)
    assert not t.is_alive(), "the waiter did not wake up"
    assert result
    assert result[0] is not None
    assert result[0] > seen
    if symbol is not None:
        assert result[0] <= _snap(store, target).version


def test_wait_for_update_wakes_after_clear_all_and_rewrite(store: SessionData) -> None:
    store.add_bar("AAPL", mk(0))
    store.add_tick("AAPL", tick(0))
    seen = _snap(store).version
    store.clear_all()
    store.add_bar("AAPL", mk(0))
    assert store.wait_for_update("AAPL", after_version=seen, timeout=0.01) is not None


# ------------------------------------------------------------------------------ singleton


def test_get_session_data_is_a_singleton_until_reset() -> None:
    a = get_session_data()
    assert a is get_session_data()
    a.add_bar("AAPL", mk(0))
    reset_session_data()
    b = get_session_data()
    assert b is not a
    assert b.get_active_symbols() == set()
    assert a.get_bar_count("AAPL") == 1, "an old reference keeps working"


def test_historical_bars_read_like_lists_and_a_datetime_names_its_date() -> None:
    store = SessionData(historical_bars_trailing_days=1)
    store.start_new_session(datetime(2025, 1, 2, 8, 0))  # a timestamp is taken for its date
    assert store.current_session_date == date(2025, 1, 2)
    bars = [
        Bar("AAPL", datetime(2025, 1, 2, 9, 30) + timedelta(minutes=i), 10, 11, 9, 10, 1) for i in range(3)
    ]
    store.add_bars_batch("AAPL", bars)
    store.start_new_session(date(2025, 1, 3))
    kept = store.get_symbol_data("AAPL").historical_bars[1][date(2025, 1, 2)]
    assert kept == bars  # an immutable Series, equal to the list of its bars
    assert list(kept) == bars
    assert store.get_historical_bars("AAPL")[date(2025, 1, 2)][-1] == bars[-1]
    with pytest.raises(InvalidDataError):
        store.start_new_session("2025-01-04")  # type: ignore[arg-type]


def test_bad_query_arguments_get_clear_errors_and_change_nothing() -> None:
    s = SessionData()
    for i in range(3):
        s.add_bar("AAPL", mk(i))
    before = s.get_symbol_data("AAPL")
    aware = datetime(2025, 1, 2, 14, 30, tzinfo=timezone.utc)
    with pytest.raises(ValueError, match=r"start=.* is timezone-aware, but AAPL's bars are naive"):
        s.get_bars("AAPL", start=aware)
    with pytest.raises(ValueError, match=r"end=.* is timezone-aware"):
        s.get_bars("AAPL", end=aware)
    with pytest.raises(ValueError, match=r"timestamp=.* is timezone-aware"):
        s.get_bars_since("AAPL", aware)
    with pytest.raises(TypeError, match=r"start must be a datetime or None, got '2025'"):
        s.get_bars("AAPL", start="2025")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"timestamp must be a datetime, got None"):
        s.get_bars_since("AAPL", None)  # type: ignore[arg-type]
    for n in (2.5, "2", None):
        with pytest.raises(TypeError, match=r"n must be an int"):
            s.get_last_n_bars("AAPL", n)  # type: ignore[arg-type]
    assert s.get_last_n_bars("AAPL", True) == [mk(2)]  # an int subclass is a count
    assert s.get_symbol_data("AAPL") is before
    # Unknown symbols answer as before, whatever the bounds.
    assert s.get_bars("ZZZ", start=aware) == []


def test_an_unknown_provenance_is_refused_and_changes_nothing() -> None:
    s = SessionData()
    s.add_bar("AAPL", mk(0))
    before = s.get_symbol_data("AAPL")
    with pytest.raises(ValueError, match=r"provenance must be a Provenance .*got 'junk'"):
        s.add_bar("AAPL", mk(1), provenance="junk")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"provenance must be a Provenance"):
        s.add_bars_batch("AAPL", [mk(1)], provenance=3)  # type: ignore[arg-type]
    assert s.get_symbol_data("AAPL") is before
    assert s.add_bar("AAPL", mk(1), provenance="gap_filled")  # type: ignore[arg-type]  # the value's name
    assert s.get_provenance("AAPL", at(1)) is Provenance.GAP_FILLED
