"""What the command line shows a person: the progress line on a terminal and the summary table.

Both fit the terminal they are shown on (`shutil.get_terminal_size`: the ``COLUMNS`` variable, else the
terminal, else 80 columns). The progress line redraws itself in place (a carriage return, never a new line,
so a narrow terminal does not scroll) and always ends on its last frame. The table keeps the columns that
matter most when the terminal is too narrow for all of them, and says which it left out. Prices are shown
as traded (the shortest text that reads back to the same float), never rounded to a few significant digits.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

__all__ = ["Column", "Progress", "format_price", "format_volume", "render_table", "terminal_width"]

_MIN_BAR = 10
_MAX_BAR = 30


def terminal_width() -> int:
    """The columns to fit: ``COLUMNS`` if set, else the terminal's, else 80. O(1)."""
    return max(20, shutil.get_terminal_size(fallback=(80, 24)).columns)


def format_price(value: float | None) -> str:
    """A price as traded: ``127.05`` stays ``127.05`` and ``15234.5`` stays ``15234.5``; ``-`` for none."""
    if value is None:
        return "-"
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def format_volume(value: float | None) -> str:
    """A volume with thousands separators: whole units as ``111,998,202``, fractional units (crypto) with
    up to 8 decimals, ``2,014.86580284`` (a coin's smallest unit; a float sum's last-digit noise is cut
    off); ``-`` for none. O(1)."""
    if value is None:
        return "-"
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.8f}".rstrip("0")


class Progress:
    """A one-line progress display on a terminal's stderr; silent elsewhere (a pipe, a file, or disabled).

    ``position`` maps what `advance` was last given to the fraction done (0..1); by default it is the count
    of `advance` calls over ``total``. A frame is drawn at most every 0.1 s, and `close` draws the last frame
    (at 100% when ``finished``) and ends the line. Called from one thread (the consumer's); O(1) a call.
    """

    def __init__(
        self,
        total: int,
        label: str,
        stream: TextIO,
        *,
        enabled: bool,
        unit: str = "",
        position: Callable[[Any], float] | None = None,
    ) -> None:
        self._total = max(total, 1)
        self._label = label
        self._unit = unit
        self._stream = stream
        self._enabled = enabled and stream.isatty()
        self._position = position
        self._done = 0
        self._last: Any = None
        self._shown = -1.0
        self._began = time.perf_counter()

    def advance(self, item: Any = None) -> None:
        """Count one step (``item`` is what `position` reads); draws a frame at most every 0.1 s."""
        self._done += 1
        self._last = item
        if not self._enabled:
            return
        now = time.perf_counter()
        if now - self._shown >= 0.1:
            self._shown = now
            self._draw(self._fraction(), now)

    def close(self, *, finished: bool = True) -> None:
        """Draw the last frame (100% when ``finished``, else where it stopped) and end the line."""
        if not self._enabled:
            return
        self._draw(1.0 if finished else self._fraction(), time.perf_counter())
        self._stream.write("\n")
        self._stream.flush()

    def _fraction(self) -> float:
        if self._position is not None and self._last is not None:
            return min(1.0, max(0.0, self._position(self._last)))
        return min(1.0, self._done / self._total)

    def _draw(self, fraction: float, now: float) -> None:
        rate = self._done / max(now - self._began, 1e-9)
        tail = f" {fraction:6.1%} {self._done:,}{self._unit} ({rate:,.0f}/s)"
        width = terminal_width() - 1  # the last column would wrap on some terminals
        room = width - len(self._label) - len(tail) - 3
        if room >= _MIN_BAR:
            size = min(_MAX_BAR, room)
            filled = "#" * int(fraction * size)
            line = f"{self._label} [{filled:<{size}}]{tail}"
        else:
            line = f"{self._label}{tail}"
        self._stream.write("\r" + line[:width].ljust(width))
        self._stream.flush()


class Column:
    """One column of `render_table`: its header, and its rank (0 first) when there is no room for all."""

    __slots__ = ("header", "rank")

    def __init__(self, header: str, rank: int) -> None:
        self.header = header
        self.rank = rank


def render_table(
    columns: Sequence[Column], rows: Sequence[Sequence[str]], width: int
) -> tuple[str, list[str]]:
    """The table as text (right-aligned, two spaces apart) in at most ``width`` columns, and the headers of
    the columns left out to fit, in table order. Columns are kept by rank; their order stays as given.
    O(rows x columns)."""
    widths = [max([len(c.header), *(len(r[i]) for r in rows)]) for i, c in enumerate(columns)]
    keep: set[int] = set()
    used = -2
    for i in sorted(range(len(columns)), key=lambda i: columns[i].rank):
        if used + 2 + widths[i] <= width or not keep:
            keep.add(i)
            used += 2 + widths[i]
    shown = [i for i in range(len(columns)) if i in keep]
    lines = ["  ".join(columns[i].header.rjust(widths[i]) for i in shown).rstrip()]
    lines.append("  ".join("-" * widths[i] for i in shown))
    lines += ["  ".join(r[i].rjust(widths[i]) for i in shown).rstrip() for r in rows]
    return "\n".join(lines) + "\n", [columns[i].header for i in range(len(columns)) if i not in keep]
