"""The replay summary's volume (`SymbolSummary.volume`, the ``--json`` ``"volume"``): an exact `int` for
whole-unit volumes, the correctly rounded `math.fsum` of the bars' volumes for fractional units (crypto), not
the arrival-order float sum with noise in its last digits. And the store's own ``session_volume`` (and its
derived bars' volumes) held to the same standard: see also ``test_store_volume_exact.py``."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import math
from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessiondata import Bar, DataManager, InMemoryBarRepository, SessionData
from sessiondata._cli import main
from sessiondata._csvio import write_csv_bars

OPEN = datetime(2024, 3, 5, 9, 30)
M = timedelta(minutes=1)

# Volumes with 8 decimals (a coin's smallest unit), as text: what a crypto feed prints.
satoshis = st.integers(1, 10**12).map(lambda n: f"{Decimal(n) / 10**8:.8f}")


def _bars(volumes: list[float] | list[int]) -> list[Bar]:
    return [Bar("X", OPEN + i * M, 10.0, 10.5, 9.5, 10.0, v) for i, v in enumerate(volumes)]


def _summary_volume(volumes: list[float] | list[int]) -> float:
    report = DataManager(SessionData(), repository=InMemoryBarRepository(_bars(volumes))).replay(["X"])
    return report.last_by_symbol()["X"].volume


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=st.lists(satoshis, min_size=1, max_size=390))
def test_fractional_volumes_sum_correctly_rounded(texts: list[str]) -> None:
    volumes = [float(t) for t in texts]
    got = _summary_volume(volumes)
    assert type(got) is float
    assert got == math.fsum(volumes)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(volumes=st.lists(st.integers(0, 2**62), min_size=1, max_size=390))
def test_whole_volumes_sum_to_an_exact_int(volumes: list[int]) -> None:
    # Beyond 2**53 a float sum would round: the int sum must not.
    got = _summary_volume(volumes)
    assert type(got) is int
    assert got == sum(volumes)


def test_ten_tenths_are_one() -> None:
    # The arrival-order float sum of ten 0.1 is 0.9999999999999999.
    assert _summary_volume([0.1] * 10) == 1.0


def test_cli_json_volume_of_fractional_units(tmp_path: Path) -> None:
    write_csv_bars(tmp_path / "BTC_1m.csv", _bars([0.1] * 10 + [0.2] * 5))
    out, err = io.StringIO(), io.StringIO()
    code = main(
        ["replay", "--csv-dir", str(tmp_path), "--calendar", "regular", "--json", "--no-progress"],
        out=out,
        err=err,
    )
    assert code == 0, err.getvalue()
    got = json.loads(out.getvalue())
    assert got["symbols"]["BTC"]["volume"] == 2.0
    assert got["sessions"][0]["symbols"]["BTC"]["volume"] == 2.0


@pytest.mark.filterwarnings("ignore:.*deprecated.*:Warning")
@pytest.mark.skipif(
    importlib.util.find_spec("exchange_calendars") is None,
    reason="exchange_calendars not installed (optional extra sessiondata[calendars])",
)
def test_cli_json_volume_of_btc_eur(real_data: Path) -> None:
    folder = real_data / "quantconnect_lean_overnight"
    per_day: dict[str, list[str]] = defaultdict(list)
    with (folder / "BTCEUR_1m.csv").open() as f:
        for row in csv.DictReader(f):
            per_day[row["timestamp"][:10]].append(row["volume"])
    out, err = io.StringIO(), io.StringIO()
    argv = ["replay", "--csv-dir", str(folder), "--symbols", "BTCEUR", "--calendar", "24/7", "--json"]
    assert main([*argv, "--no-progress"], out=out, err=err) == 0, err.getvalue()
    sessions = json.loads(out.getvalue())["sessions"]
    got = {s["date"]: s["symbols"]["BTCEUR"]["volume"] for s in sessions}
    assert got == {d: math.fsum(map(float, v)) for d, v in per_day.items()}
    # What a person reads: the traded amounts' exact sum, to the satoshi (was 2297.371209460003).
    assert got["2018-04-05"] == 2297.37120946
    assert all(float(sum(map(Decimal, v))) == got[d] for d, v in per_day.items())


def test_store_session_volume_of_fractional_units_is_correctly_rounded() -> None:
    store = SessionData()
    volumes = [0.1] * 10
    store.add_bars_batch("X", _bars(volumes))
    assert store.get_session_metrics("X")["session_volume"] == math.fsum(volumes)


def test_store_session_volume_of_whole_units_is_exact() -> None:
    store = SessionData()
    volumes = [2**62, 1, 3, 2**61]
    for bar in _bars(volumes):
        store.add_bar("X", bar)
    store.add_bar("X", Bar("X", OPEN + M, 10.0, 10.5, 9.5, 10.0, 7))  # a correction: 1 -> 7
    got = store.get_session_metrics("X")["session_volume"]
    assert type(got) is int
    assert got == 2**62 + 7 + 3 + 2**61
