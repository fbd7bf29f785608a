"""Defects a first-time user met in the command line (the user trial): each test failed before its fix."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from sessiondata._cli import main
from sessiondata._cli_view import format_volume


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def _crypto_csv(folder: Path) -> Path:
    """Two minutes of a coin traded in fractions of a unit: 0.25 + 0.125 = 0.375 units in the session."""
    folder.mkdir()
    (folder / "BTC_1m.csv").write_text(
        "timestamp,open,high,low,close,volume\n"
        "2018-04-04T09:30:00-04:00,6060.00,6060.00,6048.83,6049.68,0.25\n"
        "2018-04-04T09:31:00-04:00,6049.68,6049.69,6045.03,6045.03,0.125\n"
    )
    return folder


def test_the_summary_shows_a_fractional_volume_as_traded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before: the table printed the volume with ",.0f", so a session of 0.375 BTC read "0".
    monkeypatch.setenv("COLUMNS", "200")
    folder = _crypto_csv(tmp_path / "coins")
    code, out, err = run("replay", "--csv-dir", str(folder), "--calendar", "regular", "--no-progress")
    assert code == 0, err
    row = next(line for line in out.splitlines() if " BTC " in line)
    assert " 0.375 " in row


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (111_998_202, "111,998,202"),
        (2_000.0, "2,000"),
        (0.375, "0.375"),
        (2014.8658028399993, "2,014.86580284"),  # a float sum's last-digit noise is not shown
        (None, "-"),
    ],
)
def test_format_volume(value: float | None, text: str) -> None:
    assert format_volume(value) == text


@pytest.mark.parametrize("symbols", ["", ",", " , "])
def test_symbols_naming_no_symbol_is_an_error_not_every_symbol(symbols: str) -> None:
    # Before: `--symbols ""` (say, an unset shell variable) silently replayed every symbol of the source.
    code, out, err = run("replay", "--symbols", symbols, "--dates", "2011-01-03", "--no-progress")
    assert (code, out) == (1, "")
    assert err == "sessiondata replay: error: --symbols names no symbol (give e.g. --symbols SPY,AIG)\n"


def test_a_source_of_hourly_bars_only_says_it_has_no_one_minute_bars(tmp_path: Path) -> None:
    # Before: "unknown symbol 'SPY': the repository holds no bars for it", about a file named SPY_60m.csv.
    folder = tmp_path / "hourly"
    folder.mkdir()
    (folder / "SPY_60m.csv").write_text(
        "timestamp,open,high,low,close,volume\n2013-10-04T09:00:00-04:00,167.74,168.27,167.53,168.18,10924334\n"
    )
    code, out, err = run("replay", "--csv-dir", str(folder), "--no-progress")
    assert (code, out) == (1, "")
    expected = "unknown symbol 'SPY': the repository holds no 1-minute bars for it"
    assert err == f"sessiondata replay: error: {expected}\n"
