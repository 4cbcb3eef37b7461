"""Write the audit trail in the caller's transaction, so an action and its record stand or fall
together."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import AuditEvent
from app.security import Actor


def record(
    session: AsyncSession,
    *,
    actor: Actor,
    action: str,
    resource_type: str,
    resource_id: uuid.UUID | str | None,
    now: datetime,
    person_id: uuid.UUID | None = None,
    outcome: str = "success",
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add one audit event to the session (flushed with the rest of the transaction).

    ``details`` must hold ids and codes only: never patient identifiers or free text.
    """
    event = AuditEvent(
        occurred_at=now,
        request_id=structlog.contextvars.get_contextvars().get("request_id"),
        actor_kind=actor.kind,
        actor_id=actor.id,
        actor_role=actor.role,
        actor_organisation=actor.ods_code,
        action=action,
        resource_type=resource_type,
        resource_id=str(resource_id) if resource_id is not None else None,
        person_id=person_id,
        outcome=outcome,
        details=details or {},
    )
    session.add(event)
    return event
