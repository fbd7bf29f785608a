"""Benchmark plumbing: collects ``bench_*.py``, records per-operation times, and reports ratios.

The machine is shared and noisy, so no absolute time is a target: every figure is a ratio between two
benchmarks of the same run (the store against a floor, or against the seed baseline, or against itself at
another size). Benchmarks call ``results.record(name, benchmark, ops=...)`` after running; ``bench_*.py``
modules declare their ratios (`RatioSpec`) with ``results.expect(...)``. At the end of the run,
`pytest_terminal_summary` prints a table of per-operation times and of every ratio with its target, and writes
both to ``benchmarks/results/latest.json`` (or ``--ratio-json PATH``).

Run (from the repository root; the normal ``pytest`` run never collects this folder, its testpaths are
``tests``)::

    .venv/bin/python -m pytest benchmarks -p no:cacheprovider --benchmark-only
"""

from __future__ import annotations

import json
import math
import operator
import os
import platform
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "latest.json"

_COMPARE: dict[str, Callable[[float, float], bool]] = {"<=": operator.le, ">=": operator.ge}


@dataclass(frozen=True)
class Measurement:
    """One benchmark's time per operation (seconds), from pytest-benchmark's per-round statistics."""

    name: str
    median: float
    mean: float
    min: float
    rounds: int
    ops_per_call: int
    info: dict[str, Any] = field(default_factory=dict)

    def stat(self, which: str) -> float:
        value: float = getattr(self, which)
        return value


class RatioSpec(Protocol):
    """What a ``bench_*.py`` module declares per ratio (``bench_store.Ratio`` is one).

    ``numerator / denominator`` of two recorded benchmarks' per-operation times; ``target`` is
    ``("<=", 10.0)`` or ``(">=", 4.0)``, or ``None`` for a figure that is only reported; ``stat`` picks the
    statistic (``median`` for latency, ``mean`` for throughput under contention).
    """

    @property
    def label(self) -> str: ...
    @property
    def numerator(self) -> str: ...
    @property
    def denominator(self) -> str: ...
    @property
    def target(self) -> tuple[str, float] | None: ...
    @property
    def stat(self) -> str: ...
    @property
    def note(self) -> str: ...


class Results:
    """The run's measurements and expected ratios. One per pytest session (see the ``results`` fixture).

    Used from the main thread only (pytest runs benchmarks one after another).
    """

    def __init__(self) -> None:
        self.measurements: dict[str, Measurement] = {}
        self.ratios: dict[str, RatioSpec] = {}
        self.notes: dict[str, Any] = {}

    def expect(self, *ratios: RatioSpec) -> None:
        """Declare ratios to report (idempotent: a label declared twice keeps the last)."""
        for r in ratios:
            self.ratios[r.label] = r

    def record(self, name: str, benchmark: BenchmarkFixture, *, ops: int = 1, **info: Any) -> None:
        """Record ``benchmark``'s statistics under ``name``, divided by ``ops`` operations per call.

        Does nothing when benchmarking is disabled (``--benchmark-disable``: the body ran once, untimed).
        """
        meta = benchmark.stats
        if meta is None or not meta.stats:
            return
        s = meta.stats
        self.measurements[name] = Measurement(
            name=name,
            median=s.median / ops,
            mean=s.mean / ops,
            min=s.min / ops,
            rounds=s.rounds,
            ops_per_call=ops,
            info=dict(info),
        )

    def computed(self) -> list[dict[str, Any]]:
        """Every declared ratio whose two benchmarks ran, with its value and verdict."""
        rows = []
        for r in self.ratios.values():
            num = self.measurements.get(r.numerator)
            den = self.measurements.get(r.denominator)
            if num is None or den is None:
                continue
            value = num.stat(r.stat) / den.stat(r.stat)
            # A CPU-time timer can read a whole round of a nanosecond operation as 0 on a busy virtual
            # machine (its thread clock advancing in steps): no ratio from that minimum, rather than a crash.
            value_min = num.min / den.min if den.min > 0 else math.nan
            verdict = "info"
            if r.target is not None:
                verdict = "met" if _COMPARE[r.target[0]](value, r.target[1]) else "MISSED"
            rows.append(
                {
                    "label": r.label,
                    "numerator": r.numerator,
                    "denominator": r.denominator,
                    "target": r.target,
                    "stat": r.stat,
                    "note": r.note,
                    "value": value,
                    "value_from_min": value_min,
                    "verdict": verdict,
                }
            )
        return rows


_RESULTS = pytest.StashKey[Results]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--ratio-json",
        default=str(DEFAULT_JSON),
        help=f"where to write the ratio table as JSON (default {DEFAULT_JSON}); '' to skip",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_RESULTS] = Results()


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Module | None:
    # The project's python_files keeps the default test_*.py; benchmark modules are named bench_*.py so the
    # test run can never pick them up. A path given on the command line is collected by pytest itself.
    if (
        file_path.suffix == ".py"
        and file_path.name.startswith("bench_")
        and not parent.session.isinitpath(file_path)
    ):
        return pytest.Module.from_parent(parent, path=file_path)
    return None


@pytest.fixture(scope="session")
def results(request: pytest.FixtureRequest) -> Results:
    """The session's `Results` collector."""
    return request.config.stash[_RESULTS]


def _fmt_time(seconds: float) -> str:
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3f} ms"
    if seconds >= 1e-6:
        return f"{seconds * 1e6:.3f} µs"
    return f"{seconds * 1e9:.1f} ns"


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    res = config.stash.get(_RESULTS, None)
    if res is None or not res.measurements:
        return
    tr = terminalreporter
    tr.section("sessiondata benchmark ratios (same run; per operation)")
    width = max(len(n) for n in res.measurements)
    tr.write_line(f"{'benchmark':<{width}}  {'median':>12}  {'mean':>12}  {'min':>12}  rounds")
    for m in res.measurements.values():
        tr.write_line(
            f"{m.name:<{width}}  {_fmt_time(m.median):>12}  {_fmt_time(m.mean):>12}  "
            f"{_fmt_time(m.min):>12}  {m.rounds}"
        )
    rows = res.computed()
    if rows:
        tr.write_line("")
        lw = max(len(r["label"]) for r in rows)
        tr.write_line(f"{'ratio':<{lw}}  {'value':>9}  {'(min)':>9}  {'target':>8}  verdict")
        for r in rows:
            target = "" if r["target"] is None else f"{r['target'][0]} {r['target'][1]:g}"
            tr.write_line(
                f"{r['label']:<{lw}}  {r['value']:>8.2f}x  {r['value_from_min']:>8.2f}x  {target:>8}  "
                f"{r['verdict']}"
            )
    for key, value in res.notes.items():
        tr.write_line(f"note: {key} = {value}")

    out = config.getoption("--ratio-json")
    if out:
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "python": sys.version,
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "measurements_seconds_per_op": {k: asdict(m) for k, m in res.measurements.items()},
            "ratios": rows,
            "notes": res.notes,
        }
        path.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
        tr.write_line(f"ratios written to {path}")
