"""The ``sessiondata`` command line (also ``python -m sessiondata``), built on the standard `argparse`.

``sessiondata replay`` replays 1-minute bars (the bundled SPY sample, a directory of CSVs, or a SQLite
repository) through the stream coordinator, the store and the upkeep thread, with a progress bar on a
terminal, then prints a per-symbol summary per session and the throughput (``--json`` for one JSON object).
``sessiondata import`` loads CSV files into a SQLite repository.

Errors (a missing path, a corrupt file, an unknown symbol, no data) print one line to stderr and exit 1
(``--debug`` shows the traceback); a malformed command line exits 2 (argparse's convention).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import sys
import time
import warnings
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any, TextIO

from ._calendar import ExchangeCalendar
from ._managers import DataManager, ReplayReport
from ._models import SessionDataError
from ._repository import BarRepository, CsvBarRepository, SqliteBarRepository
from ._sample import sample_csv_path
from ._store import SessionData

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
    installed: no false gaps on half days, at ~0.1 s to build it and dates it covers (about 20 years back)."""
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

    imp = sub.add_parser("import", help="load CSV files into a SQLite bar repository")
    imp.add_argument("files", nargs="+", type=Path, help="CSV files (timestamp,open,high,low,close,volume)")
    imp.add_argument("--db", type=Path, required=True, help="the SQLite file (created if missing)")
    imp.add_argument("--symbol", help="the symbol (default: from each file name, SYMBOL_*.csv)")
    imp.add_argument(
        "--skip-bad-rows", action="store_true", help="skip and count bad rows instead of failing"
    )
    imp.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


class _Progress:
    """A one-line progress display on a terminal's stderr; silent elsewhere."""

    def __init__(self, total: int, label: str, stream: TextIO, enabled: bool) -> None:
        self._total = max(total, 1)
        self._label = label
        self._stream = stream
        self._enabled = enabled and stream.isatty()
        self._done = 0
        self._shown = -1.0
        self._began = time.perf_counter()

    def advance(self, n: int = 1) -> None:
        self._done += n
        if not self._enabled:
            return
        now = time.perf_counter()
        if now - self._shown < 0.1 and self._done < self._total:
            return
        self._shown = now
        frac = min(1.0, self._done / self._total)
        bar = "#" * int(frac * 30)
        rate = self._done / max(now - self._began, 1e-9)
        self._stream.write(f"\r{self._label} [{bar:<30}] {frac:6.1%} {self._done:,} ({rate:,.0f}/s)")
        self._stream.flush()

    def close(self) -> None:
        if self._enabled:
            self._stream.write("\n")
            self._stream.flush()


def _repository(args: argparse.Namespace) -> tuple[BarRepository, str]:
    if args.db is not None:
        if not args.db.is_file():
            raise _CliError(f"no such database file: {args.db}")
        return SqliteBarRepository(args.db), str(args.db)
    if args.csv_dir is not None:
        if not args.csv_dir.is_dir():
            raise _CliError(f"no such directory: {args.csv_dir}")
        return CsvBarRepository(args.csv_dir), str(args.csv_dir)
    sample = sample_csv_path().parent
    return CsvBarRepository(
        sample
    ), "bundled sample (SPY 1-minute bars, January 2011, pyalgotrade, Apache-2.0)"


def _estimate(repo: BarRepository, symbols: Sequence[str], days: Sequence[date]) -> int:
    """Regular-session bars to expect, for the progress bar (390 per symbol and session)."""
    return max(1, 390 * len(symbols) * len(days))


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
    if args.workers is not None or args.scheduler is not None:
        report = _replay_parallel(args, repo, symbols, days, err)
        if not report.sessions:
            raise _CliError(f"no bars for {', '.join(symbols)} on the dates asked in {origin}")
        _emit_replay(report, origin, args, out)
        return 0
    if args.group_size is not None or args.retries:
        raise _CliError("--group-size and --retries apply only with --workers or --scheduler")
    progress = _Progress(
        _estimate(repo, symbols, days), "replay", err, enabled=not args.no_progress and not args.json
    )
    try:
        report = manager.replay(
            symbols,
            days,
            speed=args.speed,
            extended_hours=args.extended_hours,
            drop_minutes=args.drop_minutes,
            seed=args.seed,
            upkeep=not args.no_upkeep,
            on_item=lambda _: progress.advance(),
        )
    finally:
        progress.close()
    if not report.sessions:
        raise _CliError(f"no bars for {', '.join(symbols)} on the dates asked in {origin}")
    _emit_replay(report, origin, args, out)
    return 0


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
    progress = _Progress(
        len(days) * -(-len(symbols) // group), "sessions", err, enabled=not args.no_progress and not args.json
    )
    common: dict[str, Any] = {
        "group_size": args.group_size,
        "store_options": args.store_options,
        "extended_hours": args.extended_hours,
        "drop_minutes": args.drop_minutes,
        "seed": args.seed,
        "upkeep": not args.no_upkeep,
        "on_result": lambda _: progress.advance(),
    }
    began = time.perf_counter()
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
    finally:
        progress.close()
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


def _print_replay(report: ReplayReport, origin: str, args: argparse.Namespace, out: TextIO) -> None:
    hours = "extended hours" if args.extended_hours else "regular session"
    out.write(f"Replayed {origin}\n")
    out.write(
        f"{len(report.sessions)} session(s), {hours}, drop-minutes={report.drop_minutes} "
        f"(default 0), upkeep={'off' if args.no_upkeep else 'on'}\n"
        f"calendar: {args.calendar_label}\n\n"
    )
    columns = (
        "date", "symbol", "bars", "gaps", "filled", "open gaps", "quality %",
        "open", "high", "low", "close", "volume", "vwap", "derived",
    )  # fmt: skip
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
                    _fmt(s.open, ".4g"),
                    _fmt(s.high, ".4g"),
                    _fmt(s.low, ".4g"),
                    _fmt(s.close, ".4g"),
                    _fmt(s.volume, ",.0f"),
                    _fmt(s.vwap, ".4f"),
                    " ".join(f"{k}m:{v}" for k, v in s.derived_bars.items()),
                )
            )
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(columns)]
    out.write("  ".join(c.rjust(w) for c, w in zip(columns, widths, strict=True)).rstrip() + "\n")
    out.write("  ".join("-" * w for w in widths) + "\n")
    for r in rows:
        out.write("  ".join(v.rjust(w) for v, w in zip(r, widths, strict=True)).rstrip() + "\n")
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
    if not args.db.parent.is_dir():
        raise _CliError(f"no such directory for the database: {args.db.parent}")
    results: list[tuple[Path, Any]] = []
    created = not args.db.exists()
    try:
        _import_files(args, results, err)
    except BaseException:
        if created:  # leave no half-made database behind
            for suffix in ("", "-wal", "-shm"):
                Path(f"{args.db}{suffix}").unlink(missing_ok=True)
        raise
    return _report_import(args, results, out)


def _import_files(args: argparse.Namespace, results: list[tuple[Path, Any]], err: TextIO) -> None:
    with SqliteBarRepository(args.db) as repo:
        progress = _Progress(len(args.files), "import", err, enabled=not args.json)
        try:
            for path in args.files:
                report = repo.import_csv(path, args.symbol, skip_bad_rows=args.skip_bad_rows)
                results.append((path, report))
                progress.advance()
        finally:
            progress.close()


def _report_import(args: argparse.Namespace, results: list[tuple[Path, Any]], out: TextIO) -> int:
    if args.json:
        json.dump(
            {
                "db": str(args.db),
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
    out.write(f"{total} bars added to {args.db}\n")
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
    """Run the command line; returns the exit status (0 ok, 1 error, 2 bad command line)."""
    out = out or sys.stdout
    err = err or sys.stderr
    args = _parser().parse_args(argv)
    _configure_logging(args.debug, err)
    try:
        if args.command == "replay":
            return _replay(args, out, err)
        return _import(args, out, err)
    except (_CliError, SessionDataError, OSError, ValueError) as exc:
        if args.debug:
            raise
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        err.write(f"sessiondata {args.command}: error: {message}\n")
        return 1
    except KeyboardInterrupt:
        err.write("sessiondata: interrupted\n")
        return 130
