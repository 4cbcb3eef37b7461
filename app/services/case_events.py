"""The append-only case timeline: who did what, when and why."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Case, CaseEvent, Referral
from app.models.base import new_id
from app.security import Actor
from app.triage import Decision


async def append_event(
    session: AsyncSession,
    case: Case,
    *,
    type: str,
    now: datetime,
    actor: Actor | None = None,
    from_status: str | None = None,
    to_status: str | None = None,
    reason: str | None = None,
    data: dict[str, Any] | None = None,
) -> CaseEvent:
    """Add the next event to a case's timeline (the caller holds the case row, and the case has
    its id: it was loaded, or flushed when opened).

    The event's ``seq`` comes from the case's own counter (``Case.last_event_seq``), bumped
    here, so the case UPDATE carries it: no query for the latest seq. Nothing is flushed: the
    event goes to the database with the case change and the audit row, in the caller's next
    flush (at the latest, the commit). ``(case_id, seq)`` is unique, so a counter that had
    fallen behind would fail loudly, never reorder a timeline.
    """
    case.last_event_seq = (case.last_event_seq or 0) + 1
    event = CaseEvent(
        id=new_id(),
        case_id=case.id,
        seq=case.last_event_seq,
        type=type,
        actor_kind=actor.kind if actor else "system",
        actor_id=actor.id if actor else None,
        actor_role=actor.role if actor else None,
        from_status=from_status,
        to_status=to_status,
        reason=reason,
        data=data or {},
        created_at=now,
    )
    session.add(event)
    return event


async def record_referral(
    session: AsyncSession,
    case: Case,
    referral: Referral,
    decision: Decision,
    *,
    joined: bool,
    now: datetime,
) -> CaseEvent:
    """Open the timeline with the referral, or note a further referral joining the case."""
    data = {
        "referral_id": str(referral.id),
        "reference": referral.reference,
        "channel": referral.channel,
        "urgency_code": decision.urgency.code.value,
        "flags": list(decision.urgency.flags),
        "route_kind": decision.route.kind.value,
        "routed_queue_id": decision.route.queue_id,
        "eligibility": decision.eligibility.outcome.value,
        "case_urgency_code": case.urgency_code,
        "case_queue_id": case.queue_id,
        "respond_by_at": case.respond_by_at.isoformat() if case.respond_by_at else None,
    }
    return await append_event(
        session,
        case,
        type="referral_joined" if joined else "case_opened",
        now=now,
        from_status=case.status if joined else None,
        to_status=case.status,
        reason=(
            "A further referral joined the open case"
            if joined
            else f"Referral routed to {decision.route.queue_name or case.queue_id}"
        ),
        data=data,
    )


async def record_person_confirmed(
    session: AsyncSession,
    case: Case,
    referral: Referral,
    *,
    actor: Actor,
    from_person_id: object,
    now: datetime,
) -> CaseEvent:
    """Staff confirmed that a public self-referral is about a known person: the case moves to
    that person's record (ids only in the timeline)."""
    return await append_event(
        session,
        case,
        type="person_confirmed",
        now=now,
        actor=actor,
        data={
            "referral_id": str(referral.id),
            "from_person_id": str(from_person_id),
            "to_person_id": str(referral.person_id),
        },
    )
