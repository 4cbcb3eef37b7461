"""The audit trail for admins: "who has looked at this young person's record?"."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from app.deps import AdminDep, ClockDep, SessionDep
from app.errors import Unprocessable
from app.pagination import InvalidCursor, decode_cursor, encode_cursor
from app.responses import errors_for
from app.schemas.audit import AuditEventRead, AuditPage
from app.services import audit

router = APIRouter(prefix="/v1", tags=["audit"])

AUDIT_PAGE_DEFAULT = 50
AUDIT_PAGE_MAX = 200


# An audit page's cursor: the last event's time and id (the listing's keyset).
AUDIT_CURSOR = (datetime, uuid.UUID)


@router.get(
    "/audit",
    response_model=AuditPage,
    responses=errors_for(401, 403, 422),
    summary="Audit events about a person and/or by an actor, newest first (admins)",
)
async def list_audit_events(
    session: SessionDep,
    actor: AdminDep,
    clock: ClockDep,
    person_id: Annotated[
        uuid.UUID | None, Query(description="the young person whose record was touched")
    ] = None,
    actor_id: Annotated[
        str | None,
        Query(min_length=1, max_length=128, description="a staff subject or client:<id>"),
    ] = None,
    before: Annotated[
        str | None, Query(max_length=200, description="next_cursor from the previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=AUDIT_PAGE_MAX)] = AUDIT_PAGE_DEFAULT,
) -> AuditPage:
    if person_id is None and actor_id is None:
        raise Unprocessable("Give a person_id or an actor_id.", field="query:person_id")
    try:
        cursor = decode_cursor(before, AUDIT_CURSOR) if before else None
    except InvalidCursor as exc:
        raise Unprocessable(
            "before is not a cursor this service issued.", field="query:before"
        ) from exc
    trail = await audit.read_trail(
        session,
        actor=actor,
        person_id=person_id,
        actor_id=actor_id,
        before=cursor,
        limit=limit,
        now=clock.now(),
    )
    last = trail.events[-1] if trail.events else None
    return AuditPage(
        events=[AuditEventRead.model_validate(e, from_attributes=True) for e in trail.events],
        next_cursor=encode_cursor(last.occurred_at, last.id) if trail.more and last else None,
    )
