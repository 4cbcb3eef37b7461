"""Admins see every message's state ("what would have been sent" in the local sink), and retry
or cancel a failed one (docs/domain/signposting-and-messages.md)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from app.deps import AdminDep, ClockDep, SessionDep
from app.errors import Conflict, NotFound
from app.models import Notification
from app.responses import errors_for
from app.services import audit
from app.services.notifications import (
    CANCELLABLE_BY_ADMIN,
    RETRYABLE_BY_ADMIN,
    list_notifications,
    mask_recipient,
)

router = APIRouter(prefix="/v1", tags=["notifications"])

NOTIFICATIONS_PAGE_MAX = 200


class NotificationRead(BaseModel):
    id: uuid.UUID
    kind: Literal["acknowledgement", "referrer_outcome", "breach_warning"]
    channel: Literal["email", "sms"]
    status: Literal[
        "pending", "sending", "delivered", "failed", "permanent_failure", "not_sent", "sink"
    ]
    attempts: int
    created_at: datetime
    sent_at: datetime | None
    delivered_at: datetime | None = None
    next_attempt_at: datetime | None = None
    referral_id: uuid.UUID | None = None
    case_id: uuid.UUID | None = None
    recipient: str | None = Field(default=None, description="masked (j***@example.com)")
    last_error: str | None = Field(
        default=None, description="why the last attempt failed, or why it was not sent"
    )
    provider_status: str | None = None
    subject: str | None = None
    body: str | None = Field(default=None, description="what was (or would have been) sent")


class NotificationList(BaseModel):
    items: list[NotificationRead]


def _read(row: Notification) -> NotificationRead:
    personalisation: dict[str, Any] = row.personalisation or {}
    waiting = row.status in ("pending", "sending")
    return NotificationRead(
        id=row.id,
        kind=row.kind,
        channel=row.channel,
        status=row.status,
        attempts=row.attempts,
        created_at=row.created_at,
        sent_at=row.sent_at,
        delivered_at=row.delivered_at,
        next_attempt_at=row.next_attempt_at if waiting else None,
        referral_id=row.referral_id,
        case_id=row.case_id,
        recipient=mask_recipient(row.recipient),
        last_error=row.last_error,
        provider_status=row.provider_status,
        subject=personalisation.get("subject"),
        body=personalisation.get("body"),
    )


@router.get(
    "/notifications",
    response_model=NotificationList,
    responses=errors_for(401, 403, 422),
    summary="Messages and their delivery state, newest first (admins)",
)
async def notifications(
    session: SessionDep,
    actor: AdminDep,
    clock: ClockDep,
    referral_id: Annotated[
        uuid.UUID | None, Query(description="only the messages about this referral")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=NOTIFICATIONS_PAGE_MAX)] = 50,
) -> NotificationList:
    rows = await list_notifications(session, referral_id=referral_id, limit=limit)
    audit.record(
        session,
        actor=actor,
        action="read",
        resource_type="notification",
        resource_id=referral_id,
        now=clock.now(),
        details={"referral_id": referral_id, "count": len(rows)},
    )
    return NotificationList(items=[_read(row) for row in rows])


async def _locked(session: SessionDep, notification_id: uuid.UUID) -> Notification:
    row = await session.get(Notification, notification_id, with_for_update=True)
    if row is None:
        raise NotFound("No message with this id.")
    return row


@router.post(
    "/notifications/{notification_id}/retry",
    response_model=NotificationRead,
    responses=errors_for(401, 403, 404, 409, 422),
    summary="Send a failed or cancelled message again (admins)",
)
async def retry_notification(
    notification_id: uuid.UUID, session: SessionDep, actor: AdminDep, clock: ClockDep
) -> NotificationRead:
    row = await _locked(session, notification_id)
    if row.status not in RETRYABLE_BY_ADMIN:
        raise Conflict(f"A message that is {row.status} cannot be retried.")
    if row.recipient is None:
        raise Conflict(
            "Nobody may be contacted this way for this message: "
            + (row.last_error or "no recipient")
        )
    now = clock.now()
    before = row.status
    row.status, row.next_attempt_at, row.claimed_until = "pending", now, None
    row.attempts, row.updated_at = 0, now
    audit.record(
        session,
        actor=actor,
        action="update",
        resource_type="notification",
        resource_id=row.id,
        now=now,
        details={"change": "retry", "from": before, "referral_id": row.referral_id},
    )
    return _read(row)


@router.post(
    "/notifications/{notification_id}/cancel",
    response_model=NotificationRead,
    responses=errors_for(401, 403, 404, 409, 422),
    summary="Stop a pending or failed message from being sent (admins)",
)
async def cancel_notification(
    notification_id: uuid.UUID, session: SessionDep, actor: AdminDep, clock: ClockDep
) -> NotificationRead:
    row = await _locked(session, notification_id)
    if row.status not in CANCELLABLE_BY_ADMIN:
        raise Conflict(f"A message that is {row.status} cannot be cancelled.")
    if row.claimed_until is not None and row.claimed_until > clock.now():
        raise Conflict("The message is being sent right now; try again in a moment.")
    now = clock.now()
    before = row.status
    row.status, row.updated_at, row.last_error = "not_sent", now, f"cancelled by {actor.id}"
    audit.record(
        session,
        actor=actor,
        action="update",
        resource_type="notification",
        resource_id=row.id,
        now=now,
        details={"change": "cancel", "from": before, "referral_id": row.referral_id},
    )
    return _read(row)
