"""The command line as a newcomer and a hostile input see it: one-line errors for broken databases and values
SQLite cannot hold, an import that is all or nothing, a closed output pipe, the progress line and the summary
table on a terminal, ``--version``, ``import --help`` and the README's own commands.

In-process (`sessiondata._cli.main`) unless the behaviour needs a real process (a closed pipe, a read-only
mount). Nothing here depends on timing.
"""

from __future__ import annotations

import io
import json
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing
from datetime import datetime, timedelta
from pathlib import Path

import pytest

import sessiondata
from sessiondata import SqliteBarRepository
from sessiondata._cli import main
from sessiondata._sample import sample_csv_path

ROOT = Path(__file__).resolve().parents[1]
T0 = datetime(2013, 10, 7, 9, 30)


class Terminal(io.StringIO):
    """A stream that says it is a terminal, so the progress line draws."""

    def isatty(self) -> bool:
        return True


def run(*argv: str, err: io.StringIO | None = None) -> tuple[int, str, str]:
    out = io.StringIO()
    err = err if err is not None else io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def one_line_error(code: int, err: str) -> str:
    assert code == 1, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def csv_file(folder: Path, name: str, volumes: list[str], price: str = "10") -> Path:
    rows = ["timestamp,open,high,low,close,volume"]
    rows += [
        f"{(T0 + timedelta(minutes=i)).isoformat()},{price},{price},{price},{price},{v}"
        for i, v in enumerate(volumes)
    ]
    path = folder / name
    path.write_text("\n".join(rows) + "\n")
    return path


def stored(db: Path) -> dict[str, int]:
    with closing(sqlite3.connect(db)) as conn:
        return dict(conn.execute("SELECT symbol, COUNT(*) FROM bars GROUP BY symbol").fetchall())


def corrupt(db: Path) -> Path:
    """Every b-tree page after the first gets an unknown page type: SQLite reports a malformed image."""
    data = bytearray(db.read_bytes())
    for page in range(4096, len(data), 4096):
        data[page] = 0xFF
    db.write_bytes(bytes(data))
    return db


@pytest.fixture
def existing_db(tmp_path: Path) -> Path:
    db = tmp_path / "existing.db"
    with SqliteBarRepository(db) as repo:
        repo.import_csv(csv_file(tmp_path, "OLD_1m.csv", ["1", "2", "3"]))
    return db


# --- one-line errors ----------------------------------------------------------------------------------------


def test_a_corrupt_database_is_one_line_for_replay_and_import(tmp_path: Path) -> None:
    db = tmp_path / "big.db"
    with SqliteBarRepository(db) as repo:
        repo.import_csv(sample_csv_path())
    corrupt(db)
    line = one_line_error(*run("replay", "--db", str(db), "--no-progress")[::2])
    assert "big.db" in line
    assert "malformed" in line
    line = one_line_error(*run("import", str(csv_file(tmp_path, "NEW_1m.csv", ["1"])), "--db", str(db))[::2])
    assert "big.db" in line
    assert "nothing was imported" in line


def test_a_database_locked_past_the_busy_timeout_is_one_line(existing_db: Path, tmp_path: Path) -> None:
    new = csv_file(tmp_path, "NEW_1m.csv", ["1", "2"])
    with closing(sqlite3.connect(existing_db, isolation_level=None)) as other:
        other.execute("BEGIN EXCLUSIVE")  # another process writing
        code, _, err = run("import", str(new), "--db", str(existing_db), "--busy-timeout", "0.01")
        other.execute("ROLLBACK")
    line = one_line_error(code, err)
    assert "locked" in line
    assert "nothing was imported" in line
    assert stored(existing_db) == {"OLD": 3}


def test_busy_timeout_must_not_be_negative(existing_db: Path, tmp_path: Path) -> None:
    new = csv_file(tmp_path, "NEW_1m.csv", ["1"])
    code, _, err = run("import", str(new), "--db", str(existing_db), "--busy-timeout", "-1")
    assert "--busy-timeout" in one_line_error(code, err)


def test_a_twenty_digit_volume_is_a_line_numbered_error(tmp_path: Path) -> None:
    db = tmp_path / "new.db"
    big = csv_file(tmp_path, "BIG_1m.csv", ["100", "12345678901234567890", "300"])
    line = one_line_error(*run("import", str(big), "--db", str(db))[::2])
    assert "BIG_1m.csv, line 3" in line
    assert "64-bit" in line
    assert not db.exists()  # the database this command would have created is gone again


def test_skip_bad_rows_skips_a_twenty_digit_volume_and_keeps_the_other_files(tmp_path: Path) -> None:
    db = tmp_path / "new.db"
    big = csv_file(tmp_path, "BIG_1m.csv", ["100", "12345678901234567890", "300"])
    fine = csv_file(tmp_path, "FINE_1m.csv", ["1", "2"])
    code, out, err = run("import", str(big), str(fine), "--db", str(db), "--skip-bad-rows", "--json")
    assert code == 0, err
    body = json.loads(out)
    assert [(f["added"], f["rejected_lines"]) for f in body["files"]] == [(2, [3]), (2, [])]
    assert stored(db) == {"BIG": 2, "FINE": 2}


def test_drop_minutes_beyond_a_session_says_so() -> None:
    line = one_line_error(*run("replay", "--dates", "2011-01-03", "--drop-minutes", "500")[::2])
    assert "--drop-minutes 500" in line
    assert "390" in line
    code, out, err = run("replay", "--dates", "2011-01-03", "--drop-minutes", "389", "--json")
    assert code == 0, err
    assert json.loads(out)["symbols"]["SPY"]["bars"] == 390  # the upkeep filled all 389


# --- one import, all or nothing -----------------------------------------------------------------------------


def test_an_import_into_an_existing_database_is_all_or_nothing(existing_db: Path, tmp_path: Path) -> None:
    good = csv_file(tmp_path, "GOOD_1m.csv", ["1", "2"])
    bad = csv_file(tmp_path, "BAD_1m.csv", ["1", "-2"])
    line = one_line_error(*run("import", str(good), str(bad), "--db", str(existing_db))[::2])
    assert "BAD_1m.csv, line 3" in line
    assert "nothing was imported (an import is all or nothing)" in line
    assert stored(existing_db) == {"OLD": 3}  # GOOD, read first, was rolled back with BAD


class InterruptOnFirstFrame(Terminal):
    """Ctrl-C as the progress line draws its first frame: after the first file was read."""

    def __init__(self) -> None:
        super().__init__()
        self.pressed = False

    def write(self, text: str) -> int:
        if not self.pressed and text.startswith("\rimport"):
            self.pressed = True
            raise KeyboardInterrupt
        return super().write(text)


def test_ctrl_c_during_an_import_keeps_nothing_and_says_so(existing_db: Path, tmp_path: Path) -> None:
    good = csv_file(tmp_path, "GOOD_1m.csv", ["1", "2"])
    other = csv_file(tmp_path, "OTHER_1m.csv", ["1", "2"])
    err = InterruptOnFirstFrame()
    code, _, text = run("import", str(good), str(other), "--db", str(existing_db), err=err)
    assert code == 130
    last = text.splitlines()[-1]
    assert last == "sessiondata import: interrupted; nothing was imported (an import is all or nothing)"
    assert stored(existing_db) == {"OLD": 3}


def test_import_help_text(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["import", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "Load 1-minute bar CSV files" in text
    assert "all or nothing" in text
    assert "--busy-timeout" in text


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"sessiondata {sessiondata.__version__}"


# --- a closed output pipe -----------------------------------------------------------------------------------


class ClosedPipe(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_closed_pipe_ends_quietly_in_process() -> None:
    err = io.StringIO()
    code = main(["replay", "--dates", "2011-01-03", "--json"], out=ClosedPipe(), err=err)
    assert (code, err.getvalue()) == (141, "")


def test_a_closed_pipe_ends_quietly() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "sessiondata", "replay", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    proc.stdout.close()  # the reader went away (`| head -c 0`) before anything was written
    err = proc.stderr.read()
    proc.stderr.close()
    assert proc.wait(timeout=120) == 141
    assert err == ""


# --- what a person sees on a terminal -----------------------------------------------------------------------


def frames(err: str) -> list[str]:
    assert err.endswith("\n")
    assert err.count("\n") == 1, "the progress line must redraw in place, not scroll"
    return [f for f in err[:-1].split("\r") if f]


@pytest.mark.parametrize("columns", [50, 80, 200])
def test_the_progress_line_ends_at_100_and_fits_the_terminal(
    columns: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", str(columns))
    # 2011-01-28 is a Friday: the dates around it that hold no bars (Monday 31 does) are no sessions.
    code, _, err = run("replay", "--start", "2011-01-27", err=Terminal())
    assert code == 0, err
    shown = frames(err)
    assert all(len(f) < columns for f in shown)
    assert "100.0%" in shown[-1]
    assert "1,170 bars" in shown[-1]


def test_the_parallel_progress_line_ends_at_100(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "60")
    code, _, err = run("replay", "--start", "2011-01-27", "--workers", "1", err=Terminal())
    assert code == 0, err
    assert "100.0%" in frames(err)[-1]


def test_the_import_progress_line_ends_at_100(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "50")
    files = [str(csv_file(tmp_path, f"S{i}_1m.csv", ["1"])) for i in range(3)]
    code, _, err = run("import", *files, "--db", str(tmp_path / "p.db"), err=Terminal())
    assert code == 0, err
    shown = frames(err)
    assert "100.0%" in shown[-1]
    assert "3 files" in shown[-1]


def summary_lines(out: str) -> list[str]:
    return [ln for ln in out.splitlines() if ln.strip()]


def test_the_summary_fits_80_columns_and_shows_prices_as_traded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "csv"
    folder.mkdir()
    csv_file(folder, "SPY_1m.csv", ["100"] * 5, price="127.05")
    csv_file(folder, "NDX_1m.csv", ["7"] * 5, price="15234.5")
    monkeypatch.setenv("COLUMNS", "80")
    code, out, err = run("replay", "--csv-dir", str(folder), "--no-progress")
    assert code == 0, err
    # The source line names the folder whole (a path is copied, not read): it is as long as the path is,
    # so it alone may pass 80 columns when pytest's temporary folder has a long path.
    lines = out.splitlines()
    assert lines[0] == f"Replayed {folder}", out
    assert all(len(ln) <= 80 for ln in lines[1:]), out
    (spy,) = [ln.split() for ln in summary_lines(out) if " SPY " in f" {ln} "]
    (ndx,) = [ln.split() for ln in summary_lines(out) if " NDX " in f" {ln} "]
    assert "127.05" in spy
    assert "15234.5" in ndx
    assert re.search(r"columns hidden to fit 80: .*high, low", out)


def test_a_wide_terminal_shows_every_column(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    code, out, err = run("replay", "--dates", "2011-01-03", "--no-progress")
    assert code == 0, err
    header = next(ln for ln in out.splitlines() if ln.strip().startswith("date"))
    for name in ("open gaps", "quality %", "high", "low", "vwap", "derived"):
        assert name in header
    assert "hidden" not in out
    (row,) = [ln.split() for ln in out.splitlines() if ln.strip().startswith("2011-01-03")]
    assert row[7:11] == ["126.71", "127.6", "126.66", "127.05"]  # open, high, low, close as traded


# --- the README's commands, from the root of a checkout -----------------------------------------------------


def readme_commands() -> list[list[str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.findall(
        r"`(sessiondata (?:import|replay) --db[^`]*|sessiondata import [^`]*)`", " ".join(text.split())
    )
    return [shlex.split(c) for c in found]


def test_the_readme_import_and_replay_commands_work_from_the_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commands = readme_commands()
    assert [c[1] for c in commands] == ["import", "replay"]
    monkeypatch.chdir(ROOT)
    db = tmp_path / "bars.db"  # the README's bars.db, kept out of the checkout
    for command in commands:
        argv = [str(db) if a == "bars.db" else a for a in command[1:]]
        code, _, err = run(*argv, "--no-progress" if argv[0] == "replay" else "--json")
        assert code == 0, err
    assert stored(db) == {"SPY": 14180}


# --- a replay reads a repository on a read-only mount -------------------------------------------------------


def _read_only_mount_works() -> bool:
    unshare = shutil.which("unshare")
    if unshare is None or not sys.platform.startswith("linux"):
        return False
    probe = subprocess.run(
        [unshare, "-m", "sh", "-c", "mount --bind / /mnt && mount -o remount,ro,bind /mnt"],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


def in_read_only_mount(folder: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m sessiondata ARGV`` with ``folder`` bind-mounted read-only on itself (a private mount
    namespace: nothing outside the command sees it)."""
    script = (
        f"mount --bind {shlex.quote(str(folder))} {shlex.quote(str(folder))} && "
        f"mount -o remount,ro,bind {shlex.quote(str(folder))} && "
        + shlex.join([sys.executable, "-m", "sessiondata", *argv])
    )
    return subprocess.run(
        ["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, check=False, timeout=120
    )


@pytest.fixture(scope="module")
def read_only_mounts() -> None:
    if not _read_only_mount_works():
        pytest.skip("needs `unshare -m` and mount (Linux, with the privilege to make a mount namespace)")


@pytest.mark.usefixtures("read_only_mounts")
def test_replay_of_a_database_on_a_read_only_mount(tmp_path: Path) -> None:
    db = tmp_path / "bars.db"
    with SqliteBarRepository(db) as repo:
        repo.import_csv(sample_csv_path())
    proc = in_read_only_mount(tmp_path, "replay", "--db", str(db), "--dates", "2011-01-03", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["symbols"]["SPY"]["bars"] == 390


@pytest.mark.usefixtures("read_only_mounts")
def test_import_into_a_database_on_a_read_only_mount_is_one_line(tmp_path: Path) -> None:
    db = tmp_path / "bars.db"
    with SqliteBarRepository(db) as repo:
        repo.import_csv(csv_file(tmp_path, "OLD_1m.csv", ["1"]))
    new = csv_file(tmp_path, "NEW_1m.csv", ["1"])
    proc = in_read_only_mount(tmp_path, "import", str(new), "--db", str(db))
    line = one_line_error(proc.returncode, proc.stderr)
    assert "bars.db" in line
    assert stored(db) == {"OLD": 1}


# --- the rest of the command line's error paths, on what ships with the repository -------------------------


@pytest.mark.parametrize("derived", ["5,x", "1", "5,0"])
def test_bad_derived_intervals_are_usage_errors(derived: str) -> None:
    with pytest.raises(SystemExit) as done:
        run("replay", "--derived", derived)
    assert done.value.code == 2


def test_an_empty_csv_directory_has_no_symbols(tmp_path: Path) -> None:
    assert "no symbols found" in one_line_error(*run("replay", "--csv-dir", str(tmp_path))[::2])


def test_import_into_a_missing_directory(tmp_path: Path) -> None:
    new = csv_file(tmp_path, "NEW_1m.csv", ["1"])
    line = one_line_error(*run("import", str(new), "--db", str(tmp_path / "nope" / "x.db"))[::2])
    assert "no such directory" in line


def test_a_parallel_replay_of_a_date_without_bars() -> None:
    line = one_line_error(*run("replay", "--dates", "2011-01-01", "--workers", "1")[::2])
    assert "no bars" in line


def test_debug_shows_the_traceback_of_a_failed_import(tmp_path: Path) -> None:
    bad = csv_file(tmp_path, "BAD_1m.csv", ["-1"])
    with pytest.raises(Exception, match="nothing was imported") as caught:
        run("--debug", "import", str(bad), "--db", str(tmp_path / "x.db"))
    assert "line 2" in str(caught.value.__cause__)


class InterruptReplay(Terminal):
    def write(self, text: str) -> int:
        if text.startswith("\rreplay"):
            raise KeyboardInterrupt
        return super().write(text)


def test_ctrl_c_during_a_replay() -> None:
    err = InterruptReplay()
    code, _, text = run("replay", "--dates", "2011-01-03", err=err)
    assert code == 130
    assert text == "sessiondata: interrupted\n"


def test_derived_intervals_of_the_bundled_sample() -> None:
    code, out, err = run("replay", "--dates", "2011-01-03", "--derived", "5,30", "--json")
    assert code == 0, err
    assert json.loads(out)["symbols"]["SPY"]["derived_bars"] == {"5": 78, "30": 13}


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--start", "2011-02-15"], "no session dates"),
        (["--dates", "2011-01-01"], "no bars"),
    ],
)
def test_dates_without_data_in_the_bundled_sample(argv: list[str], needle: str) -> None:
    assert needle in one_line_error(*run("replay", *argv)[::2])
