"""The sample data bundled in the package: SPY 1-minute bars, January 2011 (Apache-2.0, see data/NOTICE.md).

Only this file may ship in the package; the test-only QuantConnect/AlgoSeek files never do.
"""

from __future__ import annotations

from collections.abc import Iterator
from importlib import resources
from pathlib import Path

from ._csvio import CsvBarReader
from ._models import Bar

__all__ = ["SAMPLE_SYMBOL", "iter_sample_bars", "sample_csv_path"]

SAMPLE_SYMBOL = "SPY"


def sample_csv_path() -> Path:
    """Path of the bundled ``SPY_1m.csv`` (inside the installed package)."""
    return Path(str(resources.files("sessiondata") / "data" / "SPY_1m.csv"))


def iter_sample_bars() -> Iterator[Bar]:
    """The bundled bars in file (time) order, parsed and validated by the library's CSV reader. O(rows)."""
    return iter(CsvBarReader(sample_csv_path(), SAMPLE_SYMBOL))
