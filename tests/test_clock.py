"""`TimeProvider`: the simulated clock only moves forward, live mode is the real clock, waits wake up."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessiondata._clock import ClockError, ClockMode, TimeProvider

NY = ZoneInfo("America/New_York")
T0 = datetime(2024, 3, 1, 9, 30, tzinfo=NY)


def test_backtest_clock_is_unset_until_advanced() -> None:
    clock = TimeProvider()
    assert clock.mode is ClockMode.BACKTEST
    assert not clock.is_set
    with pytest.raises(ClockError, match="not been set"):
        clock.now()
    clock.advance_to(T0)
    assert clock.is_set
    assert clock.now() == T0


def test_start_sets_the_simulated_time() -> None:
    assert TimeProvider("backtest", start=T0).now() == T0


def test_moving_backwards_is_an_error_and_changes_nothing() -> None:
    clock = TimeProvider(start=T0)
    clock.advance_to(T0)  # the same time is allowed
    with pytest.raises(ClockError, match="only moves forward"):
        clock.advance_to(T0 - timedelta(microseconds=1))
    assert clock.now() == T0


def test_the_clock_moves_through_the_hour_clocks_go_back() -> None:
    # 2024-11-03 in New York: 01:00-02:00 happens twice, EDT (fold=0) then EST (fold=1). Datetimes that share
    # a tzinfo compare by wall time, so the clock compares instants.
    ny = ZoneInfo("America/New_York")
    edt = datetime(2024, 11, 3, 1, 31, tzinfo=ny)
    est = datetime(2024, 11, 3, 1, 1, fold=1, tzinfo=ny)
    assert est.astimezone(timezone.utc) > edt.astimezone(timezone.utc)
    clock = TimeProvider(ClockMode.BACKTEST, timezone=ny)
    clock.advance_to(edt)
    clock.advance_to(est)  # 30 minutes later, though its wall time reads earlier
    assert clock.now() is est
    assert clock.wait_until(edt, timeout=0)
    assert not clock.wait_until(datetime(2024, 11, 3, 1, 2, fold=1, tzinfo=ny), timeout=0)
    with pytest.raises(ClockError, match="only moves forward"):
        clock.advance_to(datetime(2024, 11, 3, 1, 45, tzinfo=ny))  # EDT: before the clock's time
    assert clock.now() is est


def test_naive_and_aware_times_do_not_mix() -> None:
    clock = TimeProvider(start=T0)
    with pytest.raises(ClockError, match="naive"):
        clock.advance_to(datetime(2024, 3, 1, 10, 0))
    assert clock.now() == T0
    with pytest.raises(ClockError, match="naive"):
        clock.wait_until(datetime(2024, 3, 1, 9, 0), timeout=0)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="mode"):
        TimeProvider("replay")
    with pytest.raises(ValueError, match="backtest mode only"):
        TimeProvider("live", start=T0)
    with pytest.raises(ValueError, match="datetime"):
        TimeProvider(start="2024-03-01")  # type: ignore[arg-type]
    with pytest.raises(ClockError, match="datetime"):
        TimeProvider().advance_to("09:30")  # type: ignore[arg-type]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(min_value=-50, max_value=50), min_size=1, max_size=30))
def test_the_clock_reads_the_greatest_time_accepted(steps: list[int]) -> None:
    clock = TimeProvider()
    model: datetime | None = None
    for s in steps:
        t = T0 + timedelta(seconds=s)
        if model is not None and t < model:
            with pytest.raises(ClockError):
                clock.advance_to(t)
        else:
            clock.advance_to(t)
            model = t
        assert clock.now() == model


def test_wait_until_returns_at_once_when_reached_and_times_out_otherwise() -> None:
    clock = TimeProvider(start=T0)
    assert clock.wait_until(T0, timeout=0)
    assert clock.wait_until(T0 - timedelta(hours=1))
    assert not clock.wait_until(T0 + timedelta(seconds=1), timeout=0)
    assert not TimeProvider().wait_until(T0, timeout=0)  # unset clock: not reached


def test_wait_until_wakes_when_the_clock_gets_there() -> None:
    clock = TimeProvider(start=T0)
    target = T0 + timedelta(minutes=5)
    done = threading.Event()
    results: list[bool] = []

    def waiter() -> None:
        results.append(clock.wait_until(target, timeout=30))
        done.set()

    thread = threading.Thread(target=waiter, daemon=True)
    thread.start()
    clock.advance_to(T0 + timedelta(minutes=4))
    assert results == []  # not reached yet, and the 30 s timeout cannot have passed
    clock.advance_to(target)
    thread.join(10)
    assert not thread.is_alive()
    assert results == [True]


def test_many_readers_while_the_clock_advances() -> None:
    clock = TimeProvider(start=T0)
    seen: list[list[datetime]] = [[] for _ in range(4)]
    stop = threading.Event()

    def reader(out: list[datetime]) -> None:
        while not stop.is_set():
            out.append(clock.now())

    threads = [threading.Thread(target=reader, args=(out,), daemon=True) for out in seen]
    for t in threads:
        t.start()
    for i in range(1, 2000):
        clock.advance_to(T0 + timedelta(seconds=i))
    stop.set()
    for t in threads:
        t.join(10)
        assert not t.is_alive()
    for out in seen:
        assert out == sorted(out)  # each reader sees time only move forward


def test_live_clock_is_the_real_time_in_the_exchange_zone() -> None:
    clock = TimeProvider("live", timezone="America/New_York")
    assert clock.mode is ClockMode.LIVE
    assert clock.is_set
    before = datetime.now(timezone.utc)
    now = clock.now()
    after = datetime.now(timezone.utc)
    assert now.tzinfo is not None
    assert now.utcoffset() == now.astimezone(NY).utcoffset()
    assert before <= now <= after
    with pytest.raises(ClockError, match="live"):
        clock.advance_to(now + timedelta(hours=1))


def test_live_wait_until() -> None:
    clock = TimeProvider("live")
    past = datetime.now(NY) - timedelta(seconds=1)
    assert clock.wait_until(past, timeout=0)
    assert not clock.wait_until(datetime.now(NY) + timedelta(hours=1), timeout=0.01)
    soon = datetime.now(NY) + timedelta(milliseconds=20)
    assert clock.wait_until(soon, timeout=30)
    assert clock.now() >= soon
    # A naive target is read as exchange-local wall time.
    assert clock.wait_until(datetime.now(NY).replace(tzinfo=None) - timedelta(seconds=1), timeout=0)


def _in_thread(fn: object) -> object:
    out: list[object] = []
    t = threading.Thread(target=lambda: out.append(fn()))  # type: ignore[operator]
    t.start()
    t.join(10)
    return out[0]


def test_a_held_clock_shows_other_threads_the_consumers_time() -> None:
    clock = TimeProvider(start=T0)
    clock.hold(follow=True)  # this thread is the writer; nobody consumes yet: others follow it
    clock.advance_to(T0 + timedelta(minutes=5))
    assert _in_thread(clock.now) == T0 + timedelta(minutes=5)
    clock.follow(False)  # a consumer attached: others go back to where it stands
    assert _in_thread(clock.now) == T0
    assert clock.now() == T0 + timedelta(minutes=5)  # the writer reads its own time
    waiter = threading.Thread(target=lambda: clock.wait_until(T0 + timedelta(minutes=2), timeout=10))
    waiter.start()
    clock.show(T0 + timedelta(minutes=2))  # the consumer reached an item known then: the waiter wakes
    waiter.join(10)
    assert not waiter.is_alive()
    assert _in_thread(clock.now) == T0 + timedelta(minutes=2)
    assert "09:32" in _in_thread(lambda: repr(clock))  # type: ignore[operator]
    clock.advance_to(T0 + timedelta(minutes=6))
    assert _in_thread(clock.now) == T0 + timedelta(minutes=2)
    clock.release()
    assert _in_thread(clock.now) == T0 + timedelta(minutes=6)
    clock.show(T0)  # after release a late show changes nothing
    assert _in_thread(clock.now) == T0 + timedelta(minutes=6)


def test_a_clock_held_before_it_was_set_is_unset_for_readers() -> None:
    clock = TimeProvider()
    clock.hold(follow=False)
    clock.advance_to(T0)
    assert clock.is_set
    assert _in_thread(lambda: clock.is_set) is False
    with pytest.raises(ClockError):
        _in_thread_raise(clock.now)
    clock.release()
    assert _in_thread(clock.now) == T0


def _in_thread_raise(fn: object) -> None:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            fn()  # type: ignore[operator]
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=run)
    t.start()
    t.join(10)
    if errors:
        raise errors[0]


def test_on_advance_listeners_run_after_each_move_until_unregistered() -> None:
    t0 = datetime(2024, 1, 2, 9, 30)
    clock = TimeProvider("backtest", start=t0)
    seen: list[tuple[str, datetime, datetime]] = []
    off_a = clock.on_advance(lambda t: seen.append(("a", t, clock.now())))
    clock.on_advance(lambda t: seen.append(("b", t, clock.now())))
    clock.advance_to(t0)  # not a move
    clock.advance_to(t0 + timedelta(minutes=1))
    off_a()
    off_a()  # idempotent
    clock.advance_to(t0 + timedelta(minutes=2))
    t1, t2 = t0 + timedelta(minutes=1), t0 + timedelta(minutes=2)
    # In registration order, after the move (the listener reads the new time).
    assert seen == [("a", t1, t1), ("b", t1, t1), ("b", t2, t2)]
