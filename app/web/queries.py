"""Read-only helpers for the console pages: a referral with its decision and its people's
referrals (from the person search service), and the queues service's overview in the order a
call handler scans it."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Case, Person, Referral, TriageDecision
from app.services.person_search import ReferralSummary, open_cases_for, referrals_for
from app.services.queues import QueueCounts
from app.services.staff import staff_names

# Crisis and duty first: the queues a call handler most needs to see at a glance.
QUEUE_KIND_ORDER = {
    "crisis": 0,
    "duty": 1,
    "looked_after": 2,
    "access_hub": 3,
    "one_stop_shop": 4,
    "community_base": 5,
}


@dataclass(frozen=True, slots=True)
class QueueRow:
    """One line of the console's queue table."""

    id: str
    name: str
    kind: str
    locality_name: str | None
    open_cases: int
    unallocated: int
    breached: int
    oldest_waiting_since: datetime | None


def ordered_queues(overview: Sequence[QueueCounts]) -> list[QueueRow]:
    """The queues service's overview, crisis and duty first, then by name."""
    rows = [
        QueueRow(
            id=counts.queue.id,
            name=counts.queue.name,
            kind=counts.queue.kind,
            locality_name=counts.queue.locality_name,
            open_cases=counts.open_count,
            unallocated=counts.unallocated_count,
            breached=counts.breached_count,
            oldest_waiting_since=_as_utc(counts.oldest_waiting_since),
        )
        for counts in overview
    ]
    return sorted(rows, key=lambda q: (QUEUE_KIND_ORDER.get(q.kind, len(QUEUE_KIND_ORDER)), q.name))


def _as_utc(value: object) -> datetime | None:
    """``min()`` over a UTC column comes back without the column type's conversion on SQLite."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


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
