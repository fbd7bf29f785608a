"""The house rule on public docstrings, checked: every public method of every class that `sessiondata`
exports states its complexity and its thread-safety (who may call it, what it waits for).

Thread-safety may be stated once for a whole class: a class docstring with a ``Thread-safety:`` paragraph,
or one that says the class is immutable (then any thread may call any method). Properties need the
thread-safety statement only: reading one is O(1) unless its docstring says otherwise.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from typing import Any

import pytest

import sessiondata

_COMPLEXITY = re.compile(r"O\(|[Cc]omplexity")
_THREADS = re.compile(r"[Tt]hread-saf|[Aa]ny thread|[Ii]mmutable|[Ww]aits? |write lock")
_CLASS_THREADS = re.compile(r"Thread-safety:|[Ii]mmutable")


def _exported_classes() -> list[type]:
    found = []
    for name in sorted(sessiondata.__all__):
        obj = getattr(sessiondata, name)
        if inspect.isclass(obj) and not issubclass(obj, BaseException):
            found.append(obj)
    return found


def _public_members(cls: type) -> Iterator[tuple[str, str, str]]:
    """``(name, kind, docstring)`` of the methods and properties ``cls`` itself defines."""
    for name, value in vars(cls).items():
        if name.startswith("_"):
            continue
        doc: Any
        if isinstance(value, property):
            kind, doc = "property", value.__doc__
        elif isinstance(value, (classmethod, staticmethod)):
            kind, doc = "method", value.__func__.__doc__
        elif inspect.isfunction(value):
            kind, doc = "method", value.__doc__
        else:
            continue
        yield name, kind, doc or ""


def _gaps(cls: type) -> list[str]:
    class_says_threads = bool(_CLASS_THREADS.search(inspect.getdoc(cls) or ""))
    gaps = []
    for name, kind, doc in _public_members(cls):
        if kind == "method" and not _COMPLEXITY.search(doc):
            gaps.append(f"{cls.__name__}.{name}: no complexity")
        if not (class_says_threads or _THREADS.search(doc)):
            gaps.append(f"{cls.__name__}.{name}: no thread-safety")
    return gaps


@pytest.mark.parametrize("cls", _exported_classes(), ids=lambda c: c.__name__)
def test_every_public_method_states_complexity_and_thread_safety(cls: type) -> None:
    assert _gaps(cls) == []


def test_the_check_finds_a_method_that_states_neither() -> None:
    class Undocumented:
        """A class that says nothing about threads."""

        def read(self) -> int:
            """Answer something."""
            return 1

        @property
        def size(self) -> int:
            """How big. O(1)."""
            return 0

    assert _gaps(Undocumented) == [
        "Undocumented.read: no complexity",
        "Undocumented.read: no thread-safety",
        "Undocumented.size: no thread-safety",
    ]
