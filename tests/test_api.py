"""The public API: what `sessiondata.__all__` promises is there, documented, in the API reference, and typed.

* every name in ``__all__`` exists and has a docstring of its own (for a constant or a type alias, the
  string under its assignment, which is what the API reference shows), and so does every public method and
  property of the public classes; ``__version__`` is checked against the distribution's version instead;
* every name in ``__all__`` has its ``::: sessiondata.Name`` entry in the API reference (docs/api/*.md), and
  the reference documents nothing that is not public;
* nothing public is missing from ``__all__`` (every public name the package namespace holds is listed, as
  is every name the contract fixes), and nothing private is in it;
* the package ships ``py.typed``.
"""

from __future__ import annotations

import ast
import enum
import importlib.resources
import importlib.util
import inspect
import itertools
import re
import types
from pathlib import Path

import pytest

import sessiondata

ROOT = Path(__file__).resolve().parents[1]
API_DOCS = ROOT / "docs" / "api"
# Names the contract (CONTRACT.md, "Threads, repository, managers, command line") fixes as importable from
# `sessiondata`, besides the store's and the models'.
CONTRACT_NAMES = (
    "Bar",
    "Tick",
    "Quote",
    "InvalidDataError",
    "SessionData",
    "SymbolSessionData",
    "get_session_data",
    "reset_session_data",
    "StreamType",
    "TimeProvider",
    "BacktestStreamCoordinator",
    "SqliteBarRepository",
    "CsvBarRepository",
    "InMemoryBarRepository",
    "DataUpkeepThread",
    "SystemManager",
    "DataManager",
)
_ENTRY = re.compile(r"^:::\s+(sessiondata(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\s*$", re.M)


def _reference_entries() -> set[str]:
    entries: set[str] = set()
    for page in API_DOCS.glob("*.md"):
        entries.update(_ENTRY.findall(page.read_text(encoding="utf-8")))
    return entries


def _own_doc(obj: object) -> str | None:
    """The object's own docstring: not one inherited from `object`, `enum.Enum`, a builtin type, etc."""
    doc = getattr(obj, "__doc__", None)
    if inspect.isclass(obj):
        doc = obj.__dict__.get("__doc__")
    return doc.strip() if isinstance(doc, str) and doc.strip() else None


def _attribute_docstring(name: str) -> str | None:
    """The docstring under ``name = ...`` (or ``name: T = ...``) in the private module that assigns it."""
    for path in sorted(Path(sessiondata.__file__).parent.glob("_*.py")):
        body = ast.parse(path.read_text(encoding="utf-8")).body
        for stmt, following in itertools.pairwise(body):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [getattr(stmt, "target", None)]
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                if isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant):
                    return str(following.value.value).strip() or None
                return None
    return None


@pytest.mark.parametrize("name", [n for n in sessiondata.__all__ if n != "__version__"])
def test_name_exists_and_is_documented(name: str) -> None:
    assert hasattr(sessiondata, name), f"sessiondata.__all__ lists {name!r}, which does not exist"
    obj = getattr(sessiondata, name)
    if inspect.isclass(obj) or inspect.isfunction(obj):
        assert _own_doc(obj), f"sessiondata.{name} has no docstring"
    else:  # a constant or a type alias: its docstring is the string literal under its assignment
        assert _attribute_docstring(name), f"sessiondata.{name} has no docstring under its assignment"


def _public_members(cls: type) -> list[tuple[str, object]]:
    """Public methods and properties defined by ``cls`` itself (not attrs fields, enum members, dunders)."""
    members = []
    for attr, value in vars(cls).items():
        if attr.startswith("_"):
            continue
        raw = value.__func__ if isinstance(value, (staticmethod, classmethod)) else value
        if isinstance(raw, property) or inspect.isfunction(raw):
            members.append((attr, raw))
    return members


@pytest.mark.parametrize(
    "name", [n for n in sessiondata.__all__ if inspect.isclass(getattr(sessiondata, n, None))]
)
def test_public_methods_are_documented(name: str) -> None:
    cls = getattr(sessiondata, name)
    missing = []
    for attr, member in _public_members(cls):
        if _own_doc(member):
            continue
        # A method that implements a documented base's (or protocol's) method may rely on its docstring only
        # when the class really inherits it, so that tools (help(), mkdocstrings) can find it.
        inherited = any(_own_doc(getattr(base, attr, None)) for base in cls.__mro__[1:] if base is not object)
        if not inherited:
            missing.append(attr)
    assert not missing, f"sessiondata.{name}: public members without a docstring: {missing}"


def test_every_public_name_is_in_the_api_reference() -> None:
    entries = _reference_entries()
    missing = [n for n in sessiondata.__all__ if n != "__version__" and f"sessiondata.{n}" not in entries]
    assert not missing, f"no `::: sessiondata.Name` entry in docs/api/ for: {missing}"


def test_api_reference_documents_only_public_names() -> None:
    for entry in _reference_entries():
        parts = entry.split(".")
        if len(parts) == 1:
            continue  # the package itself (its docstring)
        if not parts[1].startswith("_") and importlib.util.find_spec(f"sessiondata.{parts[1]}") is not None:
            continue  # a public submodule (e.g. the deprecated session_tracker), documented on its own page
        assert len(parts) == 2, f"{entry}: document the re-exported name, sessiondata.{parts[-1]}"
        assert parts[1] in sessiondata.__all__, f"{entry} is documented but not in sessiondata.__all__"


def test_nothing_private_in_all() -> None:
    assert len(set(sessiondata.__all__)) == len(sessiondata.__all__), "duplicates in __all__"
    leaked = [n for n in sessiondata.__all__ if n.startswith("_") and n != "__version__"]
    assert not leaked, f"private names in __all__: {leaked}"
    for name in sessiondata.__all__:
        obj = getattr(sessiondata, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert not obj.__name__.startswith("_"), f"{name} is an alias of the private {obj.__name__}"


def test_no_public_name_missing_from_all() -> None:
    listed = set(sessiondata.__all__)
    unlisted = [
        n
        for n, v in vars(sessiondata).items()
        if not n.startswith("_") and not isinstance(v, types.ModuleType) and n not in listed
    ]
    assert not unlisted, f"public names in the sessiondata namespace but not in __all__: {unlisted}"
    missing = [n for n in CONTRACT_NAMES if n not in listed]
    assert not missing, f"names the contract makes importable from sessiondata, not in __all__: {missing}"


def test_exceptions_share_the_library_base() -> None:
    errors = [getattr(sessiondata, n) for n in sessiondata.__all__ if n.endswith("Error")]
    assert errors
    for exc in errors:
        assert issubclass(exc, sessiondata.SessionDataError), f"{exc.__name__} is not a SessionDataError"


def test_enums_are_enums() -> None:
    for name in ("ClockMode", "Provenance", "StreamType"):
        assert issubclass(getattr(sessiondata, name), enum.Enum)


def test_version_is_the_distributions() -> None:
    from importlib.metadata import version

    assert sessiondata.__version__ == version("sessiondata")


def test_py_typed_is_shipped() -> None:
    marker = importlib.resources.files("sessiondata") / "py.typed"
    assert marker.is_file(), "sessiondata/py.typed is missing: type checkers would ignore the package"
