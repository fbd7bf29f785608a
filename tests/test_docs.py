"""Documentation examples run as written, so a documented example that breaks fails the suite.

* Every ```python block of README.md and of each docs page, top to bottom, one namespace per page.
* Every ``$ sessiondata ...`` line of a ```console block, through the real command line (in-process), from a
  scratch directory laid out like a checkout: it must exit 0, or with the status an ``$ echo $?`` line after
  it shows; the lines printed under it in the block must appear in its output; a ```text block right after
  the block must match the output line for line (``...`` skips lines; timing lines are not compared); and a
  ```json block right after a ``--json`` command must have exactly the keys of the real output, recursively.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shlex
import warnings
from pathlib import Path
from typing import Any

import pytest

from sessiondata._cli import main as cli_main

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES_WITH_PYTHON = sorted(
    ["README.md"]
    + [str(p.relative_to(ROOT)) for p in DOCS.rglob("*.md") if "```python\n" in p.read_text(encoding="utf-8")]
)
PAGES_WITH_CONSOLE = sorted(
    str(p.relative_to(ROOT)) for p in DOCS.rglob("*.md") if "```console\n" in p.read_text(encoding="utf-8")
)
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```\s*$", re.S | re.M)
# Lines whose figures change from run to run (wall-clock throughput).
_VOLATILE = re.compile(r"bars/s|\bseconds?\b")


def _blocks(page: Path) -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in _FENCE.finditer(page.read_text(encoding="utf-8"))]


def _run(command: str) -> tuple[int, str]:
    argv = shlex.split(command)
    assert argv[0] == "sessiondata", f"not a sessiondata command: {command!r}"
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = cli_main(argv[1:], out=out, err=err)
        except SystemExit as exc:  # argparse's own errors (status 2) and --help
            status = int(exc.code or 0)
    return status, out.getvalue() + err.getvalue()


def _shape(value: Any) -> Any:
    """The key structure of a JSON value: dicts by their keys, lists by their items, leaves by kind."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return (
        "number" if isinstance(value, (int, float)) and not isinstance(value, bool) else type(value).__name__
    )


def test_pages_are_found() -> None:
    # The pages that must carry runnable examples; a rename must not silently drop them from the run.
    for page in ("README.md", "docs/index.md", "docs/guide.md", "docs/concepts.md", "docs/migration.md"):
        assert page in PAGES_WITH_PYTHON
    for page in ("docs/index.md", "docs/cli.md"):
        assert page in PAGES_WITH_CONSOLE


@pytest.mark.parametrize("page", PAGES_WITH_PYTHON)
def test_python_examples_run(page: str) -> None:
    path = ROOT / page
    code = "\n".join(body for lang, body in _blocks(path) if lang == "python")
    assert code, f"{page} has no python example"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the migration page imports the old module
        exec(compile(code, str(path), "exec"), {"__name__": "docs_example"})


@pytest.mark.parametrize("page", PAGES_WITH_CONSOLE)
def test_console_examples_run(page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A scratch checkout: the commands see src/ (they name the bundled CSV by its path) and write their
    # files (bars.db) here, not into the repository.
    (tmp_path / "src").symlink_to(ROOT / "src", target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    blocks = _blocks(ROOT / page)
    ran = 0
    for i, (lang, body) in enumerate(blocks):
        if lang != "console":
            continue
        last: tuple[str, int, str] | None = None  # command, status, output
        expected_status = 0
        lines = body.splitlines()
        results: list[tuple[str, int, str, int]] = []
        j = 0
        while j < len(lines):
            line = lines[j]
            j += 1
            if not line.startswith("$ "):
                assert last is not None, f"{page}: output before any command: {line!r}"
                assert line.strip() in last[2].splitlines(), (
                    f"{page}: {last[0]!r} did not print {line!r}; it printed:\n{last[2]}"
                )
                continue
            command = line[2:].strip()
            if command == "echo $?":
                assert last is not None, f"{page}: echo $? before any command"
                assert j < len(lines), f"{page}: echo $? without the status under it"
                expected_status = int(lines[j].strip())
                j += 1
                results[-1] = (*results[-1][:3], expected_status)
                continue
            status, output = _run(command)
            last = (command, status, output)
            results.append((command, status, output, 0))
            ran += 1
        for command, status, output, expected in results:
            assert status == expected, f"{page}: {command!r} exited {status}, expected {expected}:\n{output}"
        # What follows the block documents the output of its last command.
        if last is None or i + 1 >= len(blocks):
            continue
        next_lang, next_body = blocks[i + 1]
        if next_lang == "json" and "--json" in last[0]:
            assert _shape(json.loads(next_body)) == _shape(json.loads(last[2])), (
                f"{page}: the JSON shown for {last[0]!r} has not the shape of its output:\n{last[2]}"
            )
        elif next_lang == "text":
            real = [ln.rstrip() for ln in last[2].splitlines()]
            shown = [ln.rstrip() for ln in next_body.splitlines()]
            if "..." in shown:
                cut = shown.index("...")
                shown = shown[:cut] + shown[cut + 1 :]
                real = real[:cut] + real[len(real) - (len(shown) - cut) :]
            assert len(real) == len(shown), f"{page}: {last[0]!r} printed:\n{last[2]}"
            for want, got in zip(shown, real, strict=True):
                if not _VOLATILE.search(want):
                    assert want == got, f"{page}: {last[0]!r} printed {got!r} where the page shows {want!r}"
    assert ran, f"{page} has no $ sessiondata command"


def test_performance_page_quotes_the_benchmark_record() -> None:
    # The tables the performance page copies from benchmarks/README.md must be that record, row for row.
    page = (DOCS / "performance.md").read_text(encoding="utf-8")
    section = page.split("## Figures recorded in `benchmarks/README.md`", 1)[1].split("\n## ", 1)[0]
    rows = [ln for ln in section.splitlines() if ln.startswith("|") and not ln.startswith("|---")]
    assert len(rows) >= 10
    record = (ROOT / "benchmarks" / "README.md").read_text(encoding="utf-8").splitlines()
    stale = [row for row in rows if row not in record]
    assert not stale, f"docs/performance.md rows no longer in benchmarks/README.md: {stale}"
    assert (DOCS / "img" / "scaling.png").is_file()
    assert '--8<-- "docs/img/scaling.txt"' in page
    assert (DOCS / "img" / "scaling.txt").is_file()
