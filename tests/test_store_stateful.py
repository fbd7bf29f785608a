"""A hypothesis state machine drives `SessionData` and checks every read against a plain Python model.

The model is deliberately naive: a dict per symbol of ``timestamp -> bar``, lists of ticks and quotes, and the
contract's rules written out directly (derived windows aligned to 09:30, completed when their last minute is
present, when any later bar is stored, or when `end_session` ran while they existed; bar quality by counting
minutes; history rolled at `start_new_session`, every window complete by then). Writes go on after
`end_session` (late bars, corrections, the upkeep's gap fills, at the session's edges too) until
`start_new_session`. Invalid writes must raise `InvalidDataError` and change nothing a reader can see.
``check_store(store)`` runs after every step: among the rest, each interval's history equals the
aggregation of the 1-minute history beside it.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from reference import check_store
from sessiondata import Bar, InvalidDataError, Provenance, Quote, SessionData, Tick

SYMBOLS = ["AAPL", "msft", "Spy"]
DAYS = [date(2025, 1, 2), date(2025, 1, 3)]
SESSION_DATES = [date(2025, 1, 2), date(2025, 1, 3), date(2025, 1, 6), date(2025, 1, 7)]
INTERVALS = (5, 15)
TRAILING = 2
HISTORY_TYPES = (1, 5, 15)
OPEN_MINUTE = 9 * 60 + 30
SESSION_MINUTES = 390

# Mostly the first half hour (many collisions: replacements and out-of-order arrivals), some around the close
# (the last, shorter windows and post-close bars), a few pre-market.
minutes = st.one_of(
    st.integers(min_value=-3, max_value=25),
    st.integers(min_value=380, max_value=395),
)
timestamps = st.builds(
    lambda day, m, s: datetime.combine(day, time(9, 30)) + timedelta(minutes=m, seconds=s),
    st.sampled_from(DAYS),
    minutes,
    st.sampled_from([0, 0, 0, 30]),
)
prices = st.sampled_from([99.0, 100.0, 100.5, 101.0, 102.0, 150.0])
volumes = st.integers(min_value=0, max_value=1000)
symbols = st.sampled_from(SYMBOLS)


@st.composite
def bars_for(draw: st.DrawFn, symbol: str) -> Bar:
    p = draw(prices)
    spread = draw(st.sampled_from([0.0, 0.5, 2.0]))
    return Bar(symbol, draw(timestamps), p, p + spread, p - spread / 2, p + spread / 3, draw(volumes))


def locate(ts: datetime) -> tuple[date, int] | None:
    off = ts.hour * 60 + ts.minute - OPEN_MINUTE
    return (ts.date(), off) if 0 <= off < SESSION_MINUTES else None


def window_bounds(day: date, index: int, k: int) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(9, 30)) + timedelta(minutes=index * k)
    return start, start + timedelta(minutes=min(k, SESSION_MINUTES - index * k))


def aggregate(members: list[Bar], ts: datetime) -> Bar:
    return Bar(
        members[0].symbol,
        ts,
        members[0].open,
        max(b.high for b in members),
        min(b.low for b in members),
        members[-1].close,
        sum(b.volume for b in members),
    )


class SymbolModel:
    def __init__(self) -> None:
        self.bars: dict[datetime, Bar] = {}
        self.provenance: dict[datetime, Provenance] = {}
        self.ticks: list[Tick] = []
        self.quotes: list[Quote] = []
        self.flushed: set[tuple[int, tuple[date, int]]] = set()
        # The session ended: every window is complete, also one opened by late data.
        self.ended = False
        self.history: dict[int, dict[date, tuple[Bar, ...]]] = {k: {} for k in HISTORY_TYPES}

    def has_data(self) -> bool:
        return bool(self.bars or self.ticks or self.quotes)

    def sorted_bars(self) -> list[Bar]:
        return [self.bars[t] for t in sorted(self.bars)]

    def windows(self, k: int) -> dict[tuple[date, int], list[Bar]]:
        out: dict[tuple[date, int], list[Bar]] = {}
        for b in self.sorted_bars():
            loc = locate(b.timestamp)
            if loc is not None:
                out.setdefault((loc[0], loc[1] // k), []).append(b)
        return out

    def derived(self, k: int) -> tuple[list[Bar], Bar | None]:
        """(completed bars, forming bar) by the contract's completion rule."""
        newest = max(self.bars) if self.bars else None
        done: list[Bar] = []
        forming: list[Bar] = []
        for key, members in sorted(self.windows(k).items()):
            start, end = window_bounds(key[0], key[1], k)
            last_minute = end - timedelta(minutes=1)
            complete = (
                self.ended
                or (k, key) in self.flushed
                or any(b.timestamp.replace(second=0) == last_minute for b in members)
                or (newest is not None and newest >= end)
            )
            (done if complete else forming).append(aggregate(members, start))
        assert len(forming) <= 1, "model: only the newest window can be forming"
        return done, (forming[0] if forming else None)

    def quality(self) -> float:
        per_day: dict[date, set[int]] = {}
        for t in self.bars:
            loc = locate(t)
            if loc is not None:
                per_day.setdefault(loc[0], set()).add(loc[1])
        if not per_day:
            return 0.0
        seen = per_day[max(per_day)]
        return 100.0 * len(seen) / (max(seen) + 1)

    def add_bar(self, bar: Bar, provenance: Provenance) -> None:
        replaced = bar.timestamp in self.bars
        self.bars[bar.timestamp] = bar
        if replaced and provenance is Provenance.STREAMED:
            self.provenance[bar.timestamp] = Provenance.CORRECTION
        else:
            self.provenance[bar.timestamp] = provenance

    @staticmethod
    def insert_stable(items: list[Any], item: Any) -> None:
        i = len(items)
        while i > 0 and items[i - 1].timestamp > item.timestamp:
            i -= 1
        items.insert(i, item)

    def end_session(self) -> None:
        self.ended = True
        for k in INTERVALS:
            for key in self.windows(k):
                self.flushed.add((k, key))

    def roll(self, key: date | None) -> SymbolModel:
        new = SymbolModel()
        for k in HISTORY_TYPES:
            kept = new.history[k] = dict(self.history[k])
            if k == 1:
                series = self.sorted_bars()
            else:  # the session is over: every window is complete, also one opened by late data
                done, forming = self.derived(k)
                series = done if forming is None else [*done, forming]
            if key is not None and series:
                kept[key] = tuple(series)
            elif key is not None and self.bars:
                kept.pop(key, None)  # this session's bars replace the date's in every interval
        # The newest TRAILING session dates, the same in every interval.
        dates = sorted({d for kept in new.history.values() for d in kept})
        for kept in new.history.values():
            for old in dates[: max(0, len(dates) - TRAILING)]:
                kept.pop(old, None)
        return new


def read_everything(store: SessionData) -> dict[Any, Any]:
    out: dict[Any, Any] = {
        "symbols": sorted(store.get_active_symbols()),
        "ended": store.session_ended,
        "date": store.current_session_date,
        "version": store.version,
    }
    for sym in out["symbols"]:
        out[sym] = (
            store.get_session_metrics(sym),
            store.get_bars(sym),
            [store.get_bars(sym, k) for k in INTERVALS],
            [store.get_forming_bar(sym, k) for k in INTERVALS],
            store.get_ticks(sym),
            store.get_quotes(sym),
            [store.get_historical_bars(sym, k) for k in HISTORY_TYPES],
            [store.get_provenance(sym, b.timestamp) for b in store.get_bars(sym)],
        )
    return out


class StoreMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.store = SessionData(
            derived_intervals=INTERVALS,
            historical_bars_trailing_days=TRAILING,
            historical_bars_types=HISTORY_TYPES,
        )
        self.model: dict[str, SymbolModel] = {}
        self.ended = False
        self.session_date: date | None = None
        self.last_version = 0
        self.symbol_versions: dict[str, int] = {}

    def sym_model(self, symbol: str) -> SymbolModel:
        if symbol.upper() not in self.model:
            self.model[symbol.upper()] = m = SymbolModel()
            m.ended = self.ended  # registered after end_session: its windows are complete too
        return self.model[symbol.upper()]

    @initialize(day=st.sampled_from(SESSION_DATES))
    def begin(self, day: date) -> None:
        self.store.start_new_session(day)
        self.session_date = day

    # ---------------------------------------------------------------- valid writes

    @rule(
        data=st.data(),
        symbol=symbols,
        provenance=st.sampled_from([Provenance.STREAMED] * 3 + [Provenance.GAP_FILLED]),
    )
    def add_bar(self, data: st.DataObject, symbol: str, provenance: Provenance) -> None:
        bar = data.draw(bars_for(symbol.upper()))
        if provenance is Provenance.STREAMED:
            self.store.add_bar(symbol, bar)
        else:
            self.store.add_bar(symbol, bar, provenance=provenance)
        self.sym_model(symbol).add_bar(bar, provenance)
        self.wrote(symbol)

    @rule(data=st.data(), symbol=symbols)
    def add_bars_in_order(self, data: st.DataObject, symbol: str) -> None:
        """A run of consecutive minutes after a random start: the common streaming case, as a batch."""
        start = data.draw(timestamps)
        n = data.draw(st.integers(min_value=1, max_value=20))
        bars = [
            Bar(symbol.upper(), start + timedelta(minutes=i), 100.0, 101.0, 99.0, 100.5, 10 + i)
            for i in range(n)
        ]
        self.store.add_bars_batch(symbol, bars)
        m = self.sym_model(symbol)
        for b in bars:
            m.add_bar(b, Provenance.STREAMED)
        self.wrote(symbol)

    @rule(data=st.data(), symbol=symbols)
    def add_bars_batch(self, data: st.DataObject, symbol: str) -> None:
        bars = data.draw(st.lists(bars_for(symbol.upper()), min_size=1, max_size=8))
        self.store.add_bars_batch(symbol, bars)
        m = self.sym_model(symbol)
        for b in bars:
            m.add_bar(b, Provenance.STREAMED)
        self.wrote(symbol)

    @rule(data=st.data(), symbol=symbols)
    def fill_gap(self, data: st.DataObject, symbol: str) -> None:
        """The upkeep's fill: consecutive minutes, gap-filled, never replacing a stored bar; at any point of
        the session, often at its edges and after `end_session` (late data for the session in memory)."""
        start = data.draw(timestamps)
        n = data.draw(st.integers(min_value=1, max_value=12))
        bars = [
            Bar(symbol.upper(), start + timedelta(minutes=i), 100.0, 102.0, 98.0, 101.0, 7 + i)
            for i in range(n)
        ]
        m = self.sym_model(symbol)
        new = [b for b in bars if b.timestamp not in m.bars]
        stored = self.store.add_bars_batch(symbol, bars, provenance=Provenance.GAP_FILLED, replace=False)
        assert stored == len(new)
        for b in new:
            m.add_bar(b, Provenance.GAP_FILLED)
        if new:
            self.wrote(symbol)

    @rule(symbol=symbols, ts=st.lists(timestamps, min_size=1, max_size=5), single=st.booleans())
    def add_ticks(self, symbol: str, ts: list[datetime], single: bool) -> None:
        ticks = [Tick(symbol, t, 100.0 + i, i) for i, t in enumerate(ts)]
        if single:
            for t in ticks:
                self.store.add_tick(symbol, t)
        else:
            self.store.add_ticks_batch(symbol, ticks)
        m = self.sym_model(symbol)
        for t in ticks:
            m.insert_stable(m.ticks, t)
        self.wrote(symbol)

    @rule(symbol=symbols, ts=st.lists(timestamps, min_size=1, max_size=5), single=st.booleans())
    def add_quotes(self, symbol: str, ts: list[datetime], single: bool) -> None:
        quotes = [Quote(symbol, t, 100.0 + i, 100.0, i, 1) for i, t in enumerate(ts)]  # some crossed
        if single:
            for q in quotes:
                self.store.add_quote(symbol, q)
        else:
            self.store.add_quotes_batch(symbol, quotes)
        m = self.sym_model(symbol)
        for q in quotes:
            m.insert_stable(m.quotes, q)
        self.wrote(symbol)

    @rule(symbol=symbols)
    def register(self, symbol: str) -> None:
        self.store.register_symbol(symbol)
        self.sym_model(symbol)

    def wrote(self, symbol: str) -> None:
        sym = symbol.upper()
        snap = self.store.get_symbol_data(sym)
        assert snap is not None
        assert snap.version > self.symbol_versions.get(sym, 0), "a write must move the symbol's version"
        self.symbol_versions[sym] = snap.version

    # -------------------------------------------------------------- invalid writes

    @rule(data=st.data(), symbol=symbols, kind=st.integers(min_value=0, max_value=4))
    def invalid_write(self, data: st.DataObject, symbol: str, kind: int) -> None:
        before = read_everything(self.store)
        sym = symbol.upper()
        other = "ZZZ"
        valid = data.draw(st.lists(bars_for(sym), min_size=0, max_size=4))
        aware = datetime(2025, 1, 2, 14, 35, tzinfo=timezone.utc)
        if kind == 0:
            call: Any = lambda: self.store.add_bar(symbol, data.draw(bars_for(other)))  # noqa: E731
        elif kind == 1:
            call = lambda: self.store.add_bars_batch(symbol, [*valid, data.draw(bars_for(other))])  # noqa: E731
        elif kind == 2:
            naive = data.draw(bars_for(sym))
            mixed = [naive, *valid, Bar(sym, aware, 100, 101, 99, 100, 1)]
            call = lambda: self.store.add_bars_batch(symbol, mixed)  # noqa: E731
        elif kind == 3:
            bad: list[Any] = [
                Tick(sym, datetime(2025, 1, 2, 9, 31), 100, 1),
                Quote(sym, datetime(2025, 1, 2, 9, 31), 1, 1, 1, 1),
            ]
            call = lambda: self.store.add_ticks_batch(symbol, bad)  # noqa: E731
        else:
            known = self.model.get(sym)
            if known is None or not known.has_data():
                return  # an empty symbol may still take aware timestamps: not an error
            call = lambda: self.store.add_quote(symbol, Quote(sym, aware, 1, 1, 1, 1))  # noqa: E731
        with pytest.raises(InvalidDataError):
            call()
        assert read_everything(self.store) == before, "a failed write changed the store"

    # ------------------------------------------------------------------ lifecycle

    @rule()
    def end_session(self) -> None:
        self.store.end_session()
        self.ended = True
        for m in self.model.values():
            m.end_session()

    @rule(day=st.sampled_from(SESSION_DATES))
    def start_new_session(self, day: date) -> None:
        if not self.ended:
            for m in self.model.values():
                m.end_session()
        key = self.session_date
        rolled: dict[str, SymbolModel] = {}
        for sym, m in self.model.items():
            k = key
            if k is None and m.bars:
                k = max(m.bars).date()  # documented fallback: the exchange date of the newest bar
            rolled[sym] = m.roll(k)
        self.store.start_new_session(day)
        self.model = rolled
        self.ended = False
        self.session_date = day

    @precondition(lambda self: bool(self.model))
    @rule()
    def clear_all(self) -> None:
        self.store.clear_all()
        self.model = {}
        self.ended = False
        self.session_date = None

    # ---------------------------------------------------------------------- reads

    @rule(
        symbol=st.sampled_from([*SYMBOLS, "nope"]),
        interval=st.sampled_from([1, *INTERVALS]),
        start=st.none() | timestamps,
        end=st.none() | timestamps,
        n=st.integers(min_value=-1, max_value=30),
    )
    def reads(self, symbol: str, interval: int, start: datetime | None, end: datetime | None, n: int) -> None:
        m = self.model.get(symbol.upper())
        if m is None:
            expected: list[Bar] = []
        elif interval == 1:
            expected = m.sorted_bars()
        else:
            expected = m.derived(interval)[0]
        s = self.store
        got = s.get_bars(symbol, interval, start, end)
        assert got == [
            b
            for b in expected
            if (start is None or b.timestamp >= start) and (end is None or b.timestamp < end)
        ]
        if start is not None:
            assert s.get_bars_since(symbol, start, interval) == [b for b in expected if b.timestamp >= start]
        assert s.get_last_n_bars(symbol, n, interval) == (expected[-n:] if n > 0 else [])
        assert s.get_latest_bar(symbol, interval) == (expected[-1] if expected else None)
        assert s.get_bar_count(symbol, interval) == len(expected)
        assert s.get_latest_bars_multi([symbol], interval) == {
            symbol.upper(): expected[-1] if expected else None
        }
        if m is None:
            assert s.get_symbol_data(symbol) is None
            assert s.get_session_metrics(symbol) == {}

    # ------------------------------------------------------------------ invariants

    @invariant()
    def store_invariants(self) -> None:
        check_store(self.store)

    @invariant()
    def matches_model(self) -> None:
        s = self.store
        assert s.get_active_symbols() == set(self.model)
        assert s.session_ended == self.ended
        assert s.current_session_date == self.session_date
        assert s.version >= self.last_version
        self.last_version = s.version
        for sym, m in self.model.items():
            bars = m.sorted_bars()
            assert s.get_bars(sym) == bars
            metrics = s.get_session_metrics(sym)
            assert metrics["symbol"] == sym
            assert metrics["bar_count"] == len(bars)
            assert metrics["session_volume"] == sum(b.volume for b in bars)
            assert metrics["session_high"] == (max(b.high for b in bars) if bars else None)
            assert metrics["session_low"] == (min(b.low for b in bars) if bars else None)
            assert metrics["last_update"] == (bars[-1].timestamp if bars else None)
            assert metrics["bar_quality"] == pytest.approx(m.quality(), abs=1e-9)
            for k in INTERVALS:
                done, forming = m.derived(k)
                assert s.get_bars(sym, k) == done, f"completed {k}m bars"
                assert s.get_forming_bar(sym, k) == forming, f"forming {k}m bar"
            assert s.get_ticks(sym) == m.ticks
            assert s.get_quotes(sym) == m.quotes
            for k in HISTORY_TYPES:
                assert s.get_historical_bars(sym, k) == m.history[k], f"history of {k}m bars"
            for b in bars:
                assert s.get_provenance(sym, b.timestamp) is m.provenance[b.timestamp]
            snap = s.get_symbol_data(sym)
            assert snap is not None
            assert snap.version >= self.symbol_versions.get(sym, 0), "a symbol's version went back"
            self.symbol_versions[sym] = snap.version


StoreMachine.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_store_state_machine = StoreMachine.TestCase
