"""Cases: read a case and its timeline, and act on it (allocate, contact, start, hold, resume,
close, THRIVE grouping, supporters).

Access: a case the caller may not read answers 404, exactly like a case that does not exist (no
existence oracle). A case they can read but not change answers 403.

Optimistic concurrency: every case response carries ``ETag: W/"<version>"``. Every action
requires ``If-Match`` with that value: without it the answer is 428, with an out-of-date one 412
(and the current ETag), so a stale screen never silently overwrites someone else's change.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Body, Header, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.deps import ClockDep, JsonBody, SessionDep, StaffDep
from app.models import Person
from app.responses import errors_for
from app.schemas.case import (
    ActorRead,
    AllocateRequest,
    CaseEventRead,
    CaseRead,
    CaseReferralRead,
    CaseTimeline,
    CloseRequest,
    ContactRequest,
    HoldRequest,
    NoteRequest,
    PersonDetail,
    SupporterCreate,
    SupporterRead,
    ThriveDecisionRequest,
    ThriveRead,
    WaitingClock,
)
from app.security import Actor
from app.services import audit
from app.services import cases as service
from app.services.cases import CaseAction, CaseContext

router = APIRouter(prefix="/v1/cases", tags=["cases"])

IF_MATCH_DESCRIPTION = (
    'The case\'s ETag as last read (W/"<version>"). Required: missing → 428; '
    "out of date → 412 with the current ETag."
)
IfMatch = Annotated[
    str | None, Header(alias="If-Match", max_length=256, description=IF_MATCH_DESCRIPTION)
]
ACTION_ERRORS = errors_for(400, 401, 403, 404, 409, 412, 413, 415, 422, 428)
ETAG_HEADER = {
    "ETag": {"description": 'The case version: W/"<version>"', "schema": {"type": "string"}}
}


def if_match_versions(if_match: str | None) -> frozenset[int] | None:
    """The versions If-Match names (``W/"3"``, ``"3"``, or a list); None if it names none.

    ``*`` counts as naming none: it would let a client skip the check.
    """
    if not if_match:
        return None
    versions = set()
    for raw_tag in if_match.split(","):
        tag = raw_tag.strip()
        tag = tag[2:] if tag.startswith("W/") else tag
        tag = tag.strip('"')
        if tag.isdigit() and len(tag) <= 9:
            versions.add(int(tag))
    return frozenset(versions) or None


def waiting_clock(ctx: CaseContext, now: datetime) -> WaitingClock:
    case = ctx.case
    return WaitingClock(
        started_at=case.received_at,
        respond_by_at=case.respond_by_at,
        stopped_at=case.first_contact_at,
        running=case.first_contact_at is None and case.status != service.Status.CLOSED,
        breached=service.is_breached(case, now),
        within_target=service.within_target(case),
    )


async def case_read(
    session: AsyncSession, ctx: CaseContext, now: datetime, response: Response
) -> CaseRead:
    """The full case for its key worker and team; sets the ETag."""
    case = ctx.case
    person = ctx.person or await session.get(Person, case.person_id)
    assert person is not None  # foreign key
    referrals = (
        ctx.referrals
        if ctx.referrals is not None
        else await service.case_referrals(session, case.id)
    )
    response.headers["ETag"] = service.etag(case.version)
    return CaseRead(
        id=case.id,
        version=case.version,
        status=case.status,
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
        waiting_clock=waiting_clock(ctx, now),
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


@router.get(
    "/{case_id}",
    response_model=CaseRead,
    responses={200: {"headers": ETAG_HEADER}, **errors_for(401, 403, 404, 422)},
    summary="Read a case: the person, waiting clock, key worker, THRIVE grouping, supporters",
)
async def get_case(
    case_id: uuid.UUID, session: SessionDep, actor: StaffDep, clock: ClockDep, response: Response
) -> CaseRead:
    now = clock.now()
    ctx = await service.readable_case(session, actor, case_id, now=now)
    audit.record(
        session,
        actor=actor,
        action="read",
        resource_type="case",
        resource_id=ctx.case.id,
        person_id=ctx.case.person_id,
        now=now,
        details={"view": "case"},
    )
    return await case_read(session, ctx, now, response)


@router.get(
    "/{case_id}/events",
    response_model=CaseTimeline,
    responses={200: {"headers": ETAG_HEADER}, **errors_for(401, 403, 404, 422)},
    summary="The case's timeline: every event, oldest first (who, what, when, why)",
)
async def get_case_events(
    case_id: uuid.UUID, session: SessionDep, actor: StaffDep, clock: ClockDep, response: Response
) -> CaseTimeline:
    now = clock.now()
    ctx = await service.readable_case(session, actor, case_id, now=now)
    events = await service.case_events(session, ctx.case.id)
    audit.record(
        session,
        actor=actor,
        action="read",
        resource_type="case",
        resource_id=ctx.case.id,
        person_id=ctx.case.person_id,
        now=now,
        details={"view": "timeline", "events": len(events)},
    )
    response.headers["ETag"] = service.etag(ctx.case.version)
    return CaseTimeline(
        case_id=ctx.case.id,
        version=ctx.case.version,
        status=ctx.case.status,
        waiting_clock=waiting_clock(ctx, now),
        events=[
            CaseEventRead(
                seq=e.seq,
                type=e.type,
                at=e.created_at,
                actor=ActorRead(kind=e.actor_kind, id=e.actor_id, role=e.actor_role),
                from_status=e.from_status,
                to_status=e.to_status,
                reason=e.reason,
                data=e.data,
            )
            for e in events
        ],
    )


async def _locked(
    session: AsyncSession, actor: Actor, case_id: uuid.UUID, now: datetime, action: CaseAction
) -> CaseContext:
    """The case row, locked for this transaction (404 if the caller may not read it)."""
    return await service.readable_case(
        session, actor, case_id, now=now, for_update=True, attempted=action.value
    )


_Endpoint = TypeVar("_Endpoint", bound=Callable[..., Any])


def _action(path: str, summary: str, description: str) -> Callable[[_Endpoint], _Endpoint]:
    """Register a case action: JSON body, the updated case back with its new ETag."""
    return router.post(
        path,
        response_model=CaseRead,
        dependencies=[JsonBody],
        responses={200: {"headers": ETAG_HEADER}, **ACTION_ERRORS},
        summary=summary,
        description=f"{description}\n\n{IF_MATCH_DESCRIPTION}\n\n{STATUS_DESCRIPTION}",
    )


STATUS_DESCRIPTION = (
    "403: the caller may read the case but not do this. 404: no such case, or one the caller "
    "may not read. 409 (type illegal_transition): not allowed in the case's current status, "
    "which the body names (current_status, allowed_from)."
)


@_action(
    "/{case_id}/allocate",
    "Allocate or reallocate the case to a key worker (team leads of its queue)",
    "A waiting case becomes allocated; a held case changes key worker and keeps its status. "
    "Every allocation stays in the timeline. key_worker_id must be a member of staff the "
    "service knows (they have signed in) whose role holds cases in this queue: a practitioner "
    "or team lead of the queue, or a duty clinician (crisis and duty queues, or their own); "
    "anyone else (a call handler, an unknown id) is a 422 on key_worker_id.",
)
async def allocate_case(
    case_id: uuid.UUID,
    body: Annotated[AllocateRequest, Body()],
    session: SessionDep,
    actor: StaffDep,
    clock: ClockDep,
    response: Response,
    if_match: IfMatch = None,
) -> CaseRead:
    now = clock.now()
    ctx = await _locked(session, actor, case_id, now, CaseAction.ALLOCATE)
    await service.allocate(
        session,
        ctx,
        actor=actor,
        expected_versions=if_match_versions(if_match),
        key_worker_id=body.key_worker_id,
        now=now,
        reason=body.reason,
    )
    return await case_read(session, ctx, now, response)


@_action(
    "/{case_id}/contact",
    "Record the first meaningful contact (allocated → contacted); stops the waiting clock",
    "The contact type (advice, assessment, intervention) and time are kept; the timeline event "
    "says whether it was within the respond-by target.",
)
async def record_contact(
    case_id: uuid.UUID,
    body: Annotated[ContactRequest, Body()],
    session: SessionDep,
    actor: StaffDep,
    clock: ClockDep,
    response: Response,
    if_match: IfMatch = None,
) -> CaseRead:
    now = clock.now()
    ctx = await _locked(session, actor, case_id, now, CaseAction.RECORD_CONTACT)
    await service.record_first_contact(
        session,
        ctx,
        actor=actor,
        expected_versions=if_match_versions(if_match),
        contact_type=body.contact_type.value,
        method=body.method.value if body.method else None,
        contacted_at=body.contacted_at,
        now=now,
        reason=body.reason,
    )
    return await case_read(session, ctx, now, response)


async def _status_change(
    action: CaseAction,
    case_id: uuid.UUID,
    reason: str | None,
    session: AsyncSession,
    actor: Actor,
    clock: ClockDep,
    response: Response,
    if_match: str | None,
) -> CaseRead:
    now = clock.now()
    ctx = await _locked(session, actor, case_id, now, action)
    await service.change_status(
        session,
        ctx,
        actor=actor,
        expected_versions=if_match_versions(if_match),
        action=action,
        now=now,
        reason=reason,
    )
    return await case_read(session, ctx, now, response)


@_action("/{case_id}/start", "Start the intervention (contacted → active)", "Send {} or a reason.")
async def start_case(
    case_id: uuid.UUID,
    body: Annotated[NoteRequest, Body()],
    session: SessionDep,
    actor: StaffDep,
    clock: ClockDep,
    response: Response,
    if_match: IfMatch = None,
) -> CaseRead:
    return await _status_change(
        CaseAction.START, case_id, body.reason, session, actor, clock, response, if_match
    )


@_action("/{case_id}/hold", "Put the case on hold (active → on_hold)", "A reason is required.")
async def hold_case(
    case_id: uuid.UUID,
    body: Annotated[HoldRequest, Body()],
    session: SessionDep,
    actor: StaffDep,
    clock: ClockDep,
    response: Response,
    if_match: IfMatch = None,
) -> CaseRead:
    return await _status_change(
        CaseAction.HOLD, case_id, body.reason, session, actor, clock, response, if_match
    )


@_action("/{case_id}/resume", "Resume a case on hold (on_hold → active)", "Send {} or a reason.")
async def resume_case(
    case_id: uuid.UUID,
    body: Annotated[NoteRequest, Body()],
    session: SessionDep,
    actor: StaffDep,
    clock: ClockDep,
    response: Response,
    if_match: IfMatch = None,
) -> CaseRead:
    return await _status_change(
        CaseAction.RESUME, case_id, body.reason, session, actor, clock, response, if_match
    )


@_action(
    "/{case_id}/close",
    "Close the case with an outcome (from allocated, contacted, active or on_hold)",
    "The young person can come back at any time: a later referral opens a new case.",
)
async def close_case(
    case_id: uuid.UUID,
    body: Annotated[CloseRequest, Body()],
    session: SessionDep,
    actor: StaffDep,
    clock: ClockDep,
    response: Response,
    if_match: IfMatch = None,
) -> CaseRead:
    now = clock.now()
    ctx = await _locked(session, actor, case_id, now, CaseAction.CLOSE)
    await service.close(
        session,
        ctx,
        actor=actor,
        expected_versions=if_match_versions(if_match),
        outcome=body.outcome.value,
        now=now,
        reason=body.reason,
    )
    return await case_read(session, ctx, now, response)


@_action(
    "/{case_id}/thrive",
    "Confirm or change the THRIVE grouping with the young person (after first contact)",
    "The grouping proposed at triage is confirmed (same value) or changed; the case records "
    "who decided and when.",
)
async def decide_thrive(
    case_id: uuid.UUID,
    body: Annotated[ThriveDecisionRequest, Body()],
    session: SessionDep,
    actor: StaffDep,
    clock: ClockDep,
    response: Response,
    if_match: IfMatch = None,
) -> CaseRead:
    now = clock.now()
    ctx = await _locked(session, actor, case_id, now, CaseAction.DECIDE_THRIVE)
    await service.decide_thrive(
        session,
        ctx,
        actor=actor,
        expected_versions=if_match_versions(if_match),
        grouping=body.thrive_grouping.value,
        now=now,
        reason=body.reason,
    )
    return await case_read(session, ctx, now, response)


@_action(
    "/{case_id}/supporters",
    "Pull in a supporting worker or specialist team; the key worker keeps the case",
    "A supporting worker can read the case; so can members of a supporting team. worker_id "
    "must be a known member of staff who works with cases (not a call handler), else a 422 "
    "on worker_id.",
)
async def add_supporter(
    case_id: uuid.UUID,
    body: Annotated[SupporterCreate, Body()],
    session: SessionDep,
    actor: StaffDep,
    clock: ClockDep,
    response: Response,
    if_match: IfMatch = None,
) -> CaseRead:
    now = clock.now()
    ctx = await _locked(session, actor, case_id, now, CaseAction.ADD_SUPPORTER)
    await service.add_supporter(
        session,
        ctx,
        actor=actor,
        expected_versions=if_match_versions(if_match),
        kind=body.kind,
        worker_id=body.worker_id,
        team_queue_id=body.team_queue_id,
        role=body.role,
        now=now,
        reason=body.reason,
    )
    return await case_read(session, ctx, now, response)


@_action(
    "/{case_id}/supporters/{supporter_id}/remove",
    "Stand a supporter down (kept in the case's history)",
    "Send {} or a reason.",
)
async def remove_supporter(
    case_id: uuid.UUID,
    supporter_id: uuid.UUID,
    body: Annotated[NoteRequest, Body()],
    session: SessionDep,
    actor: StaffDep,
    clock: ClockDep,
    response: Response,
    if_match: IfMatch = None,
) -> CaseRead:
    now = clock.now()
    ctx = await _locked(session, actor, case_id, now, CaseAction.REMOVE_SUPPORTER)
    await service.remove_supporter(
        session,
        ctx,
        actor=actor,
        expected_versions=if_match_versions(if_match),
        supporter_id=supporter_id,
        now=now,
        reason=body.reason,
    )
    return await case_read(session, ctx, now, response)
