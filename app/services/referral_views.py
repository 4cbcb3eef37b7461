"""A referral as the console's referral page shows it: its decision and case, its person with
their other referrals and open case, and (for an unverified public referral) the known person it
is proposed to be, with theirs; and the names of the key workers it mentions."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Case, Person, Referral, TriageDecision
from app.services.person_search import ReferralSummary, open_cases_for, referrals_for
from app.services.staff import staff_names


@dataclass(frozen=True, slots=True)
class PersonHistory:
    """A person with what the console shows beside a referral: their other referrals (newest
    first) and their open case, if any."""

    person: Person
    referrals: list[ReferralSummary]
    open_case: Case | None


@dataclass(frozen=True, slots=True)
class ReferralView:
    referral: Referral
    decision: TriageDecision
    case: Case | None
    person: Person
    # The referral's person, and (for an unverified public referral) the known person it is
    # proposed to be, each with their other referrals and open case.
    history: PersonHistory | None = None
    proposed: PersonHistory | None = None
    # Key workers' names by id (a worker the service has not seen yet has none).
    staff_names: dict[str, str] = field(default_factory=dict)


async def referral_view(session: AsyncSession, referral_id: uuid.UUID) -> ReferralView | None:
    """A referral with its decision, case and person (their other referrals and open case),
    and the person it is proposed to be linked to, or None."""
    row = (
        await session.execute(
            select(Referral, TriageDecision, Case, Person)
            .join(TriageDecision, TriageDecision.referral_id == Referral.id)
            .join(Person, Person.id == Referral.person_id)
            .outerjoin(Case, Case.id == Referral.case_id)
            .where(Referral.id == referral_id)
        )
    ).one_or_none()
    if row is None:
        return None
    referral, decision, case, person = row[0], row[1], row[2], row[3]
    proposed_id = referral.proposed_person_id
    proposed_person = (
        await session.get(Person, proposed_id)
        if proposed_id is not None and proposed_id != person.id
        else None
    )
    people = [person] + ([proposed_person] if proposed_person is not None else [])
    person_ids = [p.id for p in people]
    listed = await referrals_for(session, person_ids)
    open_cases = await open_cases_for(session, person_ids)
    histories = [
        PersonHistory(
            person=p,
            referrals=[s for s in listed[p.id] if s.referral.id != referral.id],
            open_case=open_cases.get(p.id),
        )
        for p in people
    ]
    workers = [c.key_worker_id for c in [case, *open_cases.values()] if c and c.key_worker_id]
    return ReferralView(
        referral=referral,
        decision=decision,
        case=case,
        person=person,
        history=histories[0],
        proposed=histories[1] if len(histories) > 1 else None,
        staff_names=await staff_names(session, workers),
    )
