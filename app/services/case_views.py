"""What the console shows the people who work cases, read in one place: a case with its
referrals (their full decisions), timeline and the names behind the ids; the cases past or near
their respond-by time across a team lead's queues; and who a case may be given to or shared with.

Read-only: changes go through ``app.services.cases`` and ``app.services.queues``.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.authz import CASE_READER_ROLES, can_claim_from_queue
from app.models import (
    Case,
    CaseContact,
    CaseEvent,
    Person,
    Queue,
    Referral,
    StaffMember,
    TriageDecision,
)
from app.services import case_reads, cases
from app.services.case_reads import ReviewProposal
from app.services.cases import CaseContext, Status
from app.services.queues import WORKLIST_COLUMNS, WorklistRow, breached_condition
from app.services.staff import as_actor, staff_names
from app.triage import Ruleset

# "Due soon" on a team lead's page: respond-by within this many hours from now.
DUE_SOON_HOURS = 24
# A team lead's due-soon page lists at most this many cases (the worklists page the rest).
DUE_SOON_MAX_ROWS = 200


@dataclass(frozen=True, slots=True)
class ReferralWithDecision:
    """A referral that opened or joined a case, with the decision made on it."""

    referral: Referral
    decision: TriageDecision


@dataclass(slots=True)
class CaseView:
    """A case as its page shows it."""

    ctx: CaseContext
    person: Person
    queue: Queue
    # Oldest first, as they reached the case.
    referrals: list[ReferralWithDecision]
    events: list[CaseEvent]
    contacts: list[CaseContact]
    # The engine's urgency and eligibility (from the decisions) beside the case's own.
    engine_urgency_code: str | None
    eligibility: str | None
    awaiting_review: bool
    review_proposal: ReviewProposal | None
    # Names of the staff and queues the page mentions, by id.
    staff_names: dict[str, str] = field(default_factory=dict)
    queue_names: dict[str, str] = field(default_factory=dict)

    @property
    def latest(self) -> ReferralWithDecision | None:
        return self.referrals[-1] if self.referrals else None


async def case_view(session: AsyncSession, ctx: CaseContext, ruleset: Ruleset) -> CaseView:
    """The case in ``ctx`` with its person, queue, referrals, contacts, timeline and names,
    and (awaiting clinical review) the team the routing rules propose."""
    case = ctx.case
    person = await session.get(Person, case.person_id)
    queue = await session.get(Queue, case.queue_id)
    assert person is not None and queue is not None  # foreign keys
    rows = await session.execute(
        select(Referral, TriageDecision)
        .join(TriageDecision, TriageDecision.referral_id == Referral.id)
        .where(Referral.case_id == case.id)
        .order_by(Referral.received_at, Referral.id)
    )
    referrals = [ReferralWithDecision(r, d) for r, d in rows.all()]
    summaries = await cases.ensure_referrals(session, ctx)
    awaiting = cases.awaiting_review(case, summaries)
    events = await cases.case_events(session, case.id)
    contacts = await case_reads.case_contacts(session, case.id)
    staff_ids = {
        case.key_worker_id,
        case.thrive_decided_by,
        case.eligibility_reviewed_by,
        *ctx.supporting_worker_ids,
        *(s.added_by_id for s in ctx.supporters),
        *(c.recorded_by_id for c in contacts),
        *(e.actor_id for e in events if e.actor_kind == "staff"),
        *(str(e.data.get(key)) for e in events for key in _STAFF_KEYS if e.data.get(key)),
    }
    queue_ids = {
        case.queue_id,
        *(s.team_queue_id for s in ctx.supporters if s.team_queue_id),
        *(str(e.data.get(key)) for e in events for key in _QUEUE_KEYS if e.data.get(key)),
    }
    return CaseView(
        ctx=ctx,
        person=person,
        queue=queue,
        referrals=referrals,
        events=events,
        contacts=contacts,
        engine_urgency_code=cases.engine_urgency_code(summaries),
        eligibility=cases.effective_eligibility(case, summaries),
        awaiting_review=awaiting,
        review_proposal=(
            await case_reads.review_proposal(session, ctx, ruleset) if awaiting else None
        ),
        staff_names=await staff_names(session, [s for s in staff_ids if s]),
        queue_names=await queue_names(session, queue_ids),
    )


# Event data fields that name a member of staff or a queue (shown by name on the timeline).
_STAFF_KEYS = ("key_worker_id", "previous_key_worker_id", "worker_id")
_QUEUE_KEYS = (
    "case_queue_id",
    "routed_queue_id",
    "team_queue_id",
    "queue_id",
    "from_queue_id",
    "to_queue_id",
)


async def queue_names(session: AsyncSession, queue_ids: Collection[str]) -> dict[str, str]:
    """Queue names by id (retired queues too)."""
    if not queue_ids:
        return {}
    rows = await session.execute(select(Queue.id, Queue.name).where(Queue.id.in_(set(queue_ids))))
    return {queue_id: name for queue_id, name in rows.all()}


@dataclass(frozen=True, slots=True)
class StaffChoice:
    id: str
    name: str | None
    role: str


async def may_hold(session: AsyncSession, *, queue_id: str, queue_kind: str) -> list[StaffChoice]:
    """Known staff whose role holds cases in the queue (whom a team lead may allocate to: the
    rule ``cases.allocate`` enforces), by name."""
    members = await session.scalars(select(StaffMember).order_by(StaffMember.name, StaffMember.id))
    return [
        StaffChoice(m.id, m.name, m.role)
        for m in members
        if can_claim_from_queue(as_actor(m), queue_id, queue_kind)
    ]


async def may_support(session: AsyncSession, *, exclude: Collection[str]) -> list[StaffChoice]:
    """Known staff who work with cases (whom a supporter may be), except ``exclude``."""
    members = await session.scalars(
        select(StaffMember)
        .where(StaffMember.role.in_([str(role) for role in CASE_READER_ROLES]))
        .order_by(StaffMember.name, StaffMember.id)
    )
    return [StaffChoice(m.id, m.name, m.role) for m in members if m.id not in exclude]


async def active_queues(session: AsyncSession) -> list[Queue]:
    """The directory's active queues, by name (targets for a supporting team or a move)."""
    return list(await session.scalars(select(Queue).where(Queue.active).order_by(Queue.name)))


async def due_soon(
    session: AsyncSession,
    queue_ids: Sequence[str],
    *,
    now: datetime,
    within_hours: int = DUE_SOON_HOURS,
    limit: int = DUE_SOON_MAX_ROWS,
) -> list[WorklistRow]:
    """Open cases in ``queue_ids`` not yet contacted whose respond-by time has passed
    (breached) or falls within ``within_hours``: earliest respond-by first."""
    if not queue_ids:
        return []
    cases = Case.__table__
    persons = Person.__table__
    rows: Any = await session.execute(
        select(*WORKLIST_COLUMNS)
        .select_from(cases.join(persons, persons.c.id == cases.c.person_id))
        .where(
            cases.c.queue_id.in_(list(queue_ids)),
            cases.c.status != Status.CLOSED.value,
            breached_condition(now + timedelta(hours=within_hours)),
        )
        .order_by(cases.c.respond_by_at, cases.c.urgency_rank, cases.c.id)
        .limit(limit)
    )
    return [WorklistRow(*row) for row in rows.all()]
