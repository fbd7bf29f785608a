"""The ``sessiondata`` command line (also ``python -m sessiondata``), built on the standard `argparse`.

``sessiondata replay`` replays 1-minute bars (the bundled SPY sample, a directory of CSVs, a SQLite
repository or a Parquet dataset) through the stream coordinator, the store and the upkeep thread, with a
progress bar on a terminal, then prints a per-symbol summary per session and the throughput (``--json``
for one JSON object).
``sessiondata import`` loads CSV files into a SQLite repository (``--db``) or writes them as a Parquet
dataset (``--parquet``).

Errors (a missing path, a corrupt file or database, a locked or read-only database, an unknown symbol, no
data) print one line to stderr and exit 1 (``--debug`` shows the traceback); a malformed command line exits
2 (argparse's convention); Ctrl-C exits 130; a closed output pipe (``| head``) ends quietly with 141 (128 +
SIGPIPE, as other Unix tools). What is shown (progress line, summary table) lives in `_cli_view`.
"""

from __future__ import annotations

import argparse
import bisect
import importlib.util
import json
import logging
import os
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any, TextIO

import attrs

from . import __version__
from ._calendar import ExchangeCalendar, SessionClock
from ._cli_view import Column, Progress, format_price, format_volume, render_table, terminal_width
from ._csvio import CsvBarReader, interval_from_filename
from ._managers import DataManager, ReplayReport
from ._models import SessionDataError
from ._parquet import ParquetBarRepository
from ._repository import BarRepository, CsvBarRepository, ImportReport, SqliteBarRepository
from ._sample import sample_csv_path
from .core.store import SessionData

__all__ = ["main"]


class _CliError(Exception):
    """An error to report as one line with exit status 1."""


def _csv_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _date(text: str) -> date:
    """Parsed after the command line, so that a bad date is an error (exit 1), not a usage error (2)."""
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise _CliError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _intervals_arg(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(p) for p in _csv_list(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"intervals must be whole minutes, e.g. 5,15: {text!r}") from None
    if any(v < 2 for v in values):
        raise argparse.ArgumentTypeError(f"derived intervals must be >= 2 minutes: {text!r}")
    return values


_BUILTIN = "regular"


def _calendar(code: str | None) -> tuple[ExchangeCalendar | None, str]:
    """The store's ``calendar`` option for ``--calendar`` (``None``: the built-in calendar) and how the
    summary names it. By default real holidays and early closes (XNYS) when exchange_calendars is
    installed: no false gaps on half days, at ~0.7 s of start-up (importing exchange_calendars and pandas,
    ~0.15 s of it building the calendar) and dates it covers (about 20 years back)."""
    if code is None:
        code = "XNYS" if importlib.util.find_spec("exchange_calendars") is not None else _BUILTIN
    if code.lower() == _BUILTIN:
        return None, f"{_BUILTIN} (built-in: weekdays 09:30-16:00 America/New_York, no holidays)"
    try:
        with warnings.catch_warnings():  # exchange_calendars' own deprecation noise under newer pandas
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            calendar = ExchangeCalendar(code)
    except ModuleNotFoundError as exc:
        raise _CliError(f"--calendar {code}: {exc}") from None
    return calendar, f"{calendar.name} (exchange_calendars: holidays, early closes, its session hours)"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sessiondata",
        description="Replay and manage one trading session's 1-minute market data.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    replay = sub.add_parser(
        "replay",
        help="replay bars through the coordinator, store and upkeep thread, then summarize",
        description="Replay 1-minute bars (default: the bundled SPY sample, January 2011) through the stream "
        "coordinator, the store and the upkeep thread, and print a per-symbol summary per session.",
    )
    source = replay.add_mutually_exclusive_group()
    source.add_argument("--csv-dir", type=Path, help="a directory of SYMBOL_*.csv files")
    source.add_argument("--db", type=Path, help="a SQLite bar repository (see `sessiondata import`)")
    source.add_argument(
        "--parquet",
        type=Path,
        metavar="PATH",
        help="a Parquet file or dataset directory (needs sessiondata[parquet]; see `sessiondata import`)",
    )
    replay.add_argument("--symbols", type=_csv_list, help="comma-separated symbols (default: all)")
    dates = replay.add_mutually_exclusive_group()
    dates.add_argument("--dates", help="comma-separated session dates (YYYY-MM-DD)")
    dates.add_argument("--start", help="first session date (YYYY-MM-DD); alone: that date onwards")
    replay.add_argument("--end", help="last session date, inclusive (needs --start)")
    replay.add_argument(
        "--speed",
        type=float,
        default=None,
        help="simulated seconds per wall-clock second (default: as fast as possible)",
    )
    replay.add_argument(
        "--calendar",
        metavar="CODE",
        help="the exchange calendar: an exchange_calendars code (XNYS, CMES, 24/7, ...; needs "
        f"sessiondata[calendars]) or {_BUILTIN!r} (weekdays 09:30-16:00 New York, no holidays); default: "
        f"XNYS when exchange_calendars is installed, else {_BUILTIN!r}",
    )
    replay.add_argument("--extended-hours", action="store_true", help="replay pre- and post-market bars too")
    replay.add_argument(
        "--derived",
        type=_intervals_arg,
        default=(5, 15),
        help="derived bar intervals in minutes (default: 5,15)",
    )
    replay.add_argument(
        "--drop-minutes",
        type=int,
        default=0,
        help="drop N random regular-session minutes per symbol and session from the stream, for the upkeep "
        "thread to fill from the repository (default: 0)",
    )
    replay.add_argument("--seed", type=int, default=0, help="seed for --drop-minutes (default: 0)")
    replay.add_argument("--no-upkeep", action="store_true", help="do not run the data-upkeep thread")
    replay.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    replay.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    engine = replay.add_mutually_exclusive_group()
    engine.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="replay sessions on N local worker processes (1: in this process); see sessiondata.parallel",
    )
    engine.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="replay sessions on the Dask cluster at ADDRESS (needs sessiondata[dask])",
    )
    replay.add_argument(
        "--group-size",
        type=int,
        metavar="G",
        help="with --workers/--scheduler: symbols per task (default: all, one task per date)",
    )
    replay.add_argument("--retries", type=int, default=0, help="with --scheduler: Dask retries per task")

    _add_import_parser(sub)
    return parser


def _add_import_parser(sub: Any) -> None:
    """The ``import`` command's arguments (``sub``: the parser's subparsers action)."""
    imp = sub.add_parser(
        "import",
        help="load CSV files into a SQLite bar repository or a Parquet dataset",
        description="Load 1-minute bar CSV files (timestamp,open,high,low,close,volume, ISO-8601 timestamps) "
        "into a SQLite bar repository (for `sessiondata replay --db`) or a Parquet dataset (for `sessiondata "
        "replay --parquet`). An import into SQLite is all or nothing: if a file fails (or on Ctrl-C) none of "
        "the files is kept; bars already stored are counted as duplicates and left as they were. Into "
        "Parquet, each file is all or nothing.",
    )
    imp.add_argument("files", nargs="+", type=Path, help="CSV files (timestamp,open,high,low,close,volume)")
    target = imp.add_mutually_exclusive_group(required=True)
    target.add_argument("--db", type=Path, help="the SQLite file (created if missing)")
    target.add_argument(
        "--parquet",
        type=Path,
        metavar="OUT",
        help="a Parquet dataset directory to write, OUT/symbol=SYM/<file name>.parquet per file "
        "(created if missing; re-importing a file replaces its Parquet file; needs sessiondata[parquet])",
    )
    imp.add_argument(
        "--busy-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="with --db: how long to wait for another process writing the database (default: 30)",
    )
    imp.add_argument("--symbol", help="the symbol (default: from each file name, SYMBOL_*.csv)")
    imp.add_argument(
        "--skip-bad-rows", action="store_true", help="skip and count bad rows instead of failing"
    )
    imp.add_argument("--json", action="store_true", help="print one JSON object")


def _repository(args: argparse.Namespace) -> tuple[BarRepository, str]:
    if args.db is not None:
        if not args.db.is_file():
            raise _CliError(f"no such database file: {args.db}")
        # A replay only reads: read-only, so a file on a read-only mount (or another user's) replays too.
        return SqliteBarRepository(args.db, read_only=True), str(args.db)
    if args.parquet is not None:
        if not args.parquet.exists():
            raise _CliError(f"no such Parquet file or directory: {args.parquet}")
        try:
            return ParquetBarRepository(args.parquet), str(args.parquet)
        except ImportError as exc:  # the optional extra is missing: say which, in one line
            raise _CliError(str(exc)) from exc
    if args.csv_dir is not None:
        if not args.csv_dir.is_dir():
            raise _CliError(f"no such directory: {args.csv_dir}")
        return CsvBarRepository(args.csv_dir), str(args.csv_dir)
    sample = sample_csv_path().parent
    return CsvBarRepository(sample), "bundled sample (SPY 1m bars, Jan 2011, pyalgotrade, Apache-2.0)"


def _sessions_with_bars(repo: BarRepository, symbols: Sequence[str], days: Sequence[date]) -> list[date]:
    """The dates of ``days`` the repository holds bars on, when it can list them (else all of ``days``): the
    sessions the progress line counts (a neighbouring or closed day has nothing to replay)."""
    lister = getattr(repo, "dates", None)
    if not callable(lister):
        return list(days)
    held = {d for s in symbols for d in lister(s)}
    return [d for d in days if d in held] or list(days)


def _session_position(clock: SessionClock, sessions: Sequence[date]) -> Callable[[Any], float]:
    """The replay's fraction done at an item: sessions before its own, plus how far into its own regular
    session its timestamp is (before the open counts as 0, after the close as 1)."""

    def position(item: Any) -> float:
        ts = getattr(item, "timestamp", None)
        if ts is None:
            return 0.0
        local = ts if ts.tzinfo is None else ts.astimezone(clock.tz)
        day = local.date()
        index = bisect.bisect_left(sessions, day)
        hours = clock.hours(day)
        within = 0.0
        if hours is not None:
            open_minute, length = hours
            within = min(1.0, max(0.0, (local.hour * 60 + local.minute + 1 - open_minute) / length))
        return (index + within) / len(sessions)

    return position


def _replay(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if args.end is not None and args.start is None:
        raise _CliError("--end needs --start")
    chosen = None if args.dates is None else sorted({_date(d) for d in _csv_list(args.dates)})
    first = None if args.start is None else _date(args.start)
    last = None if args.end is None else _date(args.end)
    if first is not None and last is not None and last < first:
        raise _CliError(f"--end {last} is before --start {first}")
    if args.drop_minutes < 0:
        raise _CliError("--drop-minutes must be >= 0")
    repo, origin = _repository(args)
    try:
        return _replay_from(args, repo, origin, (chosen, first, last), out, err)
    finally:
        close = getattr(repo, "close", None)
        if callable(close):
            close()  # a SQLite repository's connections (one per thread that read it)


def _replay_from(
    args: argparse.Namespace,
    repo: BarRepository,
    origin: str,
    when: tuple[list[date] | None, date | None, date | None],
    out: TextIO,
    err: TextIO,
) -> int:
    chosen, first, last = when
    symbols = args.symbols
    if symbols is not None and not symbols:
        # An empty list (`--symbols ""`, an unset shell variable) must not silently mean every symbol.
        raise _CliError("--symbols names no symbol (give e.g. --symbols SPY,AIG)")
    if not symbols:
        lister = getattr(repo, "symbols", None)
        symbols = list(lister()) if callable(lister) else []
        if not symbols:
            raise _CliError(f"no symbols found in {origin}")
    calendar, args.calendar_label = _calendar(args.calendar)
    store = SessionData(derived_intervals=args.derived, calendar=calendar)
    # Workers build their own store: they get the code (SessionData's shorthand), not the built calendar.
    args.store_options = {"derived_intervals": args.derived, "calendar": calendar and calendar.name}
    manager = DataManager(store, repository=repo)
    days = manager.session_dates(symbols)
    if chosen is not None:
        days = chosen
    elif first is not None:
        days = [d for d in days if first <= d and (last is None or d <= last)]
    if not days:
        raise _CliError(f"no session dates to replay for {', '.join(symbols)} in {origin}")
    _check_drop_minutes(args.drop_minutes, store.session_clock, days)
    if args.workers is not None or args.scheduler is not None:
        report = _replay_parallel(args, repo, symbols, days, err)
        if not report.sessions:
            raise _CliError(f"no bars for {', '.join(symbols)} on the dates asked in {origin}")
        _emit_replay(report, origin, args, out)
        return 0
    if args.group_size is not None or args.retries:
        raise _CliError("--group-size and --retries apply only with --workers or --scheduler")
    sessions = _sessions_with_bars(repo, symbols, days)
    progress = Progress(
        len(sessions),
        "replay",
        err,
        enabled=not args.no_progress and not args.json,
        unit=" bars",
        position=_session_position(store.session_clock, sessions),
    )
    finished = False
    try:
        report = manager.replay(
            symbols,
            days,
            speed=args.speed,
            extended_hours=args.extended_hours,
            drop_minutes=args.drop_minutes,
            seed=args.seed,
            upkeep=not args.no_upkeep,
            on_item=progress.advance,
        )
        finished = True
    finally:
        progress.close(finished=finished)
    if not report.sessions:
        raise _CliError(f"no bars for {', '.join(symbols)} on the dates asked in {origin}")
    _emit_replay(report, origin, args, out)
    return 0


def _check_drop_minutes(drop: int, clock: SessionClock, days: Sequence[date]) -> None:
    """Refuse a ``--drop-minutes`` that leaves no regular-session bar to stream (it would otherwise end in
    a misleading "no bars on the dates asked")."""
    longest = max((h[1] for h in map(clock.hours, days) if h is not None), default=0)
    if longest and drop >= longest:
        raise _CliError(
            f"--drop-minutes {drop} would drop every regular-session minute "
            f"(the sessions asked have at most {longest} minutes)"
        )


def _emit_replay(report: ReplayReport, origin: str, args: argparse.Namespace, out: TextIO) -> None:
    if args.json:
        body = report.as_dict()
        body["source"] = origin
        body["calendar"] = args.calendar_label.split(" ", 1)[0]
        json.dump(body, out, default=str)
        out.write("\n")
    else:
        _print_replay(report, origin, args, out)


def _replay_parallel(
    args: argparse.Namespace, repo: BarRepository, symbols: Sequence[str], days: Sequence[date], err: TextIO
) -> ReplayReport:
    """The replay as independent session tasks on worker processes or a Dask cluster."""
    from .parallel import replay_many, to_replay_report  # lazy: plain replays never import it

    if args.workers is not None and args.workers < 1:
        raise _CliError("--workers must be >= 1")
    if args.group_size is not None and args.group_size < 1:
        raise _CliError("--group-size must be >= 1")
    if args.retries and args.scheduler is None:
        raise _CliError("--retries needs --scheduler")
    if args.speed is not None:
        raise _CliError("--speed does not apply to a parallel replay")
    group = args.group_size or len(symbols)
    progress = Progress(
        len(days) * -(-len(symbols) // group),
        "sessions",
        err,
        enabled=not args.no_progress and not args.json,
        unit=" tasks",
    )
    common: dict[str, Any] = {
        "group_size": args.group_size,
        "store_options": args.store_options,
        "extended_hours": args.extended_hours,
        "drop_minutes": args.drop_minutes,
        "seed": args.seed,
        "upkeep": not args.no_upkeep,
        "on_result": progress.advance,
    }
    began = time.perf_counter()
    finished = False
    try:
        if args.scheduler is not None:
            try:
                from distributed import Client
            except ModuleNotFoundError:
                raise _CliError("--scheduler needs Dask: pip install 'sessiondata[dask]'") from None
            with Client(args.scheduler, timeout="10s") as client:  # type: ignore[no-untyped-call]
                results = replay_many(repo, symbols, days, client=client, retries=args.retries, **common)
        else:
            results = replay_many(repo, symbols, days, workers=args.workers, **common)
        finished = True
    finally:
        progress.close(finished=finished)
    return to_replay_report(
        results,
        seconds=time.perf_counter() - began,
        drop_minutes=args.drop_minutes,
        extended_hours=args.extended_hours,
    )


def _fmt(value: Any, spec: str = "") -> str:
    if value is None:
        return "-"
    return format(value, spec)


# The summary's columns in table order, ranked by what matters most when the terminal cannot show them all:
# what was replayed and what the upkeep did first, then the session's prices, then the rest.
_SUMMARY_COLUMNS = (
    Column("date", 0), Column("symbol", 1), Column("bars", 2), Column("gaps", 3), Column("filled", 4),
    Column("open gaps", 10), Column("quality %", 5), Column("open", 8), Column("high", 9),
    Column("low", 9), Column("close", 6), Column("volume", 7), Column("vwap", 11), Column("derived", 12),
)  # fmt: skip


def _print_replay(report: ReplayReport, origin: str, args: argparse.Namespace, out: TextIO) -> None:
    hours = "extended hours" if args.extended_hours else "regular session"
    out.write(f"Replayed {origin}\n")
    out.write(
        f"{len(report.sessions)} session(s), {hours}, drop-minutes={report.drop_minutes} "
        f"(default 0), upkeep={'off' if args.no_upkeep else 'on'}\n"
        f"calendar: {args.calendar_label}\n\n"
    )
    rows: list[tuple[str, ...]] = []
    for session in report.sessions:
        for symbol, s in session.symbols.items():
            rows.append(
                (
                    session.date.isoformat(),
                    symbol,
                    str(s.bars),
                    str(s.gaps_found),
                    str(s.gaps_filled),
                    str(s.gaps_open),
                    _fmt(s.bar_quality, ".2f"),
                    format_price(s.open),
                    format_price(s.high),
                    format_price(s.low),
                    format_price(s.close),
                    format_volume(s.volume),
                    _fmt(s.vwap, ".4f"),
                    " ".join(f"{k}m:{v}" for k, v in s.derived_bars.items()),
                )
            )
    width = terminal_width()
    table, hidden = render_table(_SUMMARY_COLUMNS, rows, width)
    out.write(table)
    if hidden:
        out.write(f"({len(hidden)} columns hidden to fit {width}: {', '.join(hidden)})\n")
    out.write(
        f"\n{report.bars:,} bars in {report.seconds:.2f} s: {report.bars_per_second:,.0f} bars/s "
        f"(coordinator + store + derived bars + upkeep)\n"
    )
    if report.upkeep_faults:
        out.write(f"upkeep faults: {report.upkeep_faults} (see logs)\n")


def _import(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    for path in args.files:
        if not path.is_file():
            raise _CliError(f"no such file: {path}")
    if args.parquet is not None:
        return _import_parquet(args, out, err)
    if not args.db.parent.is_dir():
        raise _CliError(f"no such directory for the database: {args.db.parent}")
    if not args.busy_timeout >= 0:
        raise _CliError(f"--busy-timeout must be >= 0 seconds, got {args.busy_timeout}")
    created = not args.db.exists()
    try:
        results = _import_files(args, err)
    except BaseException as exc:
        if created:  # leave no half-made database behind
            for suffix in ("", "-wal", "-shm"):
                Path(f"{args.db}{suffix}").unlink(missing_ok=True)
        if isinstance(exc, (SessionDataError, OSError, ValueError, KeyboardInterrupt)):
            # One import is one transaction (SqliteBarRepository.import_csv_files): say that none was kept.
            raise _ImportFailed(exc) from exc
        raise
    return _report_import(args, results, out)


class _ImportFailed(Exception):
    """An import that failed or was interrupted, after its transaction was rolled back."""

    def __init__(self, cause: BaseException) -> None:
        text = str(cause).splitlines()[0] if str(cause) else type(cause).__name__
        what = "interrupted" if isinstance(cause, KeyboardInterrupt) else text
        super().__init__(f"{what}; nothing was imported (an import is all or nothing)")
        self.interrupted = isinstance(cause, KeyboardInterrupt)


def _import_files(args: argparse.Namespace, err: TextIO) -> list[tuple[Path, ImportReport]]:
    results: list[tuple[Path, ImportReport]] = []
    with SqliteBarRepository(args.db, busy_timeout=args.busy_timeout) as repo:
        progress = Progress(len(args.files), "import", err, enabled=not args.json, unit=" files")
        finished = False

        def read(path: Path, report: ImportReport) -> None:
            results.append((path, report))
            progress.advance(path)

        try:
            repo.import_csv_files(args.files, args.symbol, skip_bad_rows=args.skip_bad_rows, on_file=read)
            finished = True
        finally:
            progress.close(finished=finished)
    return results


def _import_parquet(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Each CSV file read whole (validated; all or nothing) and written as one Parquet file per symbol."""
    from ._parquet import write_parquet_bars  # lazy, like pyarrow itself

    results: list[tuple[Path, Any]] = []
    progress = Progress(len(args.files), "import", err, enabled=not args.json, unit=" files")
    finished = False
    try:
        for path in args.files:
            reader = CsvBarReader(path, args.symbol, skip_bad_rows=args.skip_bad_rows)
            bars = list(reader)
            try:
                report = write_parquet_bars(
                    args.parquet, bars, name=path.stem, interval=interval_from_filename(path) or 1
                )
            except ImportError as exc:  # the optional extra is missing: say which, in one line
                raise _CliError(str(exc)) from exc
            rejected = tuple(reader.rejected)
            results.append((path, attrs.evolve(report, rejected=len(rejected), rejected_rows=rejected)))
            progress.advance(path)
        finished = True
    finally:
        progress.close(finished=finished)
    return _report_import(args, results, out)


def _report_import(args: argparse.Namespace, results: list[tuple[Path, Any]], out: TextIO) -> int:
    target = args.db if args.db is not None else args.parquet
    if args.json:
        json.dump(
            {
                ("db" if args.db is not None else "parquet"): str(target),
                "files": [
                    {
                        "file": str(p),
                        "added": r.added,
                        "duplicates": r.duplicates,
                        "rejected": r.rejected,
                        "rejected_lines": list(r.rejected_lines),
                    }
                    for p, r in results
                ],
            },
            out,
        )
        out.write("\n")
        return 0
    for path, r in results:
        line = f"{path}: {r.added} added, {r.duplicates} duplicates, {r.rejected} rejected"
        if r.rejected:
            shown = ", ".join(str(n) for n in r.rejected_lines[:10])
            more = "" if r.rejected <= 10 else f" (+{r.rejected - 10} more)"
            line += f" (lines {shown}{more})"
        out.write(line + "\n")
    total = sum(r.added for _, r in results)
    out.write(f"{total} bars added to {target}\n")
    return 0


def _configure_logging(debug: bool, err: TextIO) -> None:
    """The command line is an application, so it decides where the library's log records go: to stderr
    with ``--debug``; otherwise nowhere (what matters is in the summary, and errors are one line)."""
    lib = logging.getLogger("sessiondata")
    for old in list(lib.handlers):
        if old.get_name() == _LOG_HANDLER_NAME:  # main() called again in one process (tests)
            lib.removeHandler(old)
    handler: logging.Handler
    if debug:
        handler = logging.StreamHandler(err)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        lib.setLevel(logging.DEBUG)
    else:
        handler = logging.NullHandler()
    handler.set_name(_LOG_HANDLER_NAME)
    lib.addHandler(handler)


_LOG_HANDLER_NAME = "sessiondata-cli"


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 error, 2 bad command line, 130 interrupted,
    141 output pipe closed)."""
    out = out or sys.stdout
    err = err or sys.stderr
    args = _parser().parse_args(argv)
    _configure_logging(args.debug, err)
    try:
        code = _replay(args, out, err) if args.command == "replay" else _import(args, out, err)
        out.flush()  # a closed pipe shows here, not at interpreter exit
        return code
    except BrokenPipeError:
        _silence_closed_stdout(out)
        return _EXIT_PIPE_CLOSED
    except _ImportFailed as exc:
        if args.debug:
            raise
        err.write(f"sessiondata import: {'' if exc.interrupted else 'error: '}{exc}\n")
        return 130 if exc.interrupted else 1
    except (_CliError, SessionDataError, OSError, ValueError) as exc:
        if args.debug:
            raise
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        err.write(f"sessiondata {args.command}: error: {message}\n")
        return 1
    except KeyboardInterrupt:
        err.write("sessiondata: interrupted\n")
        return 130


_EXIT_PIPE_CLOSED = 141  # 128 + SIGPIPE: what `yes | head` reports for `yes`


def _silence_closed_stdout(out: TextIO) -> None:
    """After the reader of our standard output went away (``| head``), point it at the null device so the
    interpreter's final flush does not fail again with a second "Broken pipe" message."""
    if out is not sys.stdout:
        return
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # pragma: no cover - no file descriptor behind stdout (embedded use)
        pass
