"""Configuration audit: a hypothesis state machine drives `SessionData` under configurations nobody tested
together and checks every public read, after every step, against a naive model written from the contract's
text (/work/shared/CONTRACT.md, "The store"), through ``from sessiondata import ...`` only.

Each run draws its own store: hours (regular, odd minutes, a morning or an evening session, one shorter than
its biggest window), the exchange zone (New York, London, Tokyo, UTC, Sydney), any subset of derived
intervals (some of which do not divide the session, so the last window is cut at ``end_time``), 0-3
trailing days of history and the intervals kept, lazy or eager derivation, and the timestamp style of its
data: naive exchange-local, aware in the exchange zone, aware in UTC, or aware at a fixed UTC offset. Its
session dates lie around the zone's spring daylight-saving change (the Friday before, the Sunday of the
change, the Monday after), so aware stamps carry a different UTC offset on either side of it.

The model knows only the contract: a session is ``start_time`` <= exchange wall minute < ``end_time`` on a
weekday (the built-in calendar has no weekend sessions); windows of ``k`` minutes are aligned to
``start_time`` and cut at ``end_time``; a window is complete when its last minute has a bar, when a bar at or
after its end is stored, or once `end_session` ran; bar quality counts distinct session minutes from the
open to the newest session bar's minute. Where the contract leaves a choice open the model follows the
store's documented choice, and says so where it does.
"""

from __future__ import annotations

import itertools
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from sessiondata import Bar, InvalidDataError, Quote, SessionData, Tick

# A failure here shrinks for up to hypothesis's own limit (5 minutes: every step replays many reads); the
# suite's 300 s timeout would cut the shrink short and report it as flaky instead of the minimal example.
pytestmark = pytest.mark.timeout(900)

M = timedelta(minutes=1)
UTC = timezone.utc

# (start_time, end_time): the default hours, odd minutes, a morning, an evening (as UTC hours of a US
# session), and a 20-minute session shorter than the bigger windows.
HOURS = [
    (time(9, 30), time(16, 0)),
    (time(9, 31), time(15, 58)),
    (time(8, 0), time(12, 0)),
    (time(13, 30), time(20, 0)),
    (time(10, 0), time(10, 20)),
]
# Each zone's spring clock change falls on a Sunday: the session dates are the Friday before, that Sunday
# (no session: the built-in calendar has none on weekends) and the Monday after.
ZONE_DAYS = {
    "America/New_York": (date(2025, 3, 7), date(2025, 3, 9), date(2025, 3, 10)),
    "Europe/London": (date(2025, 3, 28), date(2025, 3, 30), date(2025, 3, 31)),
    "Australia/Sydney": (date(2025, 4, 4), date(2025, 4, 6), date(2025, 4, 7)),  # clocks go back here
    "Asia/Tokyo": (date(2025, 3, 7), date(2025, 3, 9), date(2025, 3, 10)),
    "UTC": (date(2025, 3, 7), date(2025, 3, 9), date(2025, 3, 10)),
}
INTERVALS = (2, 3, 5, 7, 10, 15, 30, 60, 390)
AWARE = ("exchange", "utc", "fixed")
# "mixed": aware stamps in all three zones within one symbol (the contract forbids mixing naive and aware
# only; equal instants are equal timestamps, so a bar in UTC corrects the same minute stamped in the zone).
STYLES = ("naive", *AWARE, "mixed")
SYMBOLS = ["AAPL", "msft", "sPy"]
# Zones query bounds are given in, beside the data's own: a read compares instants, whatever the zone.
BOUND_ZONES: list[tzinfo] = [UTC, ZoneInfo("Asia/Kolkata"), timezone(timedelta(hours=-7, minutes=-30))]


def minutes_of(t: time) -> int:
    return t.hour * 60 + t.minute


@dataclass(frozen=True)
class Config:
    start: time
    end: time
    zone: str
    intervals: tuple[int, ...]
    trailing: int
    history_types: tuple[int, ...]
    style: str
    derivation: str

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.zone)

    @property
    def length(self) -> int:
        return minutes_of(self.end) - minutes_of(self.start)

    @property
    def days(self) -> tuple[date, ...]:
        return ZONE_DAYS[self.zone]

    def fixed(self) -> timezone:
        """The zone's UTC offset on the first day, as a fixed offset: after the change it is an hour off the
        zone's own, which must not matter (an aware stamp is an instant)."""
        offset = datetime.combine(self.days[0], time(12)).replace(tzinfo=self.tz).utcoffset()
        assert offset is not None
        return timezone(offset)

    def stamp(self, wall: datetime, pick: int = 0) -> datetime:
        """The instant of exchange wall time ``wall`` (naive), in this run's timestamp style (``"mixed"``:
        the aware style number ``pick``, so that one symbol's stamps come in several zones)."""
        if self.style == "naive":
            return wall
        local = wall.replace(tzinfo=self.tz)
        style = AWARE[pick % len(AWARE)] if self.style == "mixed" else self.style
        if style == "exchange":
            return local
        return local.astimezone(UTC if style == "utc" else self.fixed())

    def other_style(self, wall: datetime) -> datetime:
        """``wall`` in the timestamp style this run's symbols must refuse (naive against aware)."""
        return wall.replace(tzinfo=UTC) if self.style == "naive" else wall

    def wall(self, ts: datetime) -> datetime:
        """``ts``'s exchange wall time, naive: naive stamps are exchange-local, aware ones are converted."""
        return ts if ts.tzinfo is None else ts.astimezone(self.tz).replace(tzinfo=None)

    def locate(self, ts: datetime) -> tuple[date, int] | None:
        """(session date, minute offset from the open) of a session minute, else None."""
        w = self.wall(ts).replace(second=0, microsecond=0)
        if w.weekday() >= 5:
            return None
        off = (w - datetime.combine(w.date(), self.start)) // M
        return (w.date(), off) if 0 <= off < self.length else None

    def window(self, day: date, index: int, k: int) -> tuple[datetime, datetime]:
        """A window's start and end, as instants in the run's style: aligned to the open, cut at the close."""
        open_ = datetime.combine(day, self.start)
        first = index * k
        return self.stamp(open_ + first * M), self.stamp(open_ + min(first + k, self.length) * M)


def aggregate(members: list[Bar], ts: datetime) -> Bar:
    """The contract's aggregation: open of the first bar, max high, min low, close of the last, summed
    volume (``members`` in time order)."""
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
    """One symbol's session in memory, as the contract describes it."""

    def __init__(self, cfg: Config, ended: bool) -> None:
        self.cfg = cfg
        self.bars: dict[datetime, Bar] = {}
        self.ticks: list[Tick] = []
        self.quotes: list[Quote] = []
        # After `end_session` every window is complete, also one opened by late data (the contract accepts
        # late writes "as late data for the session in memory"; that their windows are complete is the
        # store's documented choice, tests/test_derived_after_end_session.py).
        self.ended = ended
        self.history: dict[int, dict[date, list[Bar]]] = {k: {} for k in cfg.history_types}

        # Answers of `sorted_bars`, `derived` and `quality` since the last change (the machine asks each
        # many times a step, and shrinking a failure replays thousands of steps).
        self.memo: dict[Any, Any] = {}

    @classmethod
    def of(cls, cfg: Config, bars: Any) -> SymbolModel:
        """A model of an ended session holding ``bars``."""
        model = cls(cfg, ended=True)
        for b in bars:
            model.put(b)
        return model

    def put(self, bar: Bar) -> None:
        """Store ``bar``: a new minute, or a correction of the bar with its timestamp."""
        self.bars[bar.timestamp] = bar
        self.memo.clear()

    def end(self) -> None:
        self.ended = True
        self.memo.clear()

    def has_data(self) -> bool:
        return bool(self.bars or self.ticks or self.quotes)

    def sorted_bars(self) -> list[Bar]:
        if "sorted" not in self.memo:
            self.memo["sorted"] = [self.bars[t] for t in sorted(self.bars)]
        return list(self.memo["sorted"])

    def windows(self, k: int) -> dict[tuple[date, int], list[Bar]]:
        out: dict[tuple[date, int], list[Bar]] = {}
        for b in self.sorted_bars():
            loc = self.cfg.locate(b.timestamp)
            if loc is not None:
                out.setdefault((loc[0], loc[1] // k), []).append(b)
        return out

    def derived(self, k: int) -> tuple[list[Bar], Bar | None]:
        """(completed windows, the forming one) by the contract's completion rule."""
        if k not in self.memo:
            self.memo[k] = self._derived(k)
        done, forming = self.memo[k]
        return list(done), forming

    def _derived(self, k: int) -> tuple[list[Bar], Bar | None]:
        newest = max(self.bars) if self.bars else None
        done: list[Bar] = []
        forming: list[Bar] = []
        for (day, index), members in sorted(self.windows(k).items()):
            start, end = self.cfg.window(day, index, k)
            last_minute = self.cfg.wall(end) - M
            complete = (
                self.ended
                or any(self.cfg.wall(b.timestamp).replace(second=0) == last_minute for b in members)
                or (newest is not None and newest >= end)
            )
            (done if complete else forming).append(aggregate(members, start))
        assert len(forming) <= 1, "model: only the newest window can be forming"
        return done, (forming[0] if forming else None)

    def quality(self) -> float:
        if "quality" not in self.memo:
            self.memo["quality"] = self._quality()
        return float(self.memo["quality"])

    def _quality(self) -> float:
        per_day: dict[date, set[int]] = {}
        for t in self.bars:
            loc = self.cfg.locate(t)
            if loc is not None:
                per_day.setdefault(loc[0], set()).add(loc[1])
        if not per_day:
            return 0.0
        # Bars of several dates in one session in memory (the store does not police dates): the contract
        # counts from the open "up to the newest such bar's minute", so the newest session date's minutes.
        seen = per_day[max(per_day)]
        return 100.0 * len(seen) / (max(seen) + 1)

    @staticmethod
    def insert_stable(items: list[Any], item: Any) -> None:
        """Time order, equal timestamps in arrival order."""
        i = len(items)
        while i > 0 and items[i - 1].timestamp > item.timestamp:
            i -= 1
        items.insert(i, item)

    def roll(self, key: date | None) -> SymbolModel:
        """The next session's model: this session's bars rolled into history under ``key``."""
        new = SymbolModel(self.cfg, ended=False)
        if self.cfg.trailing == 0:
            return new
        self.end()  # the session is over: every window is complete
        for k in self.cfg.history_types:
            kept = new.history[k] = dict(self.history[k])
            series = self.sorted_bars() if k == 1 else self.derived(k)[0]
            if key is not None and series:
                kept[key] = series
            elif key is not None and self.bars:
                # The store's documented choice (`start_new_session`'s docstring): this session's bars
                # replace an earlier session's of the same date in every interval, also where none derived.
                kept.pop(key, None)
        dates = sorted({d for kept in new.history.values() for d in kept})
        for kept in new.history.values():  # "trailing days" counts sessions: the newest N dates
            for old in dates[: max(0, len(dates) - self.cfg.trailing)]:
                kept.pop(old, None)
        return new


@st.composite
def configs(draw: st.DrawFn) -> Config:
    start, end = draw(st.sampled_from(HOURS))
    intervals = tuple(sorted(draw(st.sets(st.sampled_from(INTERVALS), max_size=4))))
    kept = draw(st.sets(st.sampled_from(intervals))) if intervals else set()
    return Config(
        start=start,
        end=end,
        zone=draw(st.sampled_from(list(ZONE_DAYS))),
        intervals=intervals,
        trailing=draw(st.integers(min_value=0, max_value=3)),
        history_types=(1, *sorted(kept)),
        style=draw(st.sampled_from(STYLES)),
        derivation=draw(st.sampled_from(["lazy", "eager"])),
    )


def unconfigured(cfg: Config) -> list[int]:
    """Intervals that are neither 1 nor configured: each read must refuse them with a `ValueError`."""
    return [k for k in (0, 4, 6, *INTERVALS) if k not in cfg.intervals][:3]


class ConfigMachine(RuleBasedStateMachine):
    """Drives one store of a drawn configuration; every step is checked against `SymbolModel`."""

    def __init__(self) -> None:
        super().__init__()
        self.store: SessionData
        self.cfg: Config
        self.model: dict[str, SymbolModel] = {}
        self.ended = False
        self.session_date: date | None = None
        # Steps left without a derived read: lazy derivation then has several steps' writes to catch up on
        # at the next one (a read after every step would settle its log one step at a time).
        self.quiet = 0
        # What earlier steps' reads returned, with a copy: "sequences ... never change after they are
        # returned", and snapshots are immutable, whatever was written since.
        self.handed_out: list[tuple[Any, list[Any]]] = []

    def read_intervals(self) -> tuple[int, ...]:
        return (1,) if self.quiet else (1, *self.cfg.intervals)

    # ------------------------------------------------------------------ drawing

    def sym_model(self, symbol: str) -> SymbolModel:
        key = symbol.upper()
        if key not in self.model:
            self.model[key] = SymbolModel(self.cfg, ended=self.ended)
        return self.model[key]

    def draw_wall(self, data: st.DataObject) -> datetime:
        """An exchange wall time: mostly near the open and the close (collisions, the cut last window,
        pre- and post-market bars), some anywhere in the session; on the session date or a day around it."""
        days = list(self.cfg.days)
        if self.session_date in days:
            days += [self.session_date] * 3
        day = data.draw(st.sampled_from(days))
        n = self.cfg.length
        off = data.draw(
            st.one_of(
                st.integers(min_value=-3, max_value=12),
                st.integers(min_value=max(0, n - 8), max_value=n + 4),
                st.integers(min_value=0, max_value=n - 1),
            )
        )
        sec = data.draw(st.sampled_from([0, 0, 0, 30]))
        return datetime.combine(day, self.cfg.start) + off * M + timedelta(seconds=sec)

    def draw_stamp(self, data: st.DataObject) -> datetime:
        pick = data.draw(st.integers(0, 2)) if self.cfg.style == "mixed" else 0
        return self.cfg.stamp(self.draw_wall(data), pick)

    def draw_bar(self, data: st.DataObject, symbol: str, ts: datetime | None = None) -> Bar:
        p = data.draw(st.sampled_from([99.0, 100.0, 100.5, 101.0, 102.0, 150.0]))
        spread = data.draw(st.sampled_from([0.0, 0.5, 2.0]))
        stamp = self.draw_stamp(data) if ts is None else ts
        volume = data.draw(st.integers(min_value=0, max_value=1000))
        return Bar(symbol, stamp, p, p + spread, p - spread / 2, p + spread / 3, volume)

    def draw_bound(self, data: st.DataObject) -> datetime | None:
        """A query bound: None, or an instant near the data, naive for naive data, else in any zone."""
        if data.draw(st.booleans()):
            return None
        ts = self.draw_stamp(data)
        if ts.tzinfo is None:
            return ts
        return ts.astimezone(data.draw(st.sampled_from([*BOUND_ZONES, self.cfg.tz])))

    # ---------------------------------------------------------------- lifecycle

    @initialize(cfg=configs(), data=st.data())
    def build(self, cfg: Config, data: st.DataObject) -> None:
        self.cfg = cfg
        # The zone by name or as a tzinfo (UTC also as `datetime.timezone.utc`): the same store either way.
        zone: str | tzinfo = data.draw(
            st.sampled_from([cfg.zone, cfg.tz, *([UTC] if cfg.zone == "UTC" else [])])
        )
        self.store = SessionData(
            start_time=cfg.start,
            end_time=cfg.end,
            timezone=zone,
            derived_intervals=cfg.intervals,
            historical_bars_trailing_days=cfg.trailing,
            historical_bars_types=cfg.history_types,
            derivation=cfg.derivation,
        )
        assert (self.store.start_time, self.store.end_time) == (cfg.start, cfg.end)
        # The contract has `timezone` "readable as an attribute"; the store reads it back as a tzinfo (the
        # guide's documented choice), so compare by name.
        assert str(self.store.timezone) == cfg.zone
        assert set(self.store.derived_intervals) == set(cfg.intervals)
        assert self.store.historical_bars_trailing_days == cfg.trailing
        assert self.store.session_ended is False
        assert self.store.current_session_date is None
        if data.draw(st.booleans()):
            self.begin(data.draw(st.sampled_from(cfg.days)))

    @rule()
    def end_session(self) -> None:
        self.store.end_session()
        self.ended = True
        for m in self.model.values():
            m.end()

    @rule(data=st.data())
    def start_new_session(self, data: st.DataObject) -> None:
        """With or without a prior `end_session` (which it then runs first)."""
        self.begin(data.draw(st.sampled_from(self.cfg.days)))

    def begin(self, day: date) -> None:
        key = self.session_date
        rolled = {}
        for sym, m in self.model.items():
            k = key
            if k is None and m.bars:
                # Not in the contract (it keys history by the ended session's date); the store's documented
                # fallback (`start_new_session`): the session date of the newest bar.
                k = self.cfg.wall(max(m.bars)).date()
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

    @rule(symbol=st.sampled_from([*SYMBOLS, "Qqq", "qqq"]))
    def register(self, symbol: str) -> None:
        snap = self.store.register_symbol(symbol)
        assert snap.symbol == symbol.upper()
        self.sym_model(symbol)

    # ------------------------------------------------------------ valid writes

    @rule(data=st.data(), symbol=st.sampled_from(SYMBOLS))
    def add_bar(self, data: st.DataObject, symbol: str) -> None:
        bar = self.draw_bar(data, symbol.upper())
        self.store.add_bar(symbol, bar)
        self.sym_model(symbol).put(bar)

    @rule(data=st.data(), symbol=st.sampled_from(SYMBOLS))
    def add_bars_batch(self, data: st.DataObject, symbol: str) -> None:
        """Any order, duplicates inside the batch (the later one wins: `add_bar` on each in order)."""
        bars = [self.draw_bar(data, symbol.upper()) for _ in range(data.draw(st.integers(1, 8)))]
        if data.draw(st.booleans()):
            bars.append(self.draw_bar(data, symbol.upper(), ts=bars[0].timestamp))
        self.store.add_bars_batch(symbol, bars)
        m = self.sym_model(symbol)
        for b in bars:
            m.put(b)

    @rule(data=st.data(), symbol=st.sampled_from(SYMBOLS), single=st.booleans())
    def add_run(self, data: st.DataObject, symbol: str, single: bool) -> None:
        """Consecutive minutes in time order from a random start: the streaming case (now and then a whole
        session's worth, so that every window of every interval forms and completes)."""
        start = self.draw_wall(data).replace(second=0)
        n = data.draw(st.integers(1, 25) | st.just(self.cfg.length + 5))
        bars = [
            Bar(symbol.upper(), self.cfg.stamp(start + i * M, i), 100.0, 101.0, 99.0, 100.5, 10 + i)
            for i in range(n)
        ]
        self.write_bars(symbol, bars, single)

    def write_bars(self, symbol: str, bars: list[Bar], single: bool) -> None:
        """Write ``bars`` one by one or as one batch, and into the model."""
        if single:
            for b in bars:
                self.store.add_bar(symbol, b)
        else:
            self.store.add_bars_batch(symbol, bars)
        m = self.sym_model(symbol)
        for b in bars:
            m.put(b)

    @rule(data=st.data(), symbol=st.sampled_from(SYMBOLS), single=st.booleans())
    def stream_to_close(self, data: st.DataObject, symbol: str, single: bool) -> None:
        """A day's stream ending with the session's last minute: the last window (cut at ``end_time`` when
        the interval does not divide the session) completes when that minute arrives, with no later bar and
        no `end_session`."""
        n = self.cfg.length
        first = data.draw(st.integers(max(0, n - 70), n - 1))
        day = data.draw(st.sampled_from(self.cfg.days))
        open_ = datetime.combine(day, self.cfg.start)
        bars = [
            Bar(symbol.upper(), self.cfg.stamp(open_ + i * M, i), 100.0, 101.5, 99.5, 100.0, 5 + i)
            for i in range(first, n)
        ]
        self.write_bars(symbol, bars, single)

    @precondition(lambda self: any(m.bars for m in self.model.values()))
    @rule(data=st.data())
    def correct(self, data: st.DataObject) -> None:
        """A bar with a stored bar's timestamp replaces it; volume is never counted twice."""
        sym = data.draw(st.sampled_from(sorted(s for s, m in self.model.items() if m.bars)))
        m = self.model[sym]
        ts = data.draw(st.sampled_from(sorted(m.bars)))
        bar = self.draw_bar(data, sym, ts=ts)
        self.store.add_bar(sym.lower(), bar)
        m.put(bar)

    @rule(data=st.data(), symbol=st.sampled_from(SYMBOLS), single=st.booleans(), quotes=st.booleans())
    def add_records(self, data: st.DataObject, symbol: str, single: bool, quotes: bool) -> None:
        stamps = [self.draw_stamp(data) for _ in range(data.draw(st.integers(1, 5)))]
        sym = symbol.upper()
        m = self.sym_model(symbol)
        if quotes:
            qs = [Quote(sym, t, 100.0 + i, 100.0, i, 1) for i, t in enumerate(stamps)]  # some crossed
            if single:
                for q in qs:
                    self.store.add_quote(symbol, q)
            else:
                self.store.add_quotes_batch(symbol, qs)
            for q in qs:
                m.insert_stable(m.quotes, q)
        else:
            ts = [Tick(sym, t, 100.0 + i, i) for i, t in enumerate(stamps)]  # a zero-size tick first
            if single:
                for t in ts:
                    self.store.add_tick(symbol, t)
            else:
                self.store.add_ticks_batch(symbol, ts)
            for t in ts:
                m.insert_stable(m.ticks, t)

    @rule(steps=st.integers(1, 6))
    def no_derived_readers(self, steps: int) -> None:
        """Nobody reads derived bars or bar quality for the next ``steps`` steps (a lazy store then owes
        several steps' writes to the next reader)."""
        self.quiet = steps

    # ---------------------------------------------------------- invalid writes

    @rule(symbol=st.sampled_from([*SYMBOLS, "NEW"]), what=st.sampled_from(["bars", "ticks", "quotes"]))
    def empty_batch(self, symbol: str, what: str) -> None:
        """An empty batch is `add_bar` on no bar: nothing changes, no symbol is registered."""
        before = self.read_everything()
        getattr(self.store, f"add_{what}_batch")(symbol, [])
        assert self.read_everything() == before

    @rule(data=st.data(), symbol=st.sampled_from(SYMBOLS), kind=st.integers(0, 6))
    def invalid_write(self, data: st.DataObject, symbol: str, kind: int) -> None:
        """Must raise `InvalidDataError` and change nothing a reader sees."""
        sym = symbol.upper()
        valid = [self.draw_bar(data, sym) for _ in range(data.draw(st.integers(0, 4)))]
        known = self.model.get(sym)
        mixed = self.cfg.other_style(self.draw_wall(data))
        call: Callable[[], object]
        if kind == 0:
            call = lambda: self.store.add_bar(symbol, self.draw_bar(data, "ZZZ"))  # noqa: E731
        elif kind == 1:
            bad = [*valid, self.draw_bar(data, "ZZZ")]
            call = lambda: self.store.add_bars_batch(symbol, bad)  # noqa: E731
        elif kind == 2:
            bars = [*valid, Bar(sym, mixed, 100, 101, 99, 100, 1)]
            if not valid and (known is None or not known.has_data()):
                return  # an empty symbol may take either style: not an error
            call = lambda: self.store.add_bars_batch(symbol, bars)  # noqa: E731
        elif kind == 3:
            t = self.draw_stamp(data)
            records: list[Any] = [Tick(sym, t, 100, 1), Quote(sym, t, 1, 1, 1, 1)]
            call = lambda: self.store.add_ticks_batch(symbol, records)  # noqa: E731
        elif kind == 4:
            if known is None or not known.has_data():
                return
            call = lambda: self.store.add_quote(symbol, Quote(sym, mixed, 1, 1, 1, 1))  # noqa: E731
        elif kind == 5:
            ticks = [Tick(sym, self.draw_stamp(data), 100, 1), Tick("ZZZ", self.draw_stamp(data), 100, 1)]
            call = lambda: self.store.add_ticks_batch(symbol, ticks)  # noqa: E731
        else:
            # Not a bar at all: the contract's "a timestamp that is not a datetime" one level up; the store
            # refuses it as invalid data too (InvalidDataError, its choice), and stores none of the batch.
            junk: list[Any] = [*valid, (self.draw_stamp(data), 100.0, 101.0, 99.0, 100.0, 1)]
            call = lambda: self.store.add_bars_batch(symbol, junk)  # noqa: E731
        before = self.read_everything()
        with pytest.raises(InvalidDataError):
            call()
        assert self.read_everything() == before, "a failed write changed what a reader sees"

    def read_everything(self) -> dict[Any, Any]:
        s = self.store
        out: dict[Any, Any] = {
            "symbols": sorted(s.get_active_symbols()),
            "ended": s.session_ended,
            "date": s.current_session_date,
        }
        ks = self.read_intervals()
        for sym in out["symbols"]:
            out[sym] = (
                s.get_session_metrics(sym),
                [s.get_bars(sym, k) for k in ks],
                [s.get_latest_bar(sym, k) for k in ks],
                [s.get_bar_count(sym, k) for k in ks],
                [s.get_forming_bar(sym, k) for k in ks if k != 1],
                s.get_ticks(sym),
                s.get_quotes(sym),
                history_of(s.get_symbol_data(sym)),
            )
        return out

    # ------------------------------------------------------------------- reads

    @rule(data=st.data(), symbol=st.sampled_from([*SYMBOLS, "nope", "aapl"]), n=st.integers(-2, 30))
    def reads(self, data: st.DataObject, symbol: str, n: int) -> None:
        """Range reads with random bounds (another zone than the data's, naive for naive data)."""
        k = data.draw(st.sampled_from(self.read_intervals()))
        m = self.model.get(symbol.upper())
        expected = [] if m is None else (m.sorted_bars() if k == 1 else m.derived(k)[0])
        start, end = self.draw_bound(data), self.draw_bound(data)
        s = self.store
        assert s.get_bars(symbol, k, start, end) == [
            b
            for b in expected
            if (start is None or b.timestamp >= start) and (end is None or b.timestamp < end)
        ]
        if start is not None:
            since = [b for b in expected if b.timestamp >= start]
            assert s.get_bars_since(symbol, start, k) == since
            snap = s.get_symbol_data(symbol)
            if snap is not None:
                assert snap.get_bars_since(start, k) == since
        assert s.get_last_n_bars(symbol, n, k) == (expected[-n:] if n > 0 else [])

    # -------------------------------------------------------------- invariant

    @invariant()
    def matches_model(self) -> None:
        if not hasattr(self, "cfg"):
            return
        s = self.store
        active = s.get_active_symbols()
        assert active == set(self.model)
        active.add("JUNK")  # a copy: the caller's to change
        assert "JUNK" not in s.get_active_symbols()
        assert s.session_ended == self.ended
        assert s.current_session_date == self.session_date
        self.check_unknown()
        for got, copy in self.handed_out:
            assert list(got) == copy, "a returned sequence or a snapshot changed after it was returned"
            if isinstance(got, list):
                got.append("not a bar")  # the caller's own list: the store must not see this
        self.handed_out = []
        for sym, m in self.model.items():
            self.check_symbol(sym, m)
        self.quiet = max(0, self.quiet - 1)

    def check_unknown(self) -> None:
        s = self.store
        for k in self.read_intervals():
            assert s.get_latest_bar("nope", k) is None
            assert s.get_last_n_bars("nope", 3, k) == []
            assert s.get_bars("nope", k) == []
            assert s.get_bar_count("nope", k) == 0
            assert s.get_latest_bars_multi(["nope", "Nope"], k) == {"NOPE": None}
        assert s.get_symbol_data("nope") is None
        assert s.get_session_metrics("nope") == {}
        t = self.cfg.stamp(datetime.combine(self.cfg.days[0], self.cfg.start))
        for bad in unconfigured(self.cfg):
            for sym in ("nope", *self.model):
                for read, args in (
                    (s.get_latest_bar, (sym, bad)),
                    (s.get_last_n_bars, (sym, 1, bad)),
                    (s.get_bars_since, (sym, t, bad)),
                    (s.get_bars, (sym, bad)),
                    (s.get_bar_count, (sym, bad)),
                    (s.get_latest_bars_multi, ([sym], bad)),
                ):
                    with pytest.raises(ValueError):
                        read(*args)
                snap = s.get_symbol_data(sym)
                if snap is not None:  # a snapshot's own read methods refuse it too
                    for snap_read, snap_args in (
                        (snap.get_latest_bar, (bad,)),
                        (snap.get_last_n_bars, (1, bad)),
                        (snap.get_bars_since, (t, bad)),
                        (snap.get_bar_count, (bad,)),
                    ):
                        with pytest.raises(ValueError):
                            snap_read(*snap_args)

    def check_symbol(self, sym: str, m: SymbolModel) -> None:
        s = self.store
        bars = m.sorted_bars()
        expected_metrics = {
            "symbol": sym,
            "session_volume": sum(b.volume for b in bars),
            "session_high": max((b.high for b in bars), default=None),
            "session_low": min((b.low for b in bars), default=None),
            "last_update": max(m.bars) if bars else None,
            "bar_count": len(bars),
        }
        if not self.quiet:  # the metrics dict holds bar quality: reading it settles what a lazy store owes
            metrics = s.get_session_metrics(sym.lower())
            assert {key: metrics[key] for key in expected_metrics} == expected_metrics
            assert metrics["bar_quality"] == pytest.approx(m.quality(), abs=1e-9)
        snap = s.get_symbol_data(sym.lower())
        assert snap is not None
        assert snap.symbol == sym
        with pytest.raises(AttributeError):
            snap.symbol = "JUNK"  # immutable
        assert list(snap.bars_1m) == bars
        self.handed_out.append((snap.bars_1m, bars))
        self.handed_out.append((snap.ticks, list(m.ticks)))
        assert (snap.session_volume, snap.session_high, snap.session_low, snap.last_update) == (
            expected_metrics["session_volume"],
            expected_metrics["session_high"],
            expected_metrics["session_low"],
            expected_metrics["last_update"],
        )
        if not self.quiet:
            assert snap.bar_quality == pytest.approx(m.quality(), abs=1e-9)
        assert list(snap.ticks) == m.ticks == s.get_ticks(sym)
        assert list(snap.quotes) == m.quotes == s.get_quotes(sym)
        for k in self.read_intervals():
            done, forming = (bars, None) if k == 1 else m.derived(k)
            if k != 1:
                assert set(snap.bars_derived) == set(self.cfg.intervals)
                assert list(snap.bars_derived[k]) == done, f"snapshot's completed {k}m bars"
                assert s.get_forming_bar(sym, k) == forming, f"forming {k}m bar"
            for reader in (s, snap):
                latest = done[-1] if done else None
                if reader is s:
                    got = s.get_bars(sym, k)
                    assert got == done, f"completed {k}m bars"
                    self.handed_out.append((got, list(got)))
                    assert s.get_latest_bar(sym, k) == latest
                    assert s.get_bar_count(sym, k) == len(done)
                    assert s.get_last_n_bars(sym, 2, k) == done[-2:]
                    assert s.get_latest_bars_multi([sym.lower(), "nope"], k) == {sym: latest, "NOPE": None}
                else:
                    assert snap.get_latest_bar(k) == latest
                    assert snap.get_bar_count(k) == len(done)
                    assert snap.get_last_n_bars(2, k) == done[-2:]
                    assert snap.get_last_n_bars(0, k) == []
        expected_history = {k: v for k, v in m.history.items() if v}
        assert history_of(snap) == expected_history, "historical_bars[interval][date]"
        for k in self.cfg.history_types:
            assert {d: list(v) for d, v in s.get_historical_bars(sym, k).items()} == m.history[k]
        self.check_history_derivation(snap)

    def check_history_derivation(self, snap: Any) -> None:
        """Derived history equals the aggregation of the 1-minute history beside it (all windows: the
        session it came from was over)."""
        one = snap.historical_bars.get(1, {})
        for k, per_day in snap.historical_bars.items():
            if k == 1:
                continue
            for day, kept in per_day.items():
                temp = SymbolModel.of(self.cfg, one.get(day, ()))
                assert list(kept) == temp.derived(k)[0], f"history of {k}m bars on {day}"


def history_of(snap: Any) -> dict[int, dict[date, list[Bar]]]:
    """A snapshot's ``historical_bars[interval][date]`` as plain lists, intervals with no date left out."""
    if snap is None:
        return {}
    return {k: {d: list(v) for d, v in per.items()} for k, per in snap.historical_bars.items() if per}


def check_snapshot_alone(cfg: Config, snap: Any) -> None:
    """What one snapshot must say of itself, whenever it was taken: metrics and quality of its own bars,
    its completed windows a prefix of the aggregation of its bars and its forming bar the window after."""
    bars = list(snap.bars_1m)
    assert all(a.timestamp < b.timestamp for a, b in itertools.pairwise(bars)), "bars out of order"
    assert snap.get_bar_count() == len(bars)
    assert snap.session_volume == sum(b.volume for b in bars)
    assert snap.session_high == max((b.high for b in bars), default=None)
    assert snap.session_low == min((b.low for b in bars), default=None)
    assert snap.last_update == (bars[-1].timestamp if bars else None)
    assert snap.get_latest_bar() == (bars[-1] if bars else None)
    model = SymbolModel.of(cfg, bars)
    assert snap.bar_quality == pytest.approx(model.quality(), abs=1e-9)
    for k in cfg.intervals:
        every = model.derived(k)[0]
        done = snap.get_bars(k)
        forming = snap.get_forming_bar(k)
        assert [*done, *([forming] if forming is not None else [])] == every, f"{k}m windows of one snapshot"


class ReaderThread(threading.Thread):
    """Reads every symbol's snapshot over and over while the machine writes, and checks each one alone
    (`check_snapshot_alone`): a lazy store then derives in this thread while the writer goes on. Its first
    failure is kept for the machine to raise. Pass counts let the machine wait for a pass that began after a
    step (with a deadline, never a nap)."""

    def __init__(self, store: SessionData, cfg: Config) -> None:
        super().__init__(daemon=True, name="conformance-reader")
        self.store, self.cfg = store, cfg
        self.stop = threading.Event()
        self.passes = 0
        self.error: BaseException | None = None
        self.cond = threading.Condition()

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                for snap in list(self.store.snapshot().values()):
                    check_snapshot_alone(self.cfg, snap)
                with self.cond:
                    self.passes += 1
                    self.cond.notify_all()
        except BaseException as exc:  # handed to the machine, which raises it in the test's thread
            self.error = exc
            with self.cond:
                self.passes = -1
                self.cond.notify_all()

    def wait_for_fresh_pass(self, deadline: float = 60.0) -> None:
        with self.cond:
            start = self.passes
            ok = self.cond.wait_for(lambda: self.passes < 0 or self.passes >= start + 2, timeout=deadline)
        if self.error is not None:
            raise self.error
        assert ok, f"the reader thread made no pass in {deadline} s"


class ConfigMachineWithReader(ConfigMachine):
    """The same machine with a second thread reading the store throughout (switching threads often)."""

    def __init__(self) -> None:
        super().__init__()
        self.reader: ReaderThread | None = None
        self.old_switch = sys.getswitchinterval()
        sys.setswitchinterval(1e-5)

    @initialize(cfg=configs(), data=st.data())
    def build(self, cfg: Config, data: st.DataObject) -> None:
        super().build(cfg, data)
        self.reader = ReaderThread(self.store, cfg)
        self.reader.start()

    @invariant()
    def reader_agrees(self) -> None:
        if self.reader is not None:
            self.reader.wait_for_fresh_pass()

    def teardown(self) -> None:
        try:
            if self.reader is not None:
                self.reader.stop.set()
                self.reader.join(timeout=60)
                assert not self.reader.is_alive(), "the reader thread did not stop"
                if self.reader.error is not None:
                    raise self.reader.error
        finally:
            sys.setswitchinterval(self.old_switch)


ConfigMachine.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=35,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_configurations = ConfigMachine.TestCase

ConfigMachineWithReader.TestCase.settings = settings(
    max_examples=15,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_configurations_with_a_reader_thread = ConfigMachineWithReader.TestCase
