"""The `sessiondata` command line, end to end through its real entry points, in subprocesses.

Every run is ``[sys.executable, "-m", "sessiondata", ...]`` (one also through the ``sessiondata`` console
script installed next to the interpreter). ``replay --json`` output is checked against figures computed here
directly from the data files' regular-session rows (bars, open, high, low, close, volume, VWAP of the typical
price ``(h+l+c)/3``), the README's missing-minute counts, ``--drop-minutes`` fills, ``--extended-hours``
rows, and the equality of ``--db`` (after ``import``) with ``--csv-dir``. Every error path must exit 1 with
exactly one line on stderr and no traceback; a malformed command line exits 2.

Runs whose output several tests read are made once per module (``functools.cache`` on the arguments); the
whole file makes about 30 subprocess calls.
"""

from __future__ import annotations

import csv
import functools
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing
from datetime import date, datetime, time
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

ALL_SYMBOLS = ("AAPL", "AIG", "BAC", "SHY", "SPY", "TWX")
README_MISSING = {
    ("SHY", date(2008, 3, 7)): 57,
    ("SHY", date(2008, 3, 10)): 77,
    ("TWX", date(2014, 6, 6)): 3,
    ("AIG", date(2013, 10, 7)): 1,
}
CONTRACT_KEYS = {"bars", "gaps_found", "gaps_filled", "bar_quality", "open", "high", "low", "close", "volume"}
CONTRACT_KEYS |= {"vwap"}
TIMEOUT = 120.0  # per subprocess; only reached if the command hangs

Row = tuple[datetime, float, float, float, float, int]


# --------------------------------------------------------------------------------------------- helpers


@functools.cache
def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m sessiondata *args`` (cached: identical runs are made once)."""
    env = dict(os.environ)
    env.pop("PYTHONWARNINGS", None)
    return subprocess.run(
        [sys.executable, "-m", "sessiondata", *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=env,
        check=False,
    )


def ok_json(*args: str) -> dict[str, Any]:
    proc = cli(*args, "--json")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    body: dict[str, Any] = json.loads(proc.stdout)
    return body


def assert_one_line_error(proc: subprocess.CompletedProcess[str], status: int = 1) -> str:
    """Exit ``status``, no traceback, nothing on stdout, exactly one line on stderr; returns that line."""
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == status, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert proc.stdout == ""
    return lines[0]


@functools.cache
def read_days(path: Path) -> dict[date, tuple[Row, ...]]:
    """Rows of a ``timestamp,open,high,low,close,volume`` file, per local date, in file order."""
    out: dict[date, list[Row]] = {}
    with path.open(newline="") as fh:
        for r in csv.DictReader(fh):
            ts = datetime.fromisoformat(r["timestamp"])
            row = (
                ts,
                float(r["open"]),
                float(r["high"]),
                float(r["low"]),
                float(r["close"]),
                int(r["volume"]),
            )
            out.setdefault(ts.date(), []).append(row)
    return {d: tuple(rows) for d, rows in out.items()}


def regular(rows: tuple[Row, ...]) -> list[Row]:
    return [r for r in rows if time(9, 30) <= r[0].time() < time(16, 0)]


def check_figures(got: dict[str, Any], rows: list[Row], *, missing: int) -> None:
    """``got`` (one symbol's JSON figures) equals what ``rows`` give; ``missing`` regular minutes."""
    assert set(got) >= CONTRACT_KEYS, sorted(CONTRACT_KEYS - set(got))
    volume = sum(r[5] for r in rows)
    assert got["bars"] == len(rows)
    assert got["open"] == rows[0][1]
    assert got["high"] == max(r[2] for r in rows)
    assert got["low"] == min(r[3] for r in rows)
    assert got["close"] == rows[-1][4]
    assert got["volume"] == volume
    assert isinstance(got["volume"], int)
    assert got["vwap"] == pytest.approx(
        sum((r[2] + r[3] + r[4]) / 3 * r[5] for r in rows) / volume, rel=1e-12
    )
    assert isinstance(got["bar_quality"], float)
    assert got["bar_quality"] == pytest.approx(100 * (390 - missing) / 390)
    assert isinstance(got["gaps_found"], int)
    assert isinstance(got["gaps_filled"], int)


def lean(real_data: Path) -> Path:
    return real_data / "quantconnect_lean"


def lean_days(real_data: Path, symbol: str) -> dict[date, tuple[Row, ...]]:
    return read_days(lean(real_data) / f"{symbol}_1m.csv")


def sessions_by_date(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    sessions = body["sessions"]
    dates = [s["date"] for s in sessions]
    assert dates == sorted(dates)
    return {s["date"]: s["symbols"] for s in sessions}


def check_replay(real_data: Path, body: dict[str, Any], symbols: tuple[str, ...], days: set[date]) -> None:
    """Every (session, symbol) of ``body`` has the CSV figures; exactly the pairs with data are there."""
    by_date = sessions_by_date(body)
    expected_pairs = {(s, d) for s in symbols for d in lean_days(real_data, s) if d in days}
    got_pairs = {(s, date.fromisoformat(d)) for d, syms in by_date.items() for s in syms}
    assert got_pairs == expected_pairs
    for symbol, day in expected_pairs:
        figures = by_date[day.isoformat()][symbol]
        missing = README_MISSING.get((symbol, day), 0)
        check_figures(figures, regular(lean_days(real_data, symbol)[day]), missing=missing)
    # "symbols" holds each symbol's last session.
    assert set(body["symbols"]) == set(symbols)
    for symbol in symbols:
        last = max(d for s, d in expected_pairs if s == symbol)
        assert body["symbols"][symbol] == by_date[last.isoformat()][symbol]
    assert isinstance(body["bars_per_second"], float)
    assert body["bars_per_second"] > 0


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cli")


# ---------------------------------------------------------------------------------- the bundled sample


def bundled_csv() -> Path:
    return Path(str(resources.files("sessiondata") / "data" / "SPY_1m.csv"))


def test_replay_with_no_arguments_summarizes_the_bundled_sample() -> None:
    proc = cli("replay")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    days = read_days(bundled_csv())
    assert len(days) == 20
    last = max(days)
    rows = regular(days[last])
    lines = proc.stdout.splitlines()
    (row,) = [ln for ln in lines if ln.split() and ln.split()[0] == last.isoformat()]
    fields = row.split()
    assert "SPY" in fields
    assert str(len(rows)) in fields
    assert f"{sum(r[5] for r in rows):,}" in fields  # the last session's volume
    dated = {ln.split()[0] for ln in lines if ln.split() and ln.split()[0][:4].isdigit() and "-" in ln}
    assert {d.isoformat() for d in days} <= dated
    assert "bars/s" in proc.stdout


def test_replay_json_of_the_bundled_sample_matches_its_file() -> None:
    body = ok_json("replay")
    days = read_days(bundled_csv())
    by_date = sessions_by_date(body)
    assert list(by_date) == [d.isoformat() for d in sorted(days)]
    for day, rows in days.items():
        figures = by_date[day.isoformat()]["SPY"]
        check_figures(figures, regular(rows), missing=390 - len(regular(rows)))
        assert figures["gaps_found"] == 390 - len(regular(rows))
    assert body["symbols"]["SPY"] == by_date[max(days).isoformat()]["SPY"]
    assert body["bars_per_second"] > 0


def test_console_script_gives_the_same_figures() -> None:
    script = Path(sys.executable).with_name("sessiondata")
    if not script.exists():
        script_path = shutil.which("sessiondata")
        if script_path is None:
            pytest.skip("no sessiondata console script installed next to the interpreter")
        script = Path(script_path)
    proc = subprocess.run(
        [str(script), "replay", "--json"], capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["sessions"] == ok_json("replay")["sessions"]


# --------------------------------------------------------------------------------- replay of real data


@pytest.mark.realdata
def test_replay_csv_dir_json_matches_the_files(real_data: Path) -> None:
    body = ok_json("replay", "--csv-dir", str(lean(real_data)))
    every_day = {d for s in ALL_SYMBOLS for d in lean_days(real_data, s)}
    check_replay(real_data, body, ALL_SYMBOLS, every_day)
    for d, symbols in sessions_by_date(body).items():
        for symbol, figures in symbols.items():
            key = (symbol, date.fromisoformat(d))
            assert figures["gaps_found"] == README_MISSING.get(key, 0), key
            assert figures["gaps_filled"] == 0, key


@pytest.mark.realdata
def test_replay_chosen_symbols(real_data: Path) -> None:
    body = ok_json("replay", "--csv-dir", str(lean(real_data)), "--symbols", "twx,SHY")
    days = set(lean_days(real_data, "TWX")) | set(lean_days(real_data, "SHY"))
    check_replay(real_data, body, ("SHY", "TWX"), days)


@pytest.mark.realdata
def test_replay_chosen_dates(real_data: Path) -> None:
    days = {date(2013, 10, 9), date(2013, 10, 7)}
    body = ok_json(
        "replay",
        "--csv-dir",
        str(lean(real_data)),
        "--symbols",
        "SPY,AIG",
        "--dates",
        "2013-10-09,2013-10-07",
    )
    check_replay(real_data, body, ("AIG", "SPY"), days)
    assert body["symbols"]["AIG"]["gaps_found"] == 0  # the last session is 10-09, not 10-07
    assert sessions_by_date(body)["2013-10-07"]["AIG"]["gaps_found"] == 1


@pytest.mark.realdata
def test_replay_start_and_end(real_data: Path) -> None:
    body = ok_json(
        "replay",
        "--csv-dir",
        str(lean(real_data)),
        "--symbols",
        "AAPL,TWX",
        "--start",
        "2014-06-05",
        "--end",
        "2014-06-06",
    )
    check_replay(real_data, body, ("AAPL", "TWX"), {date(2014, 6, 5), date(2014, 6, 6)})


@pytest.mark.realdata
def test_replay_drop_minutes_are_found_and_filled(real_data: Path) -> None:
    drop = 3
    body = ok_json(
        "replay", "--csv-dir", str(lean(real_data)), "--symbols", "SHY,TWX", "--drop-minutes", str(drop)
    )
    days = set(lean_days(real_data, "TWX")) | set(lean_days(real_data, "SHY"))
    check_replay(real_data, body, ("SHY", "TWX"), days)  # the figures of the full data
    for d, symbols in sessions_by_date(body).items():
        for symbol, figures in symbols.items():
            key = (symbol, date.fromisoformat(d))
            assert figures["gaps_found"] == README_MISSING.get(key, 0) + drop, key
            assert figures["gaps_filled"] == drop, key


@pytest.mark.realdata
def test_replay_extended_hours_includes_pre_and_post_market_bars(real_data: Path) -> None:
    body = ok_json(
        "replay",
        "--csv-dir",
        str(lean(real_data)),
        "--symbols",
        "AIG",
        "--dates",
        "2013-10-07",
        "--extended-hours",
    )
    rows = lean_days(real_data, "AIG")[date(2013, 10, 7)]
    figures = body["symbols"]["AIG"]
    assert len(rows) == 433
    assert len(regular(rows)) == 389
    assert figures["bars"] == len(rows)
    assert figures["open"] == rows[0][1]
    assert figures["close"] == rows[-1][4]
    assert figures["gaps_found"] == 1


@functools.cache
def imported_db(real_data: Path, workdir: Path) -> tuple[Path, subprocess.CompletedProcess[str]]:
    db = workdir / "lean.db"
    files = [str(lean(real_data) / f"{s}_1m.csv") for s in ALL_SYMBOLS]
    return db, cli("import", *files, "--db", str(db))


@pytest.mark.realdata
def test_import_then_replay_db_equals_csv_dir(real_data: Path, workdir: Path) -> None:
    db, proc = imported_db(real_data, workdir)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    for symbol in ALL_SYMBOLS:
        (line,) = [ln for ln in proc.stdout.splitlines() if f"{symbol}_1m.csv" in ln]
        rows = sum(len(v) for v in lean_days(real_data, symbol).values())
        assert f"{rows} added" in line
        assert "0 rejected" in line
    from_db = ok_json("replay", "--db", str(db))
    from_csv = ok_json("replay", "--csv-dir", str(lean(real_data)))
    assert from_db["sessions"] == from_csv["sessions"]
    assert from_db["symbols"] == from_csv["symbols"]


@pytest.mark.realdata
def test_reimport_counts_duplicates(real_data: Path, workdir: Path) -> None:
    db, first = imported_db(real_data, workdir)
    assert first.returncode == 0, first.stderr
    proc = cli("import", str(lean(real_data) / "TWX_1m.csv"), "--db", str(db))
    assert proc.returncode == 0, proc.stderr
    assert "0 added" in proc.stdout
    assert "1200 duplicates" in proc.stdout


# ------------------------------------------------------------------------------------ import, bad rows

GOOD_ROW = "2013-10-07T09:{:02d}:00-04:00,10.0,10.5,9.5,10.25,100\n"


def bad_csv(directory: Path) -> Path:
    """A file whose line 4 (the header is line 1) has high < low."""
    path = directory / "BADX_1m.csv"
    text = "timestamp,open,high,low,close,volume\n" + GOOD_ROW.format(30) + GOOD_ROW.format(31)
    text += "2013-10-07T09:32:00-04:00,10.0,9.0,9.5,9.25,100\n" + GOOD_ROW.format(33)
    path.write_text(text)
    return path


def stored_count(db: Path) -> int:
    with closing(sqlite3.connect(db)) as conn, conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        return conn.execute("SELECT COUNT(*) FROM bars").fetchone()[0] if "bars" in tables else 0


def test_import_with_a_bad_row_is_all_or_nothing(tmp_path: Path) -> None:
    db = tmp_path / "bad.db"
    line = assert_one_line_error(cli("import", str(bad_csv(tmp_path)), "--db", str(db)))
    assert "line 4" in line
    assert not db.exists() or stored_count(db) == 0


def test_import_skip_bad_rows_reports_the_rejected_line(tmp_path: Path) -> None:
    db = tmp_path / "skip.db"
    proc = cli("import", str(bad_csv(tmp_path)), "--db", str(db), "--skip-bad-rows")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    (line,) = [ln for ln in proc.stdout.splitlines() if "BADX_1m.csv" in ln]
    assert "3 added" in line
    assert "1 rejected" in line
    assert "4" in line.split("rejected", 1)[1]
    assert stored_count(db) == 3


# ---------------------------------------------------------------------------------------- error paths


def corrupt_csv_dir(base: Path) -> Path:
    d = base / "corrupt"
    d.mkdir()
    (d / "ZZZ_1m.csv").write_text(
        "timestamp,open,high,low,close,volume\n2013-10-07T09:30:00-04:00,1,2,1,1.5,10\ngarbage,,\n"
    )
    return d


def junk_file(base: Path, name: str, data: bytes) -> Path:
    path = base / name
    path.write_bytes(data)
    return path


def foreign_sqlite(base: Path) -> Path:
    path = base / "foreign.db"
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("CREATE TABLE t (x)")
    return path


# (id, arguments built from the temporary directory and a CSV directory (the bundled sample's), text the line
# must have). None of them needs the real data: they run on a fresh clone too.
ERROR_CASES: list[tuple[str, Any, str]] = [
    ("missing-csv-dir", lambda t, r: ["replay", "--csv-dir", str(t / "nope")], "nope"),
    ("missing-db", lambda t, r: ["replay", "--db", str(t / "nope.db")], "nope.db"),
    (
        "missing-import-file",
        lambda t, r: ["import", str(t / "nope.csv"), "--db", str(t / "x.db")],
        "nope.csv",
    ),
    ("corrupt-csv", lambda t, r: ["replay", "--csv-dir", str(corrupt_csv_dir(t))], "line 3"),
    (
        "corrupt-import",
        lambda t, r: ["import", str(corrupt_csv_dir(t) / "ZZZ_1m.csv"), "--db", str(t / "x.db")],
        "line 3",
    ),
    ("not-a-database", lambda t, r: ["replay", "--db", str(junk_file(t, "a.db", b"hello\n"))], "a.db"),
    ("random-bytes-db", lambda t, r: ["replay", "--db", str(junk_file(t, "b.db", os.urandom(4096)))], "b.db"),
    ("foreign-sqlite", lambda t, r: ["replay", "--db", str(foreign_sqlite(t))], "foreign.db"),
    ("unknown-symbol", lambda t, r: ["replay", "--csv-dir", str(r), "--symbols", "NOPE"], "NOPE"),
    ("bad-date", lambda t, r: ["replay", "--csv-dir", str(r), "--dates", "2013-13-45"], "2013-13-45"),
    ("bad-start", lambda t, r: ["replay", "--csv-dir", str(r), "--start", "yesterday"], "yesterday"),
    ("end-without-start", lambda t, r: ["replay", "--csv-dir", str(r), "--end", "2013-10-07"], "--start"),
    ("no-data-on-date", lambda t, r: ["replay", "--csv-dir", str(r), "--dates", "2013-10-05"], "bars"),
    ("negative-drop", lambda t, r: ["replay", "--csv-dir", str(r), "--drop-minutes", "-1"], "drop"),
]


@pytest.mark.parametrize(("build", "needle"), [c[1:] for c in ERROR_CASES], ids=[c[0] for c in ERROR_CASES])
def test_errors_exit_1_with_one_line_and_no_traceback(build: Any, needle: str, tmp_path: Path) -> None:
    line = assert_one_line_error(cli(*build(tmp_path, bundled_csv().parent)))
    assert needle.lower() in line.lower()


@pytest.mark.parametrize(
    "args",
    [["replay", "--bogus"], ["frobnicate"], ["replay", "--csv-dir"]],
    ids=["option", "command", "value"],
)
def test_malformed_command_lines_exit_2(args: list[str]) -> None:
    proc = cli(*args)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""
