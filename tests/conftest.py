"""Shared fixtures: a fresh store per test, the real data folder (skipped with a reason when absent), and
frequent thread switches for real-thread tests."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from sessiondata import SessionData, reset_session_data

# CI runs are reproducible: the same examples every run (a failure there is a real one, not bad luck), and
# no per-example deadline on a shared 2-core machine. Locally the default profile keeps exploring.
settings.register_profile(
    "ci", derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
if os.environ.get("CI"):
    settings.load_profile("ci")

REAL_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"
# Set (to anything but "" or "0") to run as on a fresh clone with no ../shared beside it: every real-data test
# skips, and the coverage gate must still hold on what ships with the repository. `.ci/run` proves it.
HIDE_REAL_DATA = "SESSIONDATA_HIDE_REAL_DATA"


def real_data_or_skip() -> Path:
    """The real data folder, or a skip (with the reason) when it is absent or hidden."""
    if os.environ.get(HIDE_REAL_DATA, "") not in ("", "0"):
        pytest.skip(f"real market data hidden by {HIDE_REAL_DATA}={os.environ[HIDE_REAL_DATA]}")
    if not REAL_DATA.is_dir():
        pytest.skip(
            f"real market data not found at {REAL_DATA} (expected ../shared/data/real beside the repo)"
        )
    return REAL_DATA


@pytest.fixture
def store() -> SessionData:
    return SessionData()


@pytest.fixture(autouse=True)
def _fresh_singleton() -> Iterator[None]:
    reset_session_data()
    yield
    reset_session_data()


@pytest.fixture(scope="session")
def real_data_root() -> Path:
    """The real data folder for module- and session-scoped fixtures (skips as `real_data` does)."""
    return real_data_or_skip()


@pytest.fixture
def real_data(real_data_root: Path) -> Path:
    return real_data_root


@pytest.fixture
def switch_often() -> Iterator[None]:
    """Threads switch as often as the interpreter allows while the test runs (``sys.setswitchinterval(1e-6)``,
    restored after), to shake out races; for real-thread tests (``pytest.mark.usefixtures``)."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(old)
