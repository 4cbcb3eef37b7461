"""Build the case API's response bodies from stored records (the cases, queues and "my cases"
routers share them)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Case, CaseContact, CaseEvent, Person
from app.schemas.case import (
    ActorRead,
    CaseEventRead,
    CaseRead,
    CaseReferralRead,
    ContactRead,
    ContactSummary,
    EligibilityRead,
    PersonBrief,
    PersonDetail,
    ReviewProposalRead,
    SupporterRead,
    ThriveRead,
    WaitingClock,
    WorklistItem,
)
from app.services import cases as service
from app.services.case_reads import MyCaseRow, review_proposal
from app.services.cases import CaseContext
from app.services.queues import WorklistRow
from app.triage import Ruleset


def waiting_clock(case: Case, now: datetime) -> WaitingClock:
    return WaitingClock(
        started_at=case.received_at,
        respond_by_at=case.respond_by_at,
        stopped_at=case.first_contact_at,
        running=case.first_contact_at is None and case.status != service.Status.CLOSED,
        breached=service.is_breached(case, now),
        within_target=service.within_target(case),
    )


def contact_summary(case: Case) -> ContactSummary:
    return ContactSummary(
        first_attended_at=case.first_contact_at,
        second_attended_at=case.second_contact_at,
        did_not_attend_count=case.did_not_attend_count or 0,
    )


def contact_read(contact: CaseContact) -> ContactRead:
    return ContactRead.model_validate(contact, from_attributes=True)


async def case_read(
    session: AsyncSession, ctx: CaseContext, now: datetime, ruleset: Ruleset
) -> CaseRead:
    """The full case for its key worker and team."""
    case = ctx.case
    person = ctx.person or await session.get(Person, case.person_id)
    assert person is not None  # foreign key
    referrals = await service.ensure_referrals(session, ctx)
    proposal = await review_proposal(session, ctx, ruleset)
    return CaseRead(
        id=case.id,
        version=case.version,
        status=service.Status(case.status),
        queue_id=case.queue_id,
        person=PersonDetail(
            id=person.id,
            nhs_number=person.nhs_number,
            given_name=person.given_name,
            family_name=person.family_name,
            date_of_birth=person.date_of_birth,
            postcode=person.postcode,
            phone=person.phone,
            email=person.email,
            send=person.send,
            looked_after=person.looked_after,
        ),
        urgency_code=case.urgency_code,
        engine_urgency_code=service.engine_urgency_code(referrals),
        eligibility=EligibilityRead.model_validate(
            {
                "outcome": service.effective_eligibility(case, referrals),
                "engine_outcome": service.engine_eligibility(referrals),
                "awaiting_review": service.awaiting_review(case, referrals),
                "review": case.eligibility_review,
                "reviewed_by": case.eligibility_reviewed_by,
                "reviewed_at": case.eligibility_reviewed_at,
                "reason": case.eligibility_reason,
            }
        ),
        review_proposal=(
            ReviewProposalRead(
                queue_id=proposal.queue_id,
                queue_name=proposal.queue_name,
                route_kind=proposal.route_kind,
                rule=proposal.rule,
            )
            if proposal
            else None
        ),
        contacts=contact_summary(case),
        waiting_clock=waiting_clock(case, now),
        first_contact_type=case.first_contact_type,
        key_worker_id=case.key_worker_id,
        allocated_at=case.allocated_at,
        thrive=ThriveRead(
            proposed=case.thrive_grouping_proposed,
            decided=case.thrive_grouping,
            decided_by=case.thrive_decided_by,
            decided_at=case.thrive_decided_at,
        ),
        supporters=[SupporterRead.model_validate(s, from_attributes=True) for s in ctx.supporters],
        outcome=case.outcome,
        closed_at=case.closed_at,
        referrals=[
            CaseReferralRead(
                id=referral.id,
                reference=referral.reference,
                channel=referral.channel,
                received_at=referral.received_at,
                disposition=referral.disposition,
                urgency_code=referral.urgency_code,
                route_kind=referral.route_kind,
            )
            for referral in referrals
        ],
        created_at=case.created_at,
        updated_at=case.updated_at,
    )


def event_read(event: CaseEvent) -> CaseEventRead:
    return CaseEventRead(
        seq=event.seq,
        type=event.type,
        at=event.created_at,
        actor=ActorRead(kind=event.actor_kind, id=event.actor_id, role=event.actor_role),
        from_status=event.from_status,
        to_status=event.to_status,
        reason=event.reason,
        data=event.data,
    )


ListedCase = WorklistRow | MyCaseRow
"""A worklist or "my cases" row: what a listing item is built from."""


def listing_fields(row: ListedCase, now: datetime) -> dict[str, object]:
    """The fields of a ``WorklistItem`` (and ``MyCaseItem``) for one listed case."""
    return {
        "id": row.id,
        "person": PersonBrief.model_validate(
            {
                "id": row.person_id,
                "given_name": row.given_name,
                "family_name": row.family_name,
                "date_of_birth": row.date_of_birth,
            }
        ),
        "queue_id": row.queue_id,
        "status": row.status,
        "urgency_code": row.urgency_code,
        "received_at": row.received_at,
        "respond_by_at": row.respond_by_at,
        "first_contact_at": row.first_contact_at,
        "breached": service.breached_at(row.status, row.first_contact_at, row.respond_by_at, now),
        "key_worker_id": row.key_worker_id,
        "allocated_at": row.allocated_at,
        "thrive_grouping": row.thrive_grouping or row.thrive_grouping_proposed,
        "version": row.version,
    }


def worklist_item(row: ListedCase, now: datetime) -> WorklistItem:
    return WorklistItem.model_validate(listing_fields(row, now))
