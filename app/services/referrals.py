"""Reading referrals back (by id or reference, each read audited, a refusal too), and what a
referring system may learn of a case.

Also the staff decision on a public self-referral's proposed match with a known person.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.authz import can_read_referral
from app.errors import Conflict, NotFound
from app.models import ApiClient, Case, Referral, TriageDecision
from app.security import Actor
from app.services import audit, case_events

# A reference as people type it: any case, with or without the dashes and spaces.
_REFERENCE_RE = re.compile(r"^FD([0-9A-HJKMNP-TV-Z]{4})([0-9A-HJKMNP-TV-Z]{4})$")


def normalise_reference(text: str) -> str | None:
    """ "fd-1a2b 3c4d" → "FD-1A2B-3C4D"; None when it cannot be a reference."""
    compact = re.sub(r"[\s-]", "", text).upper()
    match = _REFERENCE_RE.match(compact)
    if match is None:
        return None
    return f"FD-{match.group(1)}-{match.group(2)}"


@dataclass(frozen=True, slots=True)
class StoredReferral:
    referral: Referral
    decision: TriageDecision
    case: Case | None
    submitted_by_ods_code: str | None


def _stored_query() -> Select[Referral, TriageDecision, Case, str]:
    return (
        select(Referral, TriageDecision, Case, ApiClient.ods_code)
        .join(TriageDecision, TriageDecision.referral_id == Referral.id)
        .outerjoin(Case, Case.id == Referral.case_id)
        .outerjoin(ApiClient, ApiClient.id == Referral.submitted_by_client_id)
    )


async def get_stored(session: AsyncSession, referral_id: uuid.UUID) -> StoredReferral | None:
    row = (await session.execute(_stored_query().where(Referral.id == referral_id))).one_or_none()
    return None if row is None else StoredReferral(row[0], row[1], row[2], row[3])


async def find_by_reference(session: AsyncSession, reference: str) -> Referral | None:
    """The referral with this reference (typed in any case, dashes optional), or None."""
    normalised = normalise_reference(reference)
    if normalised is None:
        return None
    return await session.scalar(select(Referral).where(Referral.reference == normalised))


async def stored_by_reference(session: AsyncSession, reference: str) -> StoredReferral | None:
    normalised = normalise_reference(reference)
    if normalised is None:
        return None
    row = (
        await session.execute(_stored_query().where(Referral.reference == normalised))
    ).one_or_none()
    return None if row is None else StoredReferral(row[0], row[1], row[2], row[3])


async def may_read(
    session: AsyncSession,
    actor: Actor,
    stored: StoredReferral,
    *,
    now: datetime,
    details: dict[str, str] | None = None,
) -> bool:
    """Whether ``actor`` may read the referral back, with the read (or the refusal) audited.

    Any staff role may; a referring system only its own organisation's (app/authz.py).
    """
    referral = stored.referral
    if not can_read_referral(
        actor,
        submitted_by_client_id=referral.submitted_by_client_id,
        submitted_by_ods_code=stored.submitted_by_ods_code,
    ):
        await audit.record_refusal(
            session,
            actor=actor,
            action="read",
            resource_type="referral",
            resource_id=referral.id,
            person_id=referral.person_id,
            now=now,
            details=details,
        )
        return False
    audit.record(
        session,
        actor=actor,
        action="read",
        resource_type="referral",
        resource_id=referral.id,
        person_id=referral.person_id,
        now=now,
        details=details,
    )
    return True


async def read_referral(
    session: AsyncSession, actor: Actor, referral_id: uuid.UUID, *, now: datetime
) -> StoredReferral:
    """The referral for a reader who may see it, the read audited. Missing, or another
    organisation's, it is ``NotFound`` alike: a system cannot learn that it exists."""
    stored = await get_stored(session, referral_id)
    if stored is None or not await may_read(session, actor, stored, now=now):
        raise NotFound("No referral with this id.")
    return stored


async def read_by_reference(
    session: AsyncSession, actor: Actor, reference: str, *, now: datetime
) -> StoredReferral | None:
    """The referral a reference names (any case, dashes optional) for staff, the read audited;
    None when no referral has it."""
    stored = await stored_by_reference(session, reference)
    if stored is None:
        return None
    audit.record(
        session,
        actor=actor,
        action="read",
        resource_type="referral",
        resource_id=stored.referral.id,
        person_id=stored.referral.person_id,
        now=now,
        details={"by": "reference"},
    )
    return stored


async def case_visible(
    session: AsyncSession, actor: Actor, referral: Referral, case: Case | None
) -> bool:
    """Whether the reader of ``referral`` may see the state of the case holding it: staff
    always; a referring system only when its own referral opened the case."""
    if actor.is_staff or case is None or referral.disposition == "case_opened":
        return True
    return await case_opened_by_client(session, case.id, actor.client_id)


async def case_opened_by_client(
    session: AsyncSession, case_id: uuid.UUID, client_id: uuid.UUID | None
) -> bool:
    """Did this referring system's referral open the case? Only then may it see its state."""
    if client_id is None:
        return False
    first = await session.scalar(
        select(Referral.submitted_by_client_id)
        .where(Referral.case_id == case_id, Referral.disposition == "case_opened")
        .limit(1)
    )
    return first == client_id


async def decide_person_link(
    session: AsyncSession,
    *,
    referral_id: uuid.UUID,
    confirm: bool,
    actor: Actor,
    now: datetime,
) -> StoredReferral:
    """Confirm or reject a public self-referral's proposed match with a known person.

    Confirmed, the referral belongs to that person; so does its case when the person has no
    other open case (with one, the link is refused with a 409 until staff close or merge one
    of them by hand). The person's record itself is not changed: what the self-referral said
    stays on the referral and its unverified record.
    """
    stored = await get_stored(session, referral_id)
    if stored is None:
        raise NotFound("No referral with this id.")
    referral = stored.referral
    if referral.person_link != "proposed" or referral.proposed_person_id is None:
        raise Conflict(
            "This referral has no proposed person link to decide.",
            person_link=referral.person_link,
        )
    unverified_person_id = referral.person_id
    if confirm:
        person_id = referral.proposed_person_id
        case = stored.case
        if case is not None and case.status != "closed":
            other_open = await session.scalar(
                select(Case.id).where(Case.person_id == person_id, Case.status != "closed")
            )
            if other_open is not None:
                raise Conflict(
                    "The person already has an open case: close or merge one of the two cases "
                    "before confirming the link.",
                    open_case_id=str(other_open),
                )
        referral.person_id = person_id
        if case is not None:
            case.person_id = person_id
            case.version += 1
            case.updated_at = now
            await case_events.record_person_confirmed(
                session, case, referral, actor=actor, from_person_id=unverified_person_id, now=now
            )
    referral.person_link = "confirmed" if confirm else "rejected"
    referral.person_link_decided_by = actor.id
    referral.person_link_decided_at = now
    audit.record(
        session,
        actor=actor,
        action="update",
        resource_type="referral",
        resource_id=referral.id,
        person_id=referral.person_id,
        now=now,
        details={
            "change": "person_link_confirmed" if confirm else "person_link_rejected",
            "proposed_person_id": referral.proposed_person_id,
            "unverified_person_id": unverified_person_id,
        },
    )
    await session.flush()
    return stored
