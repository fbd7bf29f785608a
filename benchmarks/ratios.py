"""What the benchmark modules share: how a ratio is declared, and the shape of the ``results`` fixture.

Every figure is a ratio of two per-operation times measured in the same run (the machines are shared and
noisy, so absolute times mean little); ``conftest.py`` collects the times and prints the declared ratios.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from pytest_benchmark.fixture import BenchmarkFixture


@dataclass(frozen=True)
class Ratio:
    """``numerator / denominator`` of two recorded per-operation times (see ``conftest.RatioSpec``)."""

    label: str
    numerator: str
    denominator: str
    target: tuple[str, float] | None = None
    stat: str = "median"
    note: str = ""


class Results(Protocol):
    """The ``results`` fixture of ``conftest.py`` (the run's collector), as the benchmarks use it."""

    @property
    def measurements(self) -> Mapping[str, Any]: ...
    @property
    def notes(self) -> dict[str, Any]: ...
    def expect(self, *ratios: Ratio) -> None: ...
    def record(self, name: str, benchmark: BenchmarkFixture, *, ops: int = 1, **info: Any) -> None: ...
