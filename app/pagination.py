"""Keyset cursors: the one codec every paginated listing uses.

A cursor is the sort key of the last row on a page, for the client to send back for the next
page. It is opaque to clients (URL-safe base64 of a JSON array) and checked field by field on
the way in, so a cursor this service did not issue is refused (``InvalidCursor``) before it
reaches a query. Which request parameter carried it is the router's business: it maps
``InvalidCursor`` to a 422 on that parameter.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from app.errors import FrontDoorError

# The kinds of value a cursor may hold: timestamps (timezone-aware, read back in UTC), ids and
# small integers such as an urgency rank.
CursorPart = datetime | uuid.UUID | int


class InvalidCursor(FrontDoorError):
    """A cursor this service did not issue (or not for this listing)."""

    status_code = 422
    type = "validation_error"
    title = "Invalid request"

    def __init__(self, detail: str = "This is not a cursor this service issued.") -> None:
        super().__init__(detail)


def encode_cursor(*key: CursorPart) -> str:
    """The opaque cursor for a sort key, e.g. ``encode_cursor(occurred_at, event_id)``."""
    raw = orjson.dumps([_dumped(part) for part in key])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(value: str, kinds: Sequence[type[CursorPart]]) -> tuple[Any, ...]:
    """The sort key in ``value``, one part per kind in ``kinds``; else ``InvalidCursor``."""
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        parts = orjson.loads(raw)
    except (ValueError, binascii.Error, orjson.JSONDecodeError) as exc:
        raise InvalidCursor() from exc
    if not isinstance(parts, list) or len(parts) != len(kinds):
        raise InvalidCursor()
    return tuple(_loaded(part, kind) for part, kind in zip(parts, kinds, strict=True))


def _dumped(part: CursorPart) -> str | int:
    if isinstance(part, datetime):
        return part.isoformat()
    if isinstance(part, uuid.UUID):
        return str(part)
    return part


def _loaded(part: object, kind: type[CursorPart]) -> CursorPart:
    if kind is int:
        if isinstance(part, int) and not isinstance(part, bool):
            return part
        raise InvalidCursor()
    if not isinstance(part, str):
        raise InvalidCursor()
    try:
        if kind is uuid.UUID:
            return uuid.UUID(part)
        at = datetime.fromisoformat(part)
    except ValueError as exc:
        raise InvalidCursor() from exc
    if at.tzinfo is None:  # every sort timestamp is stored in UTC; a naive one was not ours
        raise InvalidCursor()
    return at.astimezone(UTC)
