"""The package imports and its bundled example runs."""

from __future__ import annotations

import sessiondata
from sessiondata import _demo


def test_public_names_importable() -> None:
    for name in sessiondata.__all__:
        assert hasattr(sessiondata, name), name


def test_demo_runs(capsys: object) -> None:
    assert _demo.main() == 0
