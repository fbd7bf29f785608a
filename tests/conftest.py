"""Shared fixtures: a fresh store per test, and the real data folder (skipped with a reason when absent)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sessiondata import SessionData, reset_session_data

REAL_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"


@pytest.fixture
def store() -> SessionData:
    return SessionData()


@pytest.fixture(autouse=True)
def _fresh_singleton() -> Iterator[None]:
    reset_session_data()
    yield
    reset_session_data()


@pytest.fixture
def real_data() -> Path:
    if not REAL_DATA.is_dir():
        pytest.skip(
            f"real market data not found at {REAL_DATA} (expected ../shared/data/real beside the repo)"
        )
    return REAL_DATA
