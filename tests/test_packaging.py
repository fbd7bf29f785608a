"""What a newcomer's clone and wheel carry: the licence file, one source for the version, no made-up project
URLs, and a package logger that stays quiet in an application that configured no logging."""

from __future__ import annotations

import io
import logging
import re
import sys
from contextlib import redirect_stderr
from pathlib import Path

import pytest

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


def test_ci_runs_the_readme_test_command_with_and_without_the_real_data() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert ".venv/bin/python -m pytest\n" in readme
    ci = [ln.strip() for ln in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()]
    assert ".venv/bin/python -m pytest" in ci
    assert "SESSIONDATA_HIDE_REAL_DATA=1 .venv/bin/python -m pytest" in ci


def test_hiding_the_real_data_skips_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    from conftest import HIDE_REAL_DATA, REAL_DATA, real_data_or_skip

    monkeypatch.setenv(HIDE_REAL_DATA, "1")
    with pytest.raises(pytest.skip.Exception, match="hidden by SESSIONDATA_HIDE_REAL_DATA"):
        real_data_or_skip()
    monkeypatch.setenv(HIDE_REAL_DATA, "0")  # "0" and "" do not hide it
    if REAL_DATA.is_dir():
        assert real_data_or_skip() == REAL_DATA
    else:
        with pytest.raises(pytest.skip.Exception, match="not found"):
            real_data_or_skip()
