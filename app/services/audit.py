"""Write the audit trail in the caller's transaction, so an action and its record stand or fall
together; read it back for "who has looked at this young person's record?".

Audit rows hold ids and codes only. ``details`` is checked on the way in: a key that names an
identifying field, or a value that looks like free text, is replaced by ``[redacted]`` (and
the key logged) rather than failing the clinical action that is being recorded.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.logs import IDENTIFYING_KEYS
from app.models import AuditEvent
from app.security import Actor

log = structlog.get_logger(__name__)

# Outcomes recorded for an access.
SUCCESS = "success"
DENIED = "denied"  # the resource exists and the caller may not have it (403, or 404 to hide it)

REDACTED = "[redacted]"
# Keys that would carry patient identifiers or free text, beyond those never logged.
_FORBIDDEN_DETAIL_KEYS = IDENTIFYING_KEYS | {
    "given_names",
    "surname",
    "nhs",
    "notes",
    "note",
    "text",
    "free_text",
    "comment",
    "description",
    "message",
    "detail",
}
# Ids and codes: short, no spaces. Anything else may be free text and is not kept.
_CODE_RE = re.compile(r"^[A-Za-z0-9_.:@/+-]{0,64}$")
# Ten digits in a row could be an NHS number.
_NHS_LIKE_RE = re.compile(r"\d{10}")


def _clean(value: Any, depth: int = 0) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, str):
        ok = _CODE_RE.match(value) and not _NHS_LIKE_RE.search(value.replace("-", ""))
        # A uuid has long digit runs only by chance; keep real uuids whole.
        if not ok and _is_uuid(value):
            ok = True
        return value if ok else REDACTED
    if isinstance(value, list | tuple) and depth < 2:
        return [_clean(v, depth + 1) for v in value]
    if isinstance(value, dict) and depth < 2:
        return clean_details(value, depth + 1)
    return REDACTED


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def clean_details(details: dict[str, Any], depth: int = 0) -> dict[str, Any]:
    """``details`` with identifying keys and free-text values replaced by ``[redacted]``."""
    out: dict[str, Any] = {}
    for key, value in details.items():
        key = str(key)
        if key.lower() in _FORBIDDEN_DETAIL_KEYS:
            out[key] = REDACTED
        else:
            out[key] = _clean(value, depth)
        if out[key] == REDACTED and value != REDACTED:
            log.warning("audit_detail_redacted", detail_key=key)
    return out


def record(
    session: AsyncSession,
    *,
    actor: Actor,
    action: str,
    resource_type: str,
    resource_id: uuid.UUID | str | None,
    now: datetime,
    person_id: uuid.UUID | None = None,
    outcome: str = SUCCESS,
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
        details=clean_details(details or {}),
    )
    session.add(event)
    return event


# Where a request's refused accesses wait (``session.info``) until its session ends.
REFUSALS_KEY = "frontdoor.audit.refusals"


async def record_refusal(
    session: AsyncSession,
    *,
    actor: Actor,
    action: str,
    resource_type: str,
    resource_id: uuid.UUID | str | None,
    now: datetime,
    person_id: uuid.UUID | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Record a refused access (``outcome="denied"``) when the request's session ends.

    Nothing is written or committed here: the refusal is queued on the session, the caller raises
    its 403/404 exactly as it would for a record that does not exist, and the request session
    (``app.db.get_session``) writes the queued rows after rolling the request back, in a short
    transaction of their own. So a refused read and a missing record take the same path through
    the handler, and the refusal is still on the audit trail. (Kept ``async`` so callers need no
    change.)
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
        outcome=DENIED,
        details=clean_details(details or {}),
    )
    session.info.setdefault(REFUSALS_KEY, []).append(event)


def take_refusals(session: AsyncSession) -> list[AuditEvent]:
    """The refusals queued on ``session`` (by ``record_refusal``), removed from it."""
    events: list[AuditEvent] = session.info.pop(REFUSALS_KEY, [])
    return events


async def list_events(
    session: AsyncSession,
    *,
    person_id: uuid.UUID | None = None,
    actor_id: str | None = None,
    before: tuple[datetime, uuid.UUID] | None = None,
    limit: int,
) -> list[AuditEvent]:
    """Events about a person and/or by an actor, newest first, after a keyset cursor."""
    query = select(AuditEvent)
    if person_id is not None:
        query = query.where(AuditEvent.person_id == person_id)
    if actor_id is not None:
        query = query.where(AuditEvent.actor_id == actor_id)
    if before is not None:
        occurred_at, event_id = before
        query = query.where(
            or_(
                AuditEvent.occurred_at < occurred_at,
                (AuditEvent.occurred_at == occurred_at) & (AuditEvent.id < event_id),
            )
        )
    query = query.order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc()).limit(limit)
    return list((await session.scalars(query)).all())
