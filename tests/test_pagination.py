"""The one keyset-cursor codec (app/pagination.py): what it issues it reads back, and anything
else is ``InvalidCursor`` (the routers answer a 422 on the parameter that carried it)."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest

from app.pagination import InvalidCursor, decode_cursor, encode_cursor

AT = datetime(2026, 12, 1, 21, 30, 15, 123456, tzinfo=UTC)
ID = uuid.UUID("0b5e7a52-9d0e-4c1f-8d7e-2a3b4c5d6e7f")


def _raw(value: object) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(value)).decode().rstrip("=")


def test_a_cursor_reads_back_as_issued() -> None:
    cursor = encode_cursor(3, AT, ID)
    assert decode_cursor(cursor, (int, datetime, uuid.UUID)) == (3, AT, ID)
    # URL-safe and unpadded: it travels in a query string as it is.
    assert all(ch.isalnum() or ch in "-_" for ch in cursor)


def test_times_are_read_back_in_utc() -> None:
    local = AT.astimezone(timezone(timedelta(hours=1)))
    [at] = decode_cursor(encode_cursor(local), (datetime,))
    assert at == AT and at.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "cursor",
    [
        "nonsense!",
        "",
        base64.urlsafe_b64encode(b"not json").decode(),
        _raw({"rank": 1}),
        _raw([1, AT.isoformat()]),  # a part missing
        _raw([1, AT.isoformat(), str(ID), "extra"]),
        _raw([True, AT.isoformat(), str(ID)]),  # a yes/no is not a number
        _raw(["1", AT.isoformat(), str(ID)]),
        _raw([1, "2026-12-01T21:30:15", str(ID)]),  # no timezone: not one we issued
        _raw([1, "yesterday", str(ID)]),
        _raw([1, AT.isoformat(), "not-a-uuid"]),
        _raw([1, AT.isoformat(), 7]),
    ],
)
def test_anything_else_is_an_invalid_cursor(cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(cursor, (int, datetime, uuid.UUID))
