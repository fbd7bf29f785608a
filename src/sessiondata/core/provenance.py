"""`ProvenanceMap`: where each non-streamed 1-minute bar came from, as a persistent sorted map.

Most bars are streamed, so a snapshot records only the exceptions (gap fills, corrections) by timestamp.
The record used to be a dict copied on every exceptional write, O(n) each: 20,000 corrections to one
symbol cost seconds. Here it is a `Series` of `(timestamp, provenance)` marks, which shares structure
between versions like the bars themselves: a mark costs O(log n + 512 + n / 512) (O(1) amortized when it
is newer than every mark), and a version never changes once published.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from itertools import pairwise
from typing import NamedTuple

from sessiondata._models import Provenance

from .series import Series

__all__ = ["EMPTY_PROVENANCE", "ProvenanceMap"]


class _Mark(NamedTuple):
    timestamp: datetime
    provenance: Provenance


class ProvenanceMap(Mapping[datetime, Provenance]):
    """A read-only ``{timestamp: Provenance}`` of the bars that were not simply streamed, immutable;
    `marked` returns the next version. Lookups O(log n), iteration in time order.

    Thread-safety: immutable, any thread.
    """

    __slots__ = ("_marks",)

    def __init__(self, marks: Series[_Mark] | None = None) -> None:
        self._marks: Series[_Mark] = Series() if marks is None else marks

    def __getitem__(self, ts: datetime) -> Provenance:
        found = self._marks.find(ts)
        if found is None:
            raise KeyError(ts)
        return found.provenance

    def of(self, ts: datetime) -> Provenance:
        """Where the stored bar stamped ``ts`` came from: its mark, else `Provenance.STREAMED`. O(log n)."""
        found = self._marks.find(ts)
        return Provenance.STREAMED if found is None else found.provenance

    def __iter__(self) -> Iterator[datetime]:
        return (m.timestamp for m in self._marks)

    def __len__(self) -> int:
        return len(self._marks)

    def __repr__(self) -> str:
        return f"ProvenanceMap({dict(self)!r})"

    @property
    def marks(self) -> Series[_Mark]:
        """The marks themselves, in time order (memory accounting). O(1)."""
        return self._marks

    def marked(self, stamps: Sequence[datetime], provenance: Provenance) -> ProvenanceMap:
        """This map with each of ``stamps`` (in any order) recorded as ``provenance``, replacing what it
        held. O(k) for k stamps in order and newer than every mark, else O(k (log n + 512 + n / 512))."""
        marks = self._marks
        if not stamps:
            return self
        last = marks.last()
        if (last is None or last.timestamp < stamps[0]) and all(a < b for a, b in pairwise(stamps)):
            return ProvenanceMap(marks.extended([_Mark(t, provenance) for t in stamps]))
        for t in stamps:
            marks = marks.upserted(_Mark(t, provenance))[0]
        return ProvenanceMap(marks)


EMPTY_PROVENANCE = ProvenanceMap()
