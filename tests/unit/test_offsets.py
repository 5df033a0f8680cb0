"""Parsing `--from-offset` positions (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from rstream import OffsetType

from nnmon.streams.read.offsets import BadOffset, parse_start


@pytest.mark.parametrize("word, kind", [("first", OffsetType.FIRST), ("LAST", OffsetType.LAST),
                                        (" next ", OffsetType.NEXT)])
def test_named_positions(word: str, kind: OffsetType) -> None:
    start = parse_start(word)
    assert start.offset_type is kind and start.offset is None


def test_an_offset_number_is_that_offset() -> None:
    start = parse_start("1234")
    assert (start.offset_type, start.offset) == (OffsetType.OFFSET, 1234)


@pytest.mark.parametrize("text", ["2026-11-24T13:00:00Z", "2026-11-24T13:00:00+00:00",
                                  "2026-11-24T14:00:00+01:00", "2026-11-24T13:00:00.000z"])
def test_times_with_a_zone_are_that_instant(text: str) -> None:
    start = parse_start(text)
    expected = datetime(2026, 11, 24, 13, 0, tzinfo=UTC).timestamp() * 1000
    assert (start.offset_type, start.offset) == (OffsetType.TIMESTAMP, int(expected))


def test_a_time_without_a_zone_is_local_time() -> None:
    start = parse_start("2026-11-24T13:00:00")
    assert start.offset == int(datetime(2026, 11, 24, 13, 0).astimezone().timestamp() * 1000)


@pytest.mark.parametrize("text", ["", "yesterday", "-1", "1.5", "first!", "2026-13-01"])
def test_anything_else_is_a_bad_offset(text: str) -> None:
    with pytest.raises(BadOffset, match="not first, last, next"):
        parse_start(text)
