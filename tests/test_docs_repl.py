"""Documentation examples pasted into the standard Python REPL, line by line, as a reader would.

`tests/test_docs.py` runs each page's ```python blocks as one script; the REPL is stricter: a compound
statement (``for``, ``with``, ``def``) ends at the first blank line, and a statement that follows one
without a blank line between them is a syntax error. Here every line of every block goes through
`code.InteractiveConsole` (the REPL's own compiler), a blank line ends each block, and any error fails the
page. A top-level ``print(...)  # text`` line must print exactly ``text``: the comment shows the output.
"""

from __future__ import annotations

import code
import contextlib
import io
import re
import tokenize
import traceback
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(
    ["README.md"]
    + [str(p.relative_to(ROOT)) for p in DOCS.rglob("*.md") if "```python\n" in p.read_text(encoding="utf-8")]
)
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```\s*$", re.S | re.M)


class _Console(code.InteractiveConsole):
    """The REPL's read-compile-run cycle, recording errors instead of printing them."""

    def __init__(self) -> None:
        super().__init__({"__name__": "__console__"})
        self.errors: list[str] = []

    def showsyntaxerror(self, filename: str | None = None, **kwargs: object) -> None:
        self.errors.append(traceback.format_exc())

    def showtraceback(self) -> None:
        self.errors.append(traceback.format_exc())


def _shown_output(line: str) -> str | None:
    """The comment after a top-level ``print(...)`` call (what the page says it prints), else None."""
    if not line.startswith("print("):
        return None
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(line).readline))
    except (tokenize.TokenError, SyntaxError):
        return None
    comments = [t for t in tokens if t.type == tokenize.COMMENT]
    return comments[-1].string[1:].strip() if comments else None


def test_pages_are_found() -> None:
    assert "docs/guide.md" in PAGES
    assert "docs/parallel.md" in PAGES


@pytest.mark.parametrize("page", PAGES)
def test_examples_paste_into_the_repl(page: str) -> None:
    text = (ROOT / page).read_text(encoding="utf-8")
    console = _Console()
    mismatches: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the migration page imports the old module
        for match in _FENCE.finditer(text):
            if match.group(1) != "python":
                continue
            for line in [*match.group(2).splitlines(), ""]:
                out = io.StringIO()
                with contextlib.redirect_stdout(out):
                    console.push(line)
                shown = _shown_output(line)
                if shown is not None and out.getvalue().strip() != shown:
                    mismatches.append(f"{line!r} printed {out.getvalue().strip()!r}")
                assert not console.errors, f"{page}: pasting {line!r} failed:\n{console.errors[0]}"
    assert not mismatches, f"{page}: the comment does not show what is printed: {mismatches}"
