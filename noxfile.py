"""The supported-Python matrix and the quality gates, as nox sessions.

    nox -s tests                 # 3.10, 3.11, 3.12, 3.13 (full suite on 3.13, a fast subset on the others)
    nox -s tests-3.13            # one interpreter
    nox -s lint                  # ruff check, ruff format --check, mypy --strict src
    nox -s docs                  # mkdocs build --strict, then the documentation examples and the API check
    nox -r ...                   # reuse the virtual environments of an earlier run (much faster)

Interpreters come from pyenv, which installs every version but activates one: this file makes each
installed 3.x reachable by name (``python3.10``, ...) by listing them in ``PYENV_VERSION`` and putting their
``bin`` folders at the end of ``PATH``. Elsewhere nox finds them on ``PATH`` as usual.

Why a subset on the older versions: CI runs on 2 shared cores, and the suite's cost is in the stateful,
threaded and real-data tests, whose behaviour does not depend on the interpreter version. The subset keeps
every test file but runs none of the real-data tests (`realdata` marker deselected, and the data hidden with
``SESSIONDATA_HIDE_REAL_DATA=1`` so that every test reading ``../shared`` skips), and stops at the first
failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import nox

nox.options.sessions = ["lint", "tests", "docs"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True

PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
NEWEST = PYTHONS[-1]


def _expose_pyenv_interpreters() -> None:
    """Make every pyenv-installed CPython 3.x reachable as ``python3.X`` (see the module docstring)."""
    pyenv = shutil.which("pyenv")
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    if pyenv is None and not root.is_dir():
        return
    versions: list[str] = []
    if pyenv is not None:
        listed = subprocess.run([pyenv, "versions", "--bare"], capture_output=True, text=True, check=False)
        versions = [v.strip() for v in listed.stdout.splitlines() if v.strip().startswith("3.")]
    if not versions and root.is_dir():
        versions = sorted(p.name for p in root.iterdir() if p.name.startswith("3."))
    if versions and "PYENV_VERSION" not in os.environ:
        os.environ["PYENV_VERSION"] = ":".join(versions)
    # Appended, not prepended: an interpreter already on PATH (a shim, a system python) keeps precedence.
    extra = [str(root / v / "bin") for v in versions if (root / v / "bin").is_dir()]
    if extra:
        os.environ["PATH"] = os.pathsep.join([os.environ.get("PATH", ""), *extra])


_expose_pyenv_interpreters()


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The test suite: all of it on the newest Python, the fast subset on the others."""
    session.install("-e", ".[test]")
    if session.python == NEWEST:
        session.run("python", "-m", "pytest", "-q", *session.posargs)
    else:
        # --no-cov: the coverage gate (pyproject addopts) is for the full suite only. The real data is hidden
        # (every test that reads ../shared skips), as on a fresh clone: those tests run once, on the newest.
        session.run(
            "python", "-m", "pytest", "-q", "-x", "-m", "not realdata", "--no-cov", *session.posargs,
            env={"SESSIONDATA_HIDE_REAL_DATA": "1"},
        )  # fmt: skip


@nox.session(python=NEWEST)
def lint(session: nox.Session) -> None:
    """ruff (lint and format) over src, tests and benchmarks; mypy --strict over src."""
    session.install("-e", ".[dev]")
    session.run("ruff", "check", "src", "tests", "benchmarks", "noxfile.py")
    session.run("ruff", "format", "--check", "src", "tests", "benchmarks", "noxfile.py")
    session.run("mypy", "--strict", "src")


@nox.session(python=NEWEST)
def docs(session: nox.Session) -> None:
    """Build the site with warnings as errors, then run every documented example and the API check."""
    session.install("-e", ".[docs]", "pytest>=8", "pytest-cov>=5", "pytest-timeout>=2.3", "hypothesis>=6.100")
    session.run("mkdocs", "build", "--strict", "--site-dir", str(Path(session.create_tmp()) / "site"))
    session.run(
        "python",
        "-m",
        "pytest",
        "-q",
        "--no-cov",
        "tests/test_docs.py",
        "tests/test_api.py",
        *session.posargs,
    )
