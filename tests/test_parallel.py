"""`sessiondata.parallel`: many sessions replayed at once, on a process pool or a Dask cluster.

On SPY/AIG/BAC bars of six sessions (each date a task), generated here and, when ``../shared`` is there, the
real QuantConnect ones: the results of one worker
in-process, a two-process pool and a two-process Dask `LocalCluster` are identical, field for field, user
function outputs included, and come back in date order; each task's summaries equal those of one long
`DataManager.replay` over all the dates, and a task's trailing days give its store the history the long
replay builds. A user function that fails on one date is reported with that date and its symbols while the
other dates complete (collected, or raised together after the others with ``on_error="raise"``); Dask's
``retries`` re-runs a task that failed once. Bad arguments fail before anything runs.

Worker processes import this module by name to call the user functions below, so they live at its top level.
Nothing here depends on timing; the Dask cluster is one per module, closed on teardown.
"""

from __future__ import annotations

import functools
import os
import pickle
import random
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessiondata import (
    CsvBarRepository,
    DataManager,
    InMemoryBarRepository,
    ReplayError,
    SessionData,
    SqliteBarRepository,
)
from sessiondata.parallel import (
    ParallelReplayError,
    RepositorySpec,
    SessionResult,
    plan_sessions,
    replay_many,
    to_replay_report,
)

SYMBOLS = ("SPY", "AIG", "BAC")
DATES = [date(2013, 10, d) for d in (4, 7, 8, 9, 10, 11)]
FAIL_ON = date(2013, 10, 9)
EDT = timezone(timedelta(hours=-4))
# Trailing history and dropped minutes make every task exercise the upkeep thread and the history roll.
OPTIONS: dict[str, Any] = {
    "store_options": {"historical_bars_trailing_days": 2, "derived_intervals": (5, 15)},
    "drop_minutes": 3,
    "seed": 7,
}


# --------------------------------------------------------------- user functions (run in worker processes)


def digest(store: SessionData, day: date, symbols: tuple[str, ...]) -> dict[str, Any]:
    """A per-session analysis: 5-minute bar count and last close, and the dates held as history."""
    per_symbol: dict[str, Any] = {}
    for symbol in symbols:
        snap = store.get_symbol_data(symbol)
        bars5 = store.get_bars(symbol, 5)
        history = snap.historical_bars.get(1, {}) if snap is not None else {}
        per_symbol[symbol] = {
            "bars_5m": len(bars5),
            "last_close_5m": bars5[-1].close if bars5 else None,
            "history": sorted(d.isoformat() for d in history),
            "history_bars": sum(len(v) for v in history.values()),
        }
    return {"date": day.isoformat(), "session": store.current_session_date, "per_symbol": per_symbol}


def fail_on_one_date(store: SessionData, day: date, symbols: tuple[str, ...]) -> str:
    if day == FAIL_ON:
        raise ValueError(f"analysis refused {day.isoformat()}")
    return day.isoformat()


def fail_once(marker_dir: str, store: SessionData, day: date, symbols: tuple[str, ...]) -> str:
    """Fails the first time it sees ``FAIL_ON`` (a marker file remembers it across processes)."""
    marker = Path(marker_dir) / f"seen-{day.isoformat()}"
    if day == FAIL_ON and not marker.exists():
        marker.touch()
        raise RuntimeError("transient failure")
    return day.isoformat()


# ------------------------------------------------------------------------------------------- fixtures


def write_generated(folder: Path) -> Path:
    """SPY/AIG/BAC CSVs on `DATES` in the real files' layout (-04:00 offsets, a few pre- and post-market
    bars, a missing minute a session), from a seeded random walk: what ships with the repository."""
    rng = random.Random(16)
    for n, symbol in enumerate(SYMBOLS):
        price = 20.0 + 60.0 * n
        rows = ["timestamp,open,high,low,close,volume"]
        for day in DATES:
            skip = rng.randrange(30, 380)  # a minute the feed never had: an open gap for the upkeep
            for minute in [*range(-5, 0), *range(390), *range(395, 400)]:
                if minute == skip:
                    continue
                stamp = datetime.combine(day, time(9, 30), tzinfo=EDT) + timedelta(minutes=minute)
                o = round(price, 2)
                c = round(max(1.0, price + rng.uniform(-0.1, 0.1)), 2)
                h, lo = round(max(o, c) + 0.01, 2), round(min(o, c) - 0.01, 2)
                rows.append(f"{stamp.isoformat()},{o},{h},{lo},{c},{rng.randrange(100, 50_000)}")
                price = c
        (folder / f"{symbol}_1m.csv").write_text("\n".join(rows) + "\n")
    return folder


# Every test runs on generated data (so the coverage gate holds on a fresh clone) and again on the real
# QuantConnect bars when ../shared is there (skipped with conftest's reason otherwise).
@pytest.fixture(scope="module", params=["generated", "real"])
def lean_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    if request.param == "generated":
        return write_generated(tmp_path_factory.mktemp("generated"))
    root: Path = request.getfixturevalue("real_data_root")
    return root / "quantconnect_lean"


@pytest.fixture(scope="module")
def inline_results(lean_dir: Path) -> list[SessionResult]:
    return replay_many(lean_dir, SYMBOLS, fn=digest, workers=1, **OPTIONS)


@pytest.fixture(scope="module")
def dask_client() -> Iterator[Any]:
    distributed = pytest.importorskip(
        "distributed", reason="Dask distributed is not installed (pip install 'sessiondata[dask]')"
    )
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


# ---------------------------------------------------------------------------------- engines agree


def test_inline_results_in_date_order_with_every_symbol(inline_results: list[SessionResult]) -> None:
    assert [r.date for r in inline_results] == DATES
    assert [r.value["date"] for r in inline_results] == [d.isoformat() for d in DATES]
    for r in inline_results:
        assert r.ok, r.error
        assert r.symbols == SYMBOLS
        assert set(r.summaries) == set(SYMBOLS)
        assert r.value["session"] == r.date  # fn saw the task's own session, not a trailing day
        assert all(s.date == r.date for s in r.summaries.values())
        assert all(s.dropped == 3 and s.gaps_filled >= 3 for s in r.summaries.values())


def test_process_pool_matches_inline(lean_dir: Path, inline_results: list[SessionResult]) -> None:
    pooled = replay_many(lean_dir, SYMBOLS, fn=digest, workers=2, **OPTIONS)
    assert pooled == inline_results


def test_dask_local_cluster_matches_inline(
    lean_dir: Path, inline_results: list[SessionResult], dask_client: Any
) -> None:
    on_dask = replay_many(lean_dir, SYMBOLS, fn=digest, client=dask_client, **OPTIONS)
    assert on_dask == inline_results


def test_sqlite_repository_matches_csv(
    lean_dir: Path, tmp_path: Path, inline_results: list[SessionResult]
) -> None:
    db = tmp_path / "bars.db"
    with SqliteBarRepository(db) as repo:
        for symbol in SYMBOLS:
            repo.import_csv(lean_dir / f"{symbol}_1m.csv")
    # The repository object itself is given: its worker processes reopen the file by path.
    with SqliteBarRepository(db) as repo:
        assert replay_many(repo, SYMBOLS, fn=digest, workers=2, **OPTIONS) == inline_results


# ------------------------------------------------------------------------------ what tasks compute


def test_summaries_equal_one_long_replay(lean_dir: Path) -> None:
    long = DataManager(SessionData(), repository=CsvBarRepository(lean_dir)).replay(
        SYMBOLS, DATES, drop_minutes=3, seed=7
    )
    results = replay_many(lean_dir, SYMBOLS, workers=1, drop_minutes=3, seed=7)
    assert [dict(r.summaries) for r in results] == [s.symbols for s in long.sessions]
    assert sum(r.bars for r in results) == long.bars
    report = to_replay_report(results, seconds=1.0, drop_minutes=3)
    assert report.sessions == long.sessions
    assert (report.bars, report.items) == (long.bars, long.items)


def test_trailing_days_give_the_history_of_one_long_replay(lean_dir: Path) -> None:
    store = SessionData(historical_bars_trailing_days=2)
    DataManager(store, repository=CsvBarRepository(lean_dir)).replay(SYMBOLS, DATES)
    results = replay_many(
        lean_dir, SYMBOLS, [DATES[-1]], fn=digest, workers=1,
        store_options={"historical_bars_trailing_days": 2},
    )  # fmt: skip
    (result,) = results
    assert result.trailing == (DATES[-3], DATES[-2])
    for symbol in SYMBOLS:
        snap = store.get_symbol_data(symbol)
        assert snap is not None
        expected = snap.historical_bars[1]
        got = result.value["per_symbol"][symbol]
        assert got["history"] == sorted(d.isoformat() for d in expected)
        assert got["history_bars"] == sum(len(v) for v in expected.values())


def test_the_first_dates_have_fewer_trailing_days(lean_dir: Path) -> None:
    tasks = plan_sessions(lean_dir, SYMBOLS, store_options={"historical_bars_trailing_days": 2})
    assert [t.trailing for t in tasks] == [
        (),
        (DATES[0],),
        *[(DATES[i - 2], DATES[i - 1]) for i in range(2, 6)],
    ]
    assert [t.days[-1] for t in tasks] == DATES


@settings(max_examples=12, deadline=None)
@given(
    group_size=st.integers(min_value=1, max_value=4),
    chosen=st.sets(st.sampled_from(DATES), min_size=1, max_size=3),
)
def test_groups_merge_to_the_all_symbol_result(
    lean_dir: Path, inline_results: list[SessionResult], group_size: int, chosen: set[date]
) -> None:
    results = replay_many(
        lean_dir, SYMBOLS, sorted(chosen), fn=digest, workers=1, group_size=group_size, **OPTIONS
    )
    groups = [SYMBOLS[i : i + group_size] for i in range(0, len(SYMBOLS), group_size)]
    assert [(r.date, r.symbols) for r in results] == [(d, g) for d in sorted(chosen) for g in groups]
    whole = {r.date: r for r in inline_results}
    for r in results:
        assert r.summaries == {s: whole[r.date].summaries[s] for s in r.symbols}
        assert r.value["per_symbol"] == {s: whole[r.date].value["per_symbol"][s] for s in r.symbols}


def test_a_date_without_bars_is_an_empty_result(lean_dir: Path) -> None:
    saturday = date(2013, 10, 5)
    (result,) = replay_many(lean_dir, SYMBOLS, [saturday], fn=fail_on_one_date, workers=1)
    assert result.ok
    assert (result.summaries, result.value, result.bars) == ({}, None, 0)


# ---------------------------------------------------------------------------------------- failures


@pytest.mark.parametrize("engine", ["inline", "pool", "dask"])
def test_a_failing_task_is_reported_and_the_others_complete(
    engine: str, lean_dir: Path, request: pytest.FixtureRequest
) -> None:
    how: dict[str, Any] = {"inline": {"workers": 1}, "pool": {"workers": 2}, "dask": {}}[engine]
    if engine == "dask":
        how["client"] = request.getfixturevalue("dask_client")
    results = replay_many(lean_dir, SYMBOLS, fn=fail_on_one_date, **how)
    assert [r.date for r in results] == DATES
    failed = [r for r in results if not r.ok]
    assert len(failed) == 1
    error = failed[0].error
    assert error is not None
    assert (error.date, error.symbols) == (FAIL_ON, SYMBOLS)
    assert error.exc_type == "builtins.ValueError"
    assert error.message == "analysis refused 2013-10-09"
    assert "fail_on_one_date" in error.traceback
    assert failed[0].summaries == {}
    assert failed[0].value is None
    assert [r.value for r in results if r.ok] == [d.isoformat() for d in DATES if d != FAIL_ON]


def test_on_error_raise_reports_after_the_others_complete(lean_dir: Path) -> None:
    seen: list[date] = []
    with pytest.raises(ParallelReplayError) as caught:
        replay_many(
            lean_dir, SYMBOLS, fn=fail_on_one_date, workers=1, on_error="raise",
            on_result=lambda r: seen.append(r.date),
        )  # fmt: skip
    assert seen == DATES  # the tasks after the failing one ran too
    assert [(f.date, f.symbols) for f in caught.value.failures] == [(FAIL_ON, SYMBOLS)]
    assert len(caught.value.results) == len(DATES)
    assert "2013-10-09 SPY,AIG,BAC: builtins.ValueError: analysis refused" in str(caught.value)
    with pytest.raises(ParallelReplayError):
        to_replay_report(caught.value.results, seconds=1.0)


def test_dask_retries_a_task_that_failed_once(lean_dir: Path, tmp_path: Path, dask_client: Any) -> None:
    flaky = functools.partial(fail_once, str(tmp_path))
    results = replay_many(lean_dir, SYMBOLS, fn=flaky, client=dask_client, retries=1)
    assert all(r.ok for r in results), [str(r.error) for r in results if r.error]
    assert [r.value for r in results] == [d.isoformat() for d in DATES]
    assert (tmp_path / f"seen-{FAIL_ON.isoformat()}").exists()  # it did fail once


def test_a_failure_pickles_with_its_details(lean_dir: Path) -> None:
    results = replay_many(lean_dir, SYMBOLS, [FAIL_ON], fn=fail_on_one_date, workers=1)
    copy = pickle.loads(pickle.dumps(results))
    assert copy == results
    assert copy[0].error is not None
    assert results[0].error is not None
    assert copy[0].error.traceback == results[0].error.traceback


# ------------------------------------------------------------------------------------ bad arguments


def test_bad_arguments_fail_before_anything_runs(lean_dir: Path) -> None:
    with pytest.raises(ReplayError, match="NOPE"):
        replay_many(lean_dir, ["SPY", "NOPE"], workers=1)
    with pytest.raises(ValueError, match="picklable"):
        replay_many(lean_dir, SYMBOLS, fn=lambda store, day, symbols: None, workers=2)
    with pytest.raises(ValueError, match="retries need a Dask client"):
        replay_many(lean_dir, SYMBOLS, retries=2)
    with pytest.raises(ValueError, match="workers"):
        replay_many(lean_dir, SYMBOLS, workers=0)
    with pytest.raises(ValueError, match="not both"):
        replay_many(lean_dir, SYMBOLS, workers=2, client=object())
    with pytest.raises(ValueError, match="more than once"):
        replay_many(lean_dir, ["SPY", "spy"], workers=1)
    with pytest.raises(ValueError, match="group_size"):
        replay_many(lean_dir, SYMBOLS, group_size=0)
    with pytest.raises(ValueError, match=r"datetime\.date"):
        plan_sessions(lean_dir, SYMBOLS, ["2013-10-04"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="store_options"):
        replay_many(lean_dir, SYMBOLS, workers=1, store_options={"no_such_option": 1})
    with pytest.raises(ValueError, match="on_error"):
        replay_many(lean_dir, SYMBOLS, on_error="ignore")  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError):
        replay_many(lean_dir / "missing", SYMBOLS)
    with pytest.raises(FileNotFoundError):
        RepositorySpec("sqlite", os.fspath(lean_dir / "missing.db")).open()


def test_a_client_must_be_a_dask_client(lean_dir: Path) -> None:
    pytest.importorskip("distributed", reason="Dask distributed is not installed")
    with pytest.raises(ValueError, match=r"distributed\.Client"):
        replay_many(lean_dir, SYMBOLS, client=object())


def test_in_memory_repository_runs_in_process_only(
    lean_dir: Path, inline_results: list[SessionResult]
) -> None:
    csv = CsvBarRepository(lean_dir)
    bars = []
    for symbol in SYMBOLS:
        first, last = csv.time_range(symbol) or (None, None)
        assert first is not None
        assert last is not None
        bars += csv.get_bars(symbol, first, last + (last - first))
    memory = InMemoryBarRepository(bars)
    assert replay_many(memory, SYMBOLS, fn=digest, workers=1, **OPTIONS) == inline_results
    with pytest.raises(ValueError, match="repository must be picklable"):
        replay_many(memory, SYMBOLS, workers=2)
