"""The command line called in-process (`sessiondata._cli.main`), for the paths the subprocess tests cover
end to end: output shapes, option handling and error reporting, measured by coverage too."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from sessiondata._cli import main


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_replay_bundled_sample_table_and_json() -> None:
    code, out, err = run("replay", "--start", "2011-01-28", "--drop-minutes", "2", "--no-progress")
    assert code == 0, err
    assert "2011-01-31" in out
    assert "SPY" in out
    assert "bars/s" in out
    code, out, _ = run("replay", "--dates", "2011-01-31", "--json")
    body = json.loads(out)
    assert body["symbols"]["SPY"]["bars"] == 390
    assert [s["date"] for s in body["sessions"]] == ["2011-01-31"]
    assert "bundled sample" in body["source"]


def test_replay_real_data_options(real_data: Path) -> None:
    lean = real_data / "quantconnect_lean"
    code, out, err = run(
        "replay",
        "--csv-dir",
        str(lean),
        "--symbols",
        "shy",
        "--start",
        "2008-03-07",
        "--end",
        "2008-03-07",
        "--derived",
        "5,30",
        "--no-upkeep",
        "--json",
    )
    assert code == 0, err
    body = json.loads(out)
    assert body["symbols"]["SHY"]["bars"] == 333
    assert body["symbols"]["SHY"]["derived_bars"] == {"5": 78, "30": 13}
    code, out, _ = run("replay", "--csv-dir", str(lean), "--symbols", "TWX", "--extended-hours", "--json")
    assert code == 0
    assert json.loads(out)["symbols"]["TWX"]["bars"] == 405  # 2014-06-09: pre- and post-market rows too


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["replay", "--dates", "2013-13-45"], "not a date"),
        (["replay", "--end", "2011-01-03"], "--start"),
        (["replay", "--start", "2011-01-05", "--end", "2011-01-03"], "before"),
        (["replay", "--drop-minutes", "-1"], "drop-minutes"),
        (["replay", "--symbols", "QQQ"], "QQQ"),
        (["replay", "--dates", "2011-02-05"], "no bars"),
        (["replay", "--db", "/nonexistent/bars.db"], "no such"),
        (["replay", "--csv-dir", "/nonexistent"], "no such"),
        (["import", "/nonexistent.csv", "--db", "x.db"], "no such file"),
    ],
)
def test_errors_are_one_line(argv: list[str], needle: str) -> None:
    code, _, err = run(*argv)
    assert code == 1
    assert len(err.strip().splitlines()) == 1
    assert needle in err


def test_debug_shows_the_traceback() -> None:
    with pytest.raises(Exception, match="QQQ"):
        run("--debug", "replay", "--symbols", "QQQ")


def test_import_then_replay(tmp_path: Path, real_data: Path) -> None:
    db = tmp_path / "bars.db"
    src = real_data / "quantconnect_lean" / "TWX_1m.csv"
    code, out, err = run("import", str(src), "--db", str(db))
    assert code == 0, err
    assert "1200 added" in out
    code, out, _ = run("import", str(src), "--db", str(db), "--json")
    assert json.loads(out)["files"][0]["duplicates"] == 1200
    code, out, _ = run("replay", "--db", str(db), "--dates", "2014-06-06", "--json")
    figures = json.loads(out)["symbols"]["TWX"]
    assert (figures["bars"], figures["gaps_found"], figures["gaps_filled"]) == (387, 3, 0)


def test_import_bad_row(tmp_path: Path) -> None:
    bad = tmp_path / "ABC_1m.csv"
    bad.write_text(
        "timestamp,open,high,low,close,volume\n"
        "2025-01-02T09:30:00,10,11,9,10.5,100\n"
        "2025-01-02T09:31:00,10,9,11,10.5,100\n"
    )
    db = tmp_path / "bars.db"
    code, _, err = run("import", str(bad), "--db", str(db))
    assert code == 1
    assert "3" in err
    assert not db.exists()  # a failed import leaves no half-made database
    code, out, _ = run("import", str(bad), "--db", str(db), "--skip-bad-rows")
    assert code == 0
    assert "1 added" in out
    assert "1 rejected" in out
    assert "lines 3" in out
