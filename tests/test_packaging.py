"""What a newcomer's clone and wheel carry: the licence file, one source for the version, no made-up project
URLs, and a package logger that stays quiet in an application that configured no logging."""

from __future__ import annotations

import io
import logging
import re
import sys
from contextlib import redirect_stderr
from pathlib import Path

import sessiondata

ROOT = Path(__file__).resolve().parents[1]

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - 3.10 has no tomllib; the text checks below still run
    tomllib = None


def test_the_apache_licence_ships_as_a_license_file() -> None:
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in text
    assert "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r'^license-files = \["LICENSE"\]$', pyproject, re.MULTILINE)
    assert re.search(r'^license = "Apache-2.0"$', pyproject, re.MULTILINE)


def test_the_version_has_one_source() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert not re.search(r"^version\s*=\s*\"", pyproject, re.MULTILINE), "the version is written in pyproject"
    if tomllib is not None:
        meta = tomllib.loads(pyproject)
        assert "version" in meta["project"]["dynamic"]
        assert meta["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "sessiondata.__version__"}


def test_no_placeholder_project_urls() -> None:
    for name in ("pyproject.toml", "mkdocs.yml", "README.md"):
        assert "example.invalid" not in (ROOT / name).read_text(encoding="utf-8"), name


def test_the_package_logger_is_quiet_without_logging_configured() -> None:
    root = logging.getLogger()
    saved = root.handlers[:]
    root.handlers.clear()  # an application that configured nothing
    try:
        lib = logging.getLogger("sessiondata")
        assert any(isinstance(h, logging.NullHandler) for h in lib.handlers)
        err = io.StringIO()
        with redirect_stderr(err):
            logging.getLogger("sessiondata.repository").warning("skipped 3 bad rows")
        assert err.getvalue() == ""  # no "last resort" handler printing the library's warnings
    finally:
        root.handlers[:] = saved
    assert sessiondata.__version__
