"""Documentation examples run as written: every ```python block of these pages, top to bottom."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["README.md", "docs/guide.md", "docs/migration.md"]


def _code(page: Path) -> str:
    return "\n".join(re.findall(r"```python\n(.*?)```", page.read_text(), re.S))


@pytest.mark.parametrize("page", PAGES)
def test_examples_run(page: str) -> None:
    path = ROOT / page
    code = _code(path)
    assert code, f"{page} has no python example"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the migration page imports the old module
        exec(compile(code, str(path), "exec"), {"__name__": "docs_example"})
