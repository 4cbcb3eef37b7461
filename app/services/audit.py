"""Write the audit trail in the caller's transaction, so an action and its record stand or fall
together; read it back for "who has looked at this young person's record?".

Audit rows hold ids and codes only. ``details`` is checked on the way in: a key that names an
identifying field, or a value that looks like free text, is replaced by ``[redacted]`` (and
the key logged) rather than failing the clinical action that is being recorded.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, cast

import structlog
from sqlalchemy import (
    ColumnElement,
    String,
    Table,
    bindparam,
    func,
    insert,
    literal_column,
    or_,
    select,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from app.logs import IDENTIFYING_KEYS
from app.models import AuditEvent
from app.models.base import is_uuid
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
        if not ok and is_uuid(value):
            ok = True
        return value if ok else REDACTED
    if isinstance(value, list | tuple) and depth < 2:
        return [_clean(v, depth + 1) for v in value]
    if isinstance(value, dict) and depth < 2:
        return clean_details(value, depth + 1)
    return REDACTED


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
    event = _event(actor, action, resource_type, resource_id, now, person_id, outcome, details)
    session.add(event)
    return event


def _event(
    actor: Actor,
    action: str,
    resource_type: str,
    resource_id: uuid.UUID | str | None,
    now: datetime,
    person_id: uuid.UUID | None,
    outcome: str,
    details: dict[str, Any] | None,
) -> AuditEvent:
    """One audit row: who (with the request's id), did what to which record, and how it went."""
    return AuditEvent(
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
    event = _event(actor, action, resource_type, resource_id, now, person_id, DENIED, details)
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


@dataclass(frozen=True, slots=True)
class TrailPage:
    """One page of the audit trail, newest first, and whether an older page follows."""

    events: list[AuditEvent]
    more: bool


async def read_trail(
    session: AsyncSession,
    *,
    actor: Actor,
    person_id: uuid.UUID | None,
    actor_id: str | None,
    before: tuple[datetime, uuid.UUID] | None,
    limit: int,
    now: datetime,
) -> TrailPage:
    """A page of the events about a person and/or by an actor, and the audit of this read.

    Reading the trail is itself an access to the person's record, so it is audited too: after
    the query, so the page lists what was there before this read.
    """
    # One extra row tells whether there is another page.
    rows = await list_events(
        session, person_id=person_id, actor_id=actor_id, before=before, limit=limit + 1
    )
    page = rows[:limit]
    record(
        session,
        actor=actor,
        action="read",
        resource_type="audit",
        resource_id=None,
        person_id=person_id,
        now=now,
        details={"actor_id_filter": actor_id, "events": len(page)},
    )
    return TrailPage(events=page, more=len(rows) > limit)


# Listings: one audit row per case a page showed ---------------------------------------------

AUDIT_EVENTS = cast(Table, AuditEvent.__table__)
# The columns an INSERT … SELECT of audit rows fills, in the order of its SELECT list (the
# one-statement claim, app/services/claims.py, writes its row with them too).
AUDIT_INSERT_COLUMNS = (
    "id",
    "occurred_at",
    "request_id",
    "actor_kind",
    "actor_id",
    "actor_role",
    "actor_organisation",
    "action",
    "resource_type",
    "resource_id",
    "person_id",
    "outcome",
    "details",
)


class ShownCase(Protocol):
    """What a listing row must carry to be audited: the case and its person."""

    @property
    def id(self) -> uuid.UUID: ...

    @property
    def person_id(self) -> uuid.UUID: ...


async def record_listing(
    session: AsyncSession,
    *,
    actor: Actor,
    rows: Sequence[ShownCase],
    now: datetime,
    details: dict[str, Any],
) -> None:
    """One ``list`` audit event per case shown, naming its person, so "who has seen this young
    person?" (``GET /v1/audit?person_id=…``) includes worklists and "my cases". A page is one
    INSERT in the request's transaction, of the fields ``record`` writes: on PostgreSQL over
    ``unnest`` of the page's ids (``AUDIT_LISTING_POSTGRESQL``), elsewhere a Core executemany
    on the table (one ORM object per row cost about three times the CPU).
    """
    if not rows:
        return  # an empty page showed nobody
    cleaned = clean_details(details)
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(
            AUDIT_LISTING_POSTGRESQL,
            {
                "list_case_ids": [row.id for row in rows],
                "list_person_ids": [row.person_id for row in rows],
                "list_now": now,
                "list_request_id": request_id,
                "list_actor_kind": actor.kind,
                "list_actor_id": actor.id,
                "list_actor_role": actor.role,
                "list_actor_organisation": actor.ods_code,
                "list_details": cleaned,
            },
        )
        return
    await session.execute(
        insert(AUDIT_EVENTS),
        [
            {
                "occurred_at": now,
                "request_id": request_id,
                "actor_kind": actor.kind,
                "actor_id": actor.id,
                "actor_role": actor.role,
                "actor_organisation": actor.ods_code,
                "action": "list",
                "resource_type": "case",
                "resource_id": str(row.id),
                "person_id": row.person_id,
                "outcome": SUCCESS,
                "details": cleaned,
            }
            for row in rows
        ],
    )


def _constant(value: str) -> ColumnElement[str]:
    """One of our codes as a constant in the SQL text (never request data)."""
    if not value.isidentifier():
        raise ValueError(f"not a code to write into SQL: {value!r}")
    return literal_column(f"'{value}'", String)


def audit_listing_statement_postgresql() -> Any:
    """``record_listing``'s rows as one INSERT … SELECT over ``unnest`` of the page's case and
    person ids: two array parameters instead of a row of parameters per case (an executemany
    binds, and serialises the details of, every row separately)."""
    uuids = postgresql.ARRAY(postgresql.UUID(as_uuid=True))
    shown = (
        func.unnest(
            bindparam("list_case_ids", type_=uuids), bindparam("list_person_ids", type_=uuids)
        )
        .table_valued("case_id", "person_id")
        .render_derived(name="shown")
    )
    return insert(AUDIT_EVENTS).from_select(
        AUDIT_INSERT_COLUMNS,
        select(
            func.gen_random_uuid(),
            bindparam("list_now", type_=AUDIT_EVENTS.c.occurred_at.type),
            bindparam("list_request_id", type_=String),
            bindparam("list_actor_kind", type_=String),
            bindparam("list_actor_id", type_=String),
            bindparam("list_actor_role", type_=String),
            bindparam("list_actor_organisation", type_=String),
            _constant("list"),
            _constant("case"),
            sql_cast(shown.c.case_id, String),
            shown.c.person_id,
            _constant(SUCCESS),
            bindparam("list_details", type_=AUDIT_EVENTS.c.details.type),
        ).select_from(shown),
    )


AUDIT_LISTING_POSTGRESQL = audit_listing_statement_postgresql()
