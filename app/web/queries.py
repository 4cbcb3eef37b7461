"""Read-only helpers for the console pages: a referral with its decision, people's referrals,
and the queues service's overview in the order a call handler scans it."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Case, Person, Referral, TriageDecision
from app.services.queues import QueueCounts

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
class ReferralView:
    referral: Referral
    decision: TriageDecision
    case: Case | None
    person: Person


async def referral_view(session: AsyncSession, referral_id: uuid.UUID) -> ReferralView | None:
    """A referral with its decision, case and person, or None."""
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
    return ReferralView(referral=row[0], decision=row[1], case=row[2], person=row[3])


@dataclass(frozen=True, slots=True)
class ReferralSummary:
    referral: Referral
    decision: TriageDecision
    case: Case | None


async def referrals_for(
    session: AsyncSession, person_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[ReferralSummary]]:
    """Each person's referrals, newest first (the same listing ``GET /v1/persons`` gives)."""
    by_person: dict[uuid.UUID, list[ReferralSummary]] = {pid: [] for pid in person_ids}
    if not person_ids:
        return by_person
    rows = (
        await session.execute(
            select(Referral, TriageDecision, Case)
            .join(TriageDecision, TriageDecision.referral_id == Referral.id)
            .outerjoin(Case, Case.id == Referral.case_id)
            .where(Referral.person_id.in_(person_ids))
            .order_by(Referral.received_at.desc())
        )
    ).all()
    for referral, decision, case in rows:
        by_person[referral.person_id].append(ReferralSummary(referral, decision, case))
    return by_person
