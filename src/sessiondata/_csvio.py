"""Reading and writing bar CSV files: ``timestamp,open,high,low,close,volume`` with ISO-8601 timestamps.

This is the one place that knows the file format; the repositories, the command line and the bundled sample
loader all go through it. The format (as in ``data/real/``)::

    timestamp,open,high,low,close,volume
    2013-10-07T09:30:00-04:00,167.43,167.52,167.41,167.44,816453

* The header is required and must name exactly these six columns in this order (surrounding blanks and
  letter case are ignored, a UTF-8 byte-order mark is allowed).
* ``timestamp`` is ISO-8601 as `datetime.fromisoformat` reads it (a trailing ``Z`` is accepted too). A UTC
  offset is kept exactly as written (as a fixed-offset `datetime.timezone`); timestamps without an offset
  are naive. One file must not mix the two.
* Every row is validated by the `Bar` rules. Blank lines are ignored; anything else that is not a valid
  row is an error naming the file and its 1-based line number (the header is line 1).
* Bytes that are not UTF-8 are decoded as U+FFFD, so a corrupt row fails as that row (with its line
  number) instead of aborting the whole read with a decoding error.

The symbol comes from the caller or from the file name: ``SYMBOL_anything.csv`` (or ``SYMBOL.csv``) gives
``SYMBOL``; a ``_<N>m`` part right after it (``SPY_1m.csv``, ``SPY_60m.csv``) names the bar interval in
minutes.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Union

import attrs

from ._models import Bar, InvalidDataError
from ._zones import shared_zone

__all__ = [
    "HEADER",
    "CsvBarReader",
    "CsvFormatError",
    "RejectedRow",
    "interval_from_filename",
    "read_csv_bars",
    "symbol_from_filename",
    "write_csv_bars",
]

HEADER: tuple[str, ...] = ("timestamp", "open", "high", "low", "close", "volume")
"""The required header, in order."""

PathLike = Union[str, "os.PathLike[str]"]  # a runtime alias must work on 3.10

_INTERVAL_PART = re.compile(r"(\d+)m", re.IGNORECASE)


class CsvFormatError(InvalidDataError):
    """A CSV file that is not a valid bar file: bad header, malformed or invalid row.

    ``path`` is the file (``None`` when reading a stream without a name) and ``line`` the 1-based line
    number of the offending line (the header is line 1). The message names both and the reason.

    Attributes:
        reason: What is wrong with the line, without the file and line number.
        path: The file, or `None` for a stream without a name.
        line: The 1-based line number (the header is line 1).
    """

    def __init__(self, reason: str, *, path: str | None, line: int) -> None:
        where = f"{path}, line {line}" if path is not None else f"line {line}"
        super().__init__(f"{where}: {reason}")
        self.reason = reason
        self.path = path
        self.line = line

    def __reduce__(self) -> tuple[object, ...]:  # keep pickling (e.g. across processes) working
        return (_rebuild_error, (self.reason, self.path, self.line))


def _rebuild_error(reason: str, path: str | None, line: int) -> CsvFormatError:
    return CsvFormatError(reason, path=path, line=line)


@attrs.frozen(slots=True)
class RejectedRow:
    """A row skipped by a lenient read: its 1-based line number and why it was rejected.

    Attributes:
        line: The 1-based line number of the row (the header is line 1).
        reason: Why the row was rejected.
    """

    line: int
    reason: str


def symbol_from_filename(path: PathLike) -> str:
    """The symbol named by a ``SYMBOL_*.csv`` (or ``SYMBOL.csv``) file name, upper-cased.

    ``SPY_1m.csv`` → ``"SPY"``. The symbol is everything before the first ``_``, so a symbol that itself
    contains ``_`` must be given explicitly. Raises `ValueError` when the name does not end in ``.csv`` or
    names no symbol. O(len(path)); pure, safe from any thread.
    """
    name = Path(path).name
    stem, dot, suffix = name.rpartition(".")
    if not dot or suffix.lower() != "csv":
        raise ValueError(f"cannot take a symbol from {name!r}: expected a SYMBOL_*.csv file name")
    symbol = stem.partition("_")[0].strip().upper()
    if not symbol:
        raise ValueError(f"cannot take a symbol from {name!r}: expected a SYMBOL_*.csv file name")
    return symbol


def interval_from_filename(path: PathLike) -> int | None:
    """The bar interval in minutes named by a ``SYMBOL_<N>m*.csv`` file name, or ``None`` when it names none.

    ``SPY_1m.csv`` → 1, ``SPY_60m.csv`` → 60, ``SPY.csv`` and ``SPY_2013.csv`` → ``None``. O(len(path)).
    """
    stem = Path(path).name.rpartition(".")[0]
    parts = stem.split("_")
    if len(parts) < 2:
        return None
    match = _INTERVAL_PART.fullmatch(parts[1])
    if match is None:
        return None
    interval = int(match.group(1))
    return interval if interval > 0 else None


def _parse_timestamp(text: str) -> datetime:
    # Python 3.10's fromisoformat does not read a trailing "Z"; later versions do, identically.
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    # The offset's shared zone object (the same value): a replay compares these bars with each other, with
    # other symbols' and with the store's bounds, and datetimes sharing a zone object compare fast.
    return shared_zone(datetime.fromisoformat(text))


def _parse_volume(text: str) -> float:
    # Integer volumes stay `int` so they round-trip and sum exactly; anything else must be a float.
    try:
        return int(text)
    except ValueError:
        return float(text)


class CsvBarReader:
    """A one-pass streaming reader of one bar CSV file (or open text stream), yielding validated `Bar`s.

    ``CsvBarReader(path, symbol=None, *, skip_bad_rows=False, check=None)``: the symbol defaults to the file
    name's (`symbol_from_filename`); ``check`` is the destination's own rule (e.g. SQLite's integer range): it
    returns why a valid bar cannot be taken, or ``None``, and such a row is bad like any other. Iterating
    yields the rows' bars in file order, one row in memory at a time.

    Strict (the default): the first bad row raises `CsvFormatError` with its line number. Lenient
    (``skip_bad_rows=True``): bad rows are skipped and recorded in ``rejected`` (line number and reason), as
    iteration reaches them; a bad or missing header is always an error. ``rows`` counts the data rows seen
    so far (good and bad, blank lines excluded).

    The file is opened when iteration starts and closed when it ends (or the iterator is closed). A stream
    passed in is read from its current position and never closed. Iterating is O(rows); a reader can be
    iterated once. Not thread-safe: use one reader per thread.
    """

    def __init__(
        self,
        source: PathLike | IO[str],
        symbol: str | None = None,
        *,
        skip_bad_rows: bool = False,
        check: Callable[[Bar], str | None] | None = None,
    ) -> None:
        if isinstance(source, (str, os.PathLike)):
            self.path: str | None = os.fspath(source)
            self._stream: IO[str] | None = None
        else:
            self.path = getattr(source, "name", None)
            if not isinstance(self.path, str):
                self.path = None
            self._stream = source
        if symbol is None:
            if self.path is None:
                raise ValueError("symbol is required when reading a stream without a file name")
            symbol = symbol_from_filename(self.path)
        if not isinstance(symbol, str) or not symbol.strip():
            raise ValueError(f"symbol must be a non-empty str, got {symbol!r}")
        self.symbol: str = symbol.strip().upper()
        self.skip_bad_rows = skip_bad_rows
        self._check = check
        self.rejected: list[RejectedRow] = []
        self.rows = 0
        self._started = False

    def __iter__(self) -> Iterator[Bar]:
        if self._started:
            raise RuntimeError("a CsvBarReader can be iterated only once")
        self._started = True
        if self._stream is not None:
            yield from self._read(self._stream)
            return
        assert self.path is not None
        # newline="" lets the csv module see the line endings; errors="replace": see the module docstring.
        with open(self.path, newline="", encoding="utf-8-sig", errors="replace") as fh:
            yield from self._read(fh)

    def _fail(self, line: int, reason: str) -> None:
        if not self.skip_bad_rows:
            raise CsvFormatError(reason, path=self.path, line=line)
        self.rejected.append(RejectedRow(line, reason))

    def _read(self, fh: IO[str]) -> Iterator[Bar]:
        reader = csv.reader(fh)
        path = self.path
        try:
            header = next(reader, None)
        except csv.Error as exc:
            raise CsvFormatError(
                f"unreadable header: {exc}", path=path, line=max(reader.line_num, 1)
            ) from exc
        if header is None:
            raise CsvFormatError(f"empty file, expected the header {','.join(HEADER)}", path=path, line=1)
        # A byte-order mark survives in streams we did not open ourselves.
        if header:
            header[0] = header[0].lstrip("\ufeff")
        if tuple(h.strip().lower() for h in header) != HEADER:
            raise CsvFormatError(
                f"expected the header {','.join(HEADER)!r}, got {','.join(header)!r}", path=path, line=1
            )
        symbol = self.symbol
        parse_ts = _parse_timestamp
        parse_volume = _parse_volume
        aware: bool | None = None
        while True:
            # The line the next row starts on: a quoted field may run over several lines (an unterminated
            # quote, to the end of the file), and the line to name is where the bad field starts.
            line = reader.line_num + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                self.rows += 1
                self._fail(line, f"malformed CSV: {exc}")
                continue
            if not row:
                continue  # a blank line
            self.rows += 1
            if len(row) != 6:
                if len(row) == 1 and not row[0].strip():
                    self.rows -= 1
                    continue  # a line of blanks
                if reader.line_num > line:  # one row over several lines: a quote opened and never closed
                    self._fail(line, f"a quoted field opens here and runs to line {reader.line_num}")
                else:
                    self._fail(line, f"expected 6 fields ({','.join(HEADER)}), got {len(row)}: {row!r}")
                continue
            ts_text, o, h, lo, c, v = row
            try:
                timestamp = parse_ts(ts_text)
            except ValueError:
                self._fail(line, f"timestamp: not an ISO-8601 date-time: {ts_text!r}")
                continue
            try:
                bar = Bar(symbol, timestamp, float(o), float(h), float(lo), float(c), parse_volume(v))
            except InvalidDataError as exc:
                self._fail(line, str(exc))
                continue
            except ValueError:
                for name, text in zip(HEADER[1:], row[1:], strict=True):
                    try:
                        float(text)
                    except ValueError:
                        self._fail(line, f"{name}: not a number: {text!r}")
                        break
                else:  # pragma: no cover - float() failed above, so one field must fail here too
                    self._fail(line, f"not a valid row: {row!r}")
                continue
            is_aware = timestamp.utcoffset() is not None
            if aware is None:
                aware = is_aware
            elif is_aware is not aware:
                kind = "has a UTC offset" if is_aware else "has no UTC offset"
                self._fail(line, f"timestamp {ts_text!r} {kind}, unlike the rows before it (do not mix them)")
                continue
            if self._check is not None:
                why = self._check(bar)
                if why is not None:
                    self._fail(line, why)
                    continue
            yield bar


def read_csv_bars(path: PathLike, symbol: str | None = None) -> list[Bar]:
    """All bars of one CSV file, in file order; the first bad row raises `CsvFormatError`.

    The symbol defaults to the file name's. O(rows) time and memory; safe from any thread.
    """
    return list(CsvBarReader(path, symbol))


def _format_number(value: float) -> str:
    # repr() of a float is its shortest round-tripping text; ints stay ints.
    return repr(value) if type(value) is float else str(value)


def write_csv_bars(target: PathLike | IO[str], bars: Iterable[Bar]) -> int:
    """Write the header and one row per bar, in the order given; returns the number of rows written.

    Timestamps are written with `datetime.isoformat` (offset kept), prices with the shortest text that
    reads back to the same float, so ``read_csv_bars`` returns bars equal to the ones written. The bars'
    symbols are not written (the file name carries the symbol). A path is created or overwritten; a
    stream is written to and left open. O(rows); not thread-safe on a shared stream.
    """

    def write(fh: IO[str]) -> int:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(HEADER)
        count = 0
        fmt = _format_number
        for bar in bars:
            if not isinstance(bar, Bar):
                raise InvalidDataError(f"expected a Bar, got {type(bar).__name__}: {bar!r}")
            writer.writerow(
                (
                    bar.timestamp.isoformat(),
                    fmt(bar.open),
                    fmt(bar.high),
                    fmt(bar.low),
                    fmt(bar.close),
                    fmt(bar.volume),
                )
            )
            count += 1
        return count

    if isinstance(target, (str, os.PathLike)):
        with open(target, "w", newline="", encoding="utf-8") as fh:
            return write(fh)
    return write(target)
