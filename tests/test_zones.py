"""`IsoParser` and `fixed_zone`: timestamps read from text are exactly what ``datetime.fromisoformat`` gives,
parsed once per text, and every aware one carries the one shared zone object of its UTC offset."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sessiondata import _zones
from sessiondata._zones import IsoParser, fixed_zone

offsets = st.integers(min_value=-23 * 60, max_value=23 * 60).map(lambda m: timedelta(minutes=m))
stamps = st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31))


@given(stamps, st.one_of(st.none(), offsets))
def test_parsed_values_equal_fromisoformat(ts: datetime, offset: timedelta | None) -> None:
    text = (ts if offset is None else ts.replace(tzinfo=timezone(offset))).isoformat()
    expected = datetime.fromisoformat(text)
    parse = IsoParser()
    got = parse(text)
    assert got == expected
    assert got.replace(tzinfo=None) == expected.replace(tzinfo=None)  # the same wall-clock value
    assert got.utcoffset() == expected.utcoffset()
    assert type(got.tzinfo) is type(expected.tzinfo)
    assert got.tzname() == expected.tzname()
    assert parse(text) is got  # remembered
    assert parse.lookup(text) is got


def test_timestamps_of_one_offset_share_one_zone_object() -> None:
    parse = IsoParser()
    a = parse("2024-03-04T09:30:00-05:00")
    b = parse("2024-03-04T09:31:00-05:00")
    c = IsoParser()("2024-03-05T10:00:00-05:00")
    assert a.tzinfo is b.tzinfo is c.tzinfo is fixed_zone(timedelta(hours=-5))
    assert parse("2024-03-04T14:30:00+00:00").tzinfo is timezone.utc
    assert parse("2024-03-04T09:30:00").tzinfo is None


def test_fixed_zone_is_timezone_of_the_offset() -> None:
    zone = fixed_zone(timedelta(hours=5, minutes=30))
    assert zone == timezone(timedelta(hours=5, minutes=30))
    assert fixed_zone(timedelta(hours=5, minutes=30)) is zone
    assert fixed_zone(timedelta(0)) is timezone.utc


def test_fixed_zone_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_zones, "_ZONES", {})  # a table of its own: the shared one keeps real offsets
    made = [fixed_zone(timedelta(seconds=s)) for s in range(1, 2000)]
    assert all(z == timezone(timedelta(seconds=s)) for s, z in enumerate(made, start=1))
    assert len(_zones._ZONES) == _zones._MAX_ZONES


def test_a_full_parser_forgets_and_keeps_answering() -> None:
    parse = IsoParser(max_entries=2)
    texts = [f"2024-03-04T09:3{i}:00-05:00" for i in range(5)]
    for text in texts:
        assert parse(text) == datetime.fromisoformat(text)
        assert len(parse) <= 2
    assert parse(texts[-1]) is parse(texts[-1])


def test_bad_text_and_bad_size_raise() -> None:
    with pytest.raises(ValueError):
        IsoParser()("2024-13-45T99:00:00")
    with pytest.raises(ValueError, match="max_entries"):
        IsoParser(max_entries=0)
