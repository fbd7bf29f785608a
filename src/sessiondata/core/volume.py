"""The session volume, exact: an `int` while every volume added is an `int` (shares, contracts), else the
correctly rounded sum of the volumes added (fractional units: a crypto's), whatever their order.

Why: adding float volumes one by one as bars arrive (and subtracting a corrected bar's) leaves rounding
noise in the last digits that depends on the arrival order: ten bars of ``0.1`` summed to
``0.9999999999999999``, and a session of BTC-EUR bars to ``2297.371209460003`` where the traded amounts add
up to ``2297.37120946``. So once a float volume arrives, the writer keeps the sum exactly beside the float it
publishes, as ``numerator / 2**shift`` (every finite float is such a fraction), and publishes that fraction
correctly rounded (CPython's ``int / int`` is correctly rounded): the same value as `math.fsum` of the
volumes stored, after any sequence of corrections, fills and out-of-order inserts. It also counts the float
volumes in the sum, so that once corrections have replaced every one of them by an `int`, the volume is an
exact `int` again: the same value, and the same type, as a store given the stored bars afresh.

Used by the store's writer (`sessiondata.core.writer`) only, under the store's lock; every function is pure.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from math import frexp

__all__ = ["ExactSum", "add_volume", "add_volumes"]

#: ``(numerator, shift, floats)``: the exact value ``numerator / 2**shift``, a sum holding ``floats``
#: float volumes (at least one).
ExactSum = tuple[int, int, int]


def _plus(total: tuple[int, int], value: float, sign: int) -> tuple[int, int]:
    """``total + sign * value``, exactly (``total`` as ``(numerator, shift)``). O(1) (integers of at most
    ~1,100 bits)."""
    n, s = total
    if type(value) is int:
        m, t = value, 0
    else:
        # ``value`` as ``m / 2**t`` with a 53-bit integer m (both steps exact): ~3x cheaper than
        # ``value.as_integer_ratio()``, which reduces the fraction, a reduction this sum has no use for.
        fraction, exponent = frexp(value)
        m = int(fraction * _MANTISSA)
        t = _MANTISSA_BITS - exponent
        if t < 0:
            m <<= -t
            t = 0
    if t > s:
        n <<= t - s
        s = t
    elif t < s:
        m <<= s - t
    return n + sign * m, s


_MANTISSA_BITS = 53
_MANTISSA = float(1 << _MANTISSA_BITS)


def _rounded(total: tuple[int, int]) -> float:
    """``total`` (``(numerator, shift)``) correctly rounded to a float. O(1)."""
    n, s = total
    if s <= _LDEXP_MAX_SHIFT:
        try:
            # ``float(n)`` rounds once (correctly) and scaling by a power of two is exact while the result
            # stays a normal float, which it does for n >= 1 and s <= 960: one rounding, about a third of
            # the cost of ``n / (1 << s)`` (also correctly rounded: the fallback).
            return math.ldexp(float(n), -s)
        except OverflowError:
            pass
    return n / (1 << s)


# The greatest shift for which ``ldexp(float(n), -s)`` of an integer n >= 1 is a normal float (>= 2**-1022).
_LDEXP_MAX_SHIFT = 960


def add_volume(
    volume: float, exact: ExactSum | None, added: float, removed: float | None = None
) -> tuple[float, ExactSum | None]:
    """The session volume after ``added`` was stored and ``removed`` (a corrected bar's volume; None when
    no bar was replaced) taken out: ``(volume, exact)``, where ``exact`` is None while ``volume`` is an
    exact `int` (no float volume left in the sum), else the exact sum that ``volume`` is the correctly
    rounded value of. ``volume``/``exact`` are the state before. O(1)."""
    if exact is None:
        if type(added) is int and (removed is None or type(removed) is int):
            return volume + added - (removed or 0), None
        n, s, floats = int(volume), 0, 0
    else:
        n, s, floats = exact
    total = _plus((n, s), added, 1)
    floats += type(added) is not int
    if removed is not None:
        total = _plus(total, removed, -1)
        floats -= type(removed) is not int
    if floats <= 0:
        # Every float volume was corrected away: what is left is a sum of ints, an int again.
        return total[0] >> total[1], None
    return _rounded(total), (*total, floats)


def add_volumes(
    volume: float, exact: ExactSum | None, added: Iterable[float]
) -> tuple[float, ExactSum | None]:
    """`add_volume` for many volumes added at once (an in-order run). O(len(added))."""
    values = list(added)
    if exact is None:
        total = sum(values, volume)
        if type(total) is int:
            return total, None
        current, floats = (int(volume), 0), 0
    else:
        current, floats = (exact[0], exact[1]), exact[2]
    for value in values:
        current = _plus(current, value, 1)
        floats += type(value) is not int
    return _rounded(current), (*current, floats)
