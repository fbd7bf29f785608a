"""`Series`: the persistent, time-ordered sequence that store snapshots share (the copy-on-write core).

Layout follows `sortedcontainers.SortedList` (a list of sorted sublists, "chunks", with an index of chunk
minima searched by `bisect`), made **persistent**: a write returns a new `Series` and never changes what an
existing one shows, so a reader holding an old snapshot needs no lock.

Structure sharing, and why a write stays cheap:

* A write copies only what it touches: the tuple of chunk references (``n / LOAD`` pointers) and, for an
  insert or replace in the middle, that one chunk (at most ``2 * LOAD`` references).
* An in-order append (the common case) copies nothing: the newest version appends to its last chunk in
  place. Older versions remember how much of that chunk they own (``_tail_len``) and never look past it, and
  items below that length are never written again (a later in-place change of an owned slot would first copy
  the chunk). Only the newest version may append, and only while the chunk's physical length equals its own
  tail length, so two versions can never both extend one chunk.

`sortedcontainers.SortedList` itself is mutable and cannot be shared between snapshots without a full copy,
which is exactly the O(n) per write this module exists to avoid.

Read methods return new lists the caller owns. All methods are safe to call from any thread on any
`Series`; the mutating-looking ones (``inserted``, ``appended``, ...) return a new `Series` and must only be
called by one writer at a time (the store's lock).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from itertools import islice
from operator import attrgetter
from typing import Any, Generic, Protocol, TypeVar, overload

__all__ = ["LOAD", "Series", "Timestamped"]

LOAD = 512
"""Target chunk length. Chunks split above ``2 * LOAD``; appends start a new chunk at ``LOAD``."""


class Timestamped(Protocol):
    """Anything with a ``timestamp``: `Bar`, `Tick`, `Quote`."""

    @property
    def timestamp(self) -> datetime: ...


# ``Series.__new__(Series)`` is a generic class-attribute lookup on every call (CPython cannot specialize
# it: the metaclass defines ``__new__`` too), ~300 machine instructions of a ~4,000-instruction `appended`.
_alloc = object.__new__
T = TypeVar("T", bound=Timestamped)

_key = attrgetter("timestamp")


class Series(Sequence[T], Generic[T]):
    """An immutable sequence of timestamped items in time order, sharing structure with its versions.

    Reads: ``len`` O(1); ``last`` O(1); ``[i]`` O(log(n / LOAD)); ``last_n(k)`` O(k + k / LOAD);
    ``head(k)`` O(n / LOAD);
    ``between(start, end)`` and ``since(t)`` O(log n + k) for k items returned; iteration O(n).
    Writes (returning a new `Series`): ``appended`` O(1) amortized (O(n / LOAD) when a chunk fills);
    ``inserted``/``upserted`` O(LOAD + n / LOAD + log n).

    Attributes:
        size: How many items this version holds (``len`` without the call; read-only).
    """

    __slots__ = ("_cache", "_chunks", "_mins", "_starts", "_tail_len", "_view", "size")

    _chunks: tuple[list[T], ...]
    _mins: tuple[datetime, ...]
    _starts: tuple[int, ...]
    _tail_len: int
    #: How many items this version holds (``len`` without the call; read-only).
    size: int
    # Per-version memo for derived read-only views (e.g. columns); a version never changes, so it never
    # goes stale. None until first used.
    _cache: dict[Any, Any] | None
    # The last version `view` made of this one's storage (a racy, idempotent cache, see `view`).
    _view: Series[T] | None

    def __init__(self, items: Iterable[T] = ()) -> None:
        """Build a series from items already in time order (O(n)); unsorted input is a `ValueError`."""
        data = list(items)
        for a, b in zip(data, islice(data, 1, None), strict=False):
            if b.timestamp < a.timestamp:
                raise ValueError("Series items must be in time order")
        chunks = tuple(data[i : i + LOAD] for i in range(0, len(data), LOAD))
        self._set(chunks, len(chunks[-1]) if chunks else 0)

    def _set(self, chunks: tuple[list[T], ...], tail_len: int) -> None:
        self._chunks = chunks
        self._tail_len = tail_len
        self._cache = None
        self._view = None
        self._mins = tuple(c[0].timestamp for c in chunks)
        starts = []
        total = 0
        for c in chunks:
            starts.append(total)
            total += len(c)
        self._starts = tuple(starts)
        self.size = (starts[-1] + tail_len) if chunks else 0

    @classmethod
    def _make(cls, chunks: tuple[list[T], ...], tail_len: int) -> Series[T]:
        new = _alloc(cls)
        new._set(chunks, tail_len)
        return new

    # ------------------------------------------------------------------ reads

    def __len__(self) -> int:
        return self.size

    def __bool__(self) -> bool:
        return self.size > 0

    def _chunk(self, i: int) -> Sequence[T]:
        """Chunk ``i`` as this version sees it (the last one cut to this version's length)."""
        c = self._chunks[i]
        if i == len(self._chunks) - 1:
            # Always cut: the newest version may append to this list at any moment, so a length checked
            # now says nothing about the list a moment later (a reader must never see past its own end).
            return c[: self._tail_len]
        return c

    def __iter__(self) -> Iterator[T]:
        chunks = self._chunks
        if not chunks:
            return
        for c in chunks[:-1]:
            yield from c
        yield from chunks[-1][: self._tail_len]

    def __reversed__(self) -> Iterator[T]:
        for i in range(len(self._chunks) - 1, -1, -1):
            yield from reversed(self._chunk(i))

    @overload
    def __getitem__(self, index: int) -> T: ...

    @overload
    def __getitem__(self, index: slice) -> list[T]: ...

    def __getitem__(self, index: int | slice) -> T | list[T]:
        if isinstance(index, slice):
            start, stop, step = index.indices(self.size)
            if step != 1:
                return list(self)[index]
            return self._slice(start, stop)
        n = self.size
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError("Series index out of range")
        ci = bisect_right(self._starts, index) - 1
        return self._chunks[ci][index - self._starts[ci]]

    def _slice(self, start: int, stop: int) -> list[T]:
        """Items at positions ``[start, stop)``, in order, as a new list. O(k + log n)."""
        if start >= stop:
            return []
        starts = self._starts
        ci = bisect_right(starts, start) - 1
        last = len(self._chunks) - 1
        out: list[T] = []
        while ci <= last and starts[ci] < stop:
            c = self._chunks[ci]
            lo = start - starts[ci] if start > starts[ci] else 0
            hi = stop - starts[ci]
            if ci == last and hi > self._tail_len:
                hi = self._tail_len
            out.extend(c[lo:hi])
            ci += 1
        return out

    def last(self) -> T | None:
        """The newest item, or ``None`` when empty. O(1)."""
        if not self.size:
            return None
        return self._chunks[-1][self._tail_len - 1]

    def first(self) -> T | None:
        """The oldest item, or ``None`` when empty. O(1)."""
        if not self.size:
            return None
        return self._chunks[0][0]

    def last_n(self, n: int) -> list[T]:
        """The newest ``n`` items, oldest first; ``[]`` for ``n <= 0``. O(n), independent of ``len``."""
        if n <= 0:
            return []
        tail = self._tail_len
        if n <= tail:  # the common case: all in the last chunk, one slice
            return self._chunks[-1][tail - n : tail]
        return self._slice(max(0, self.size - n), self.size)

    def head(self, n: int) -> Series[T]:
        """The first ``n`` items as a series sharing this one's chunks (this series when ``n >= len``).

        A view to read (as a reader settling derived bars does), never to extend: its last chunk may be a
        full chunk of this series. O(1) within the last chunk (the common case: a settle's bars before the
        newest few), else O(n / LOAD) tuple slices in C.
        """
        if n >= self.size:
            return self
        if n <= 0:
            return Series()
        starts = self._starts
        if n > starts[-1]:
            return self._version(n)
        ci = bisect_right(starts, n - 1) - 1
        return _assembled(self._chunks[: ci + 1], self._mins[: ci + 1], starts[: ci + 1], n - starts[ci])

    # ------------------------------------------------------- writer and reader API (no copies)

    def tail(self) -> tuple[Sequence[T], int, int]:
        """``(chunk, n, start)``: the last chunk as stored, how many of its items this version holds, and
        the position of its first item. For a writer reading the newest items in place (the chunk may hold
        items of newer versions past ``n``: read ``chunk[:n]`` only, never write). O(1); non-empty series."""
        return self._chunks[-1], self._tail_len, self._starts[-1]

    def items_at(self, start: int, stop: int) -> list[T]:
        """The items at positions ``[start, stop)`` (clipped to this version), as a new list. O(k + log n)."""
        return self._slice(start, min(stop, self.size))

    def chunks_from(self, index: int) -> Iterator[tuple[list[T], int, int]]:
        """``(chunk, start, n)`` for each chunk from the one holding position ``index`` on: the stored list
        (shared by every version holding it; an owned slot never changes, which is what lets a reader
        cache per-chunk work by identity), the position of its first item, and how many of its items this
        version holds. O(1) per chunk after O(log(n / LOAD))."""
        chunks = self._chunks
        starts = self._starts
        last = len(chunks) - 1
        ci = bisect_right(starts, index) - 1 if chunks else 0
        while 0 <= ci <= last:
            chunk = chunks[ci]
            yield chunk, starts[ci], self._tail_len if ci == last else len(chunk)
            ci += 1

    def storage(self) -> tuple[object, ...]:
        """The containers this version holds besides its items (the chunk tuple, its index tuples and their
        members, each chunk list): for memory accounting. O(n / LOAD)."""
        return (self._chunks, self._mins, self._starts, *self._starts, *self._chunks)

    def _position(self, t: datetime, *, right: bool) -> int:
        """Index of the first item with ``timestamp >= t`` (``> t`` when ``right``). O(log n)."""
        if not self.size:
            return 0
        mins = self._mins
        ci = bisect_right(mins, t) - 1 if right else bisect_left(mins, t) - 1
        if ci < 0:
            return 0
        c = self._chunks[ci]
        hi = self._tail_len if ci == len(self._chunks) - 1 else len(c)
        if right:
            return self._starts[ci] + bisect_right(c, t, 0, hi, key=_key)
        return self._starts[ci] + bisect_left(c, t, 0, hi, key=_key)

    def between(self, start: datetime | None = None, end: datetime | None = None) -> list[T]:
        """Items with ``start <= timestamp < end`` (either bound may be ``None``). O(log n + k)."""
        lo = 0 if start is None else self._position(start, right=False)
        hi = self.size if end is None else self._position(end, right=False)
        return self._slice(lo, hi)

    def since(self, t: datetime) -> list[T]:
        """Items with ``timestamp >= t``. O(log n + k)."""
        return self._slice(self._position(t, right=False), self.size)

    def find(self, t: datetime) -> T | None:
        """The item stamped exactly ``t`` (the first such), or ``None``. O(log n)."""
        i = self._position(t, right=False)
        if i < self.size:
            item = self[i]
            if item.timestamp == t:
                return item
        return None

    def count_between(self, start: datetime | None, end: datetime | None) -> int:
        """How many items have ``start <= timestamp < end``. O(log n)."""
        lo = 0 if start is None else self._position(start, right=False)
        hi = self.size if end is None else self._position(end, right=False)
        return max(0, hi - lo)

    def __repr__(self) -> str:
        return f"Series(len={self.size}, last={self.last()!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Series):
            return self.size == other.size and all(a == b for a, b in zip(self, other, strict=True))
        if isinstance(other, (list, tuple)):
            return self.size == len(other) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    # ----------------------------------------------------------------- writes

    def appended(self, item: T) -> Series[T]:
        """A new series with ``item`` at the end (the caller guarantees it sorts last). O(1) amortized."""
        n = self.size
        grown = self.grown(n, item)
        return self._version(n + 1) if grown is self else grown

    def grown(self, count: int, item: T) -> Series[T]:
        """The storage of ``view(count)`` with ``item`` appended: this very series when ``item`` went into its
        storage in place (``view(count + 1)`` then shows it), else a new series of ``count + 1`` items.

        For a writer that keeps each version as a storage plus a count (the store's 1-minute bars), so that
        an in-order write builds no object at all. ``count`` is at least ``len(self)`` and counts items this
        storage holds; the caller guarantees ``item`` sorts last. O(1) amortized (O(n / LOAD) when a chunk
        fills). Thread-safety: one writer at a time (the store's lock); readers of any version unaffected.
        """
        chunks = self._chunks
        if not chunks:
            return Series._make(([item],), 1)
        tail = chunks[-1]
        n = count - self._starts[-1]  # the items of the last chunk that version ``count`` holds
        if n < LOAD:
            if len(tail) == n:
                tail.append(item)  # owned slots below n never change: older versions are unaffected
                # Slot n is this version's only if no other appender to the same version took it first:
                # readers settling one lazy log extend one derived series without a lock. Two may both
                # see ``len(tail) == n``; the first append wins the slot, the other copies below.
                if tail[n] is item:
                    return self
            copied = tail[:n]
            copied.append(item)
            return Series._make((*chunks[:-1], copied), n + 1)
        return _assembled(
            (*chunks[:-1], tail if len(tail) == n else tail[:n], [item]),
            (*self._mins, item.timestamp),
            (*self._starts, count),
            1,
        )

    def view(self, count: int) -> Series[T]:
        """The version of ``count`` items of this series' storage (``count >= len(self)``, as `grown` made
        it): this series itself at its own length. O(1).

        Remembers the last view it made, so that readers of one snapshot share one version (and its
        `memo`). Thread-safety: any thread, lock-free: a racy but idempotent cache (two readers may each
        build a view of the same count; either is a correct version, the last store wins)."""
        if count == self.size:
            return self
        last = self._view
        if last is not None and last.size == count:
            return last
        made = self._version(count)
        self._view = made
        return made

    def _version(self, count: int) -> Series[T]:
        """A new version of ``count`` items over this series' chunks (``count`` within its last chunk).

        `_assembled`, inline: a reader of each new snapshot's ``bars_1m`` builds one, and the call costs
        ~70 ns of ~230."""
        new = _alloc(Series)
        new._chunks = self._chunks
        new._mins = self._mins
        new._starts = self._starts
        new._tail_len = count - self._starts[-1]
        new.size = count
        new._cache = None
        new._view = None
        return new

    def appended_if_newer(self, item: T) -> Series[T] | None:
        """`appended` if the series is non-empty and ``item`` is newer than its last item, else ``None``.

        The writer's hot path: one call instead of `last` plus `appended`. O(1) amortized.
        """
        n = self._tail_len
        if not n or not self._chunks[-1][n - 1].timestamp < item.timestamp:
            return None
        return self.appended(item)

    def extended(self, items: Sequence[T]) -> Series[T]:
        """A new series with ``items`` (in time order) at the end; the caller guarantees they sort last.

        Equal to ``appended`` on each item in turn, without building the versions in between.
        O(k + n / LOAD) for k items.
        """
        if not items:
            return self
        data = items if isinstance(items, list) else list(items)  # slices of it become owned chunks
        chunks = self._chunks
        n = self._tail_len
        if chunks and n < LOAD:
            tail = chunks[-1]
            room = LOAD - n
            first = data[:room]
            grown = n + len(first)  # the tail length of the new version
            head: list[T] | None = None
            if len(tail) == n:
                tail.extend(first)  # slots below n never change: older versions are unaffected
                if tail[n] is first[0]:  # one atomic extend: slot n ours, so are the rest (see `appended`)
                    head = tail
            if head is None:
                head = tail[:n]
                head.extend(first)
            rest = data[room:]
            if not rest:
                if head is tail:
                    # Not ``len(tail)``: an appender to the same version may have added after our items.
                    return _assembled(chunks, self._mins, self._starts, grown)
                return Series._make((*chunks[:-1], head), len(head))
            kept = (*chunks[:-1], head if len(head) == grown else head[:grown])
        elif chunks:
            tail = chunks[-1]
            kept = (*chunks[:-1], tail if len(tail) == n else tail[:n])
            rest = data
        else:
            kept = ()
            rest = data
        fresh = tuple(rest[i : i + LOAD] for i in range(0, len(rest), LOAD))
        all_chunks = kept + fresh
        return Series._make(all_chunks, len(all_chunks[-1]))

    def upserted(self, item: T) -> tuple[Series[T], T | None]:
        """Insert ``item`` at its place, replacing an item with the same timestamp.

        Returns the new series and the replaced item (or ``None``). O(1) amortized for an append,
        else O(LOAD + n / LOAD + log n).
        """
        last = self.last()
        t = item.timestamp
        if last is None or last.timestamp < t:
            return self.appended(item), None
        i = self._position(t, right=False)
        if i < self.size and self[i].timestamp == t:
            return self._replaced_at(i, item), self[i]
        return self._inserted_at(i, item), None

    def upserted_run(self, items: Sequence[T]) -> Series[T]:
        """`upserted` of each of ``items`` (strictly increasing timestamps), in one new version: each chunk
        they land in is copied once, where item-by-item upserts copy it (and rebuild the chunk index) once
        per item. Why: a fill re-derives several adjacent windows at once.

        O(len(items) * log n + chunks touched * LOAD + n / LOAD); an append, O(len(items)). Writers only
        (the result is a new version; this one is unchanged)."""
        if not items:
            return self
        last = self.last()
        if last is None or last.timestamp < items[0].timestamp:
            return self.extended(items)
        chunks = self._owned_chunks()
        own = self._chunks
        mins = self._mins
        for item in items:
            t = item.timestamp
            ci = max(bisect_right(mins, t) - 1, 0)  # the chunk whose first item is at or before it
            chunk = chunks[ci]
            if chunk is own[ci]:  # shared with older versions: copy before the first change
                chunk = chunks[ci] = chunk[:]
            i = bisect_left(chunk, t, key=_key)
            if i < len(chunk) and chunk[i].timestamp == t:
                chunk[i] = item
            else:
                chunk.insert(i, item)
        split: list[list[T]] = []
        for grown in chunks:
            while len(grown) > 2 * LOAD:
                split.append(grown[:LOAD])
                grown = grown[LOAD:]  # noqa: PLW2901 - the rest of the same chunk
            split.append(grown)
        return Series._make(tuple(split), len(split[-1]))

    def inserted(self, item: T) -> Series[T]:
        """Insert ``item`` after every item with a timestamp ``<=`` its own (stable for equal times).

        O(1) amortized for an append, else O(LOAD + n / LOAD + log n).
        """
        last = self.last()
        if last is None or not item.timestamp < last.timestamp:
            return self.appended(item)
        return self._inserted_at(self._position(item.timestamp, right=True), item)

    def _locate(self, index: int) -> tuple[int, int]:
        ci = bisect_right(self._starts, index) - 1
        return ci, index - self._starts[ci]

    def _owned_chunks(self) -> list[list[T]]:
        chunks = list(self._chunks)
        if chunks and len(chunks[-1]) != self._tail_len:
            chunks[-1] = chunks[-1][: self._tail_len]
        return chunks

    def _replaced_at(self, index: int, item: T) -> Series[T]:
        ci, off = self._locate(index)
        chunks = self._owned_chunks()
        copied = chunks[ci][:] if chunks[ci] is self._chunks[ci] else chunks[ci]
        copied[off] = item
        chunks[ci] = copied
        return Series._make(tuple(chunks), len(chunks[-1]))

    def _inserted_at(self, index: int, item: T) -> Series[T]:
        if index >= self.size:
            return self.appended(item)
        ci, off = self._locate(index)
        chunks = self._owned_chunks()
        copied = chunks[ci][:] if chunks[ci] is self._chunks[ci] else chunks[ci]
        copied.insert(off, item)
        if len(copied) > 2 * LOAD:
            chunks[ci : ci + 1] = [copied[:LOAD], copied[LOAD:]]
        else:
            chunks[ci] = copied
        return Series._make(tuple(chunks), len(chunks[-1]))

    def check_invariants(self, *, unique: bool) -> None:
        """Raise `AssertionError` unless the structure is sound (for tests). O(n)."""
        assert len(self._chunks) == len(self._mins) == len(self._starts)
        total = 0
        prev: Any = None
        for i, c in enumerate(self._chunks):
            seen = self._chunk(i)
            assert seen, "empty chunk"
            assert self._starts[i] == total
            assert self._mins[i] == seen[0].timestamp
            assert len(seen) <= 2 * LOAD
            for item in seen:
                if prev is not None:
                    if unique:
                        assert prev < item.timestamp, "timestamps not strictly increasing"
                    else:
                        assert prev <= item.timestamp, "timestamps decreasing"
                prev = item.timestamp
            total += len(seen)
            if i < len(self._chunks) - 1:
                assert len(c) == len(seen)
        assert total == self.size

    # ----------------------------------------------- per-version memo (readers' derived read-only views)

    def memo(self, key: object) -> Any:
        """The value remembered for ``key`` in this version (`remember`), or ``None``. O(1).

        A version never changes, so a remembered view never goes stale; a new version starts with none.
        Thread-safety: any thread, lock-free."""
        cache = self._cache
        return None if cache is None else cache.get(key)

    def remember(self, key: object, value: Any, limit: int) -> None:
        """Remember ``value`` (a complete, read-only view of this version) for ``key``, unless ``limit``
        values are remembered already. O(1).

        Thread-safety: any thread, lock-free: a racy but idempotent cache. Two readers may remember at
        once; both computed the same value from this immutable version, and a lost store only costs a
        recompute. A value is stored only once complete (one reference assignment), never seen half-built.
        The writer never reads it."""
        cache = self._cache
        if cache is None:
            self._cache = {key: value}
        elif len(cache) < limit:
            cache[key] = value


EMPTY: Series[Any] = Series()


def _assembled(
    chunks: tuple[list[T], ...], mins: tuple[datetime, ...], starts: tuple[int, ...], tail_len: int
) -> Series[T]:
    """A series over ``chunks`` whose chunk index (``mins``, ``starts``) the caller already has, the last
    chunk seen to ``tail_len`` items: no Python loop over the chunks (`Series._set` rebuilds the index).
    ``chunks`` is not empty. O(1)."""
    new: Series[T] = _alloc(Series)
    new._chunks = chunks
    new._mins = mins
    new._starts = starts
    new._tail_len = tail_len
    new.size = starts[-1] + tail_len
    new._cache = None
    new._view = None
    return new
