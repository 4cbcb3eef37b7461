"""Cases: read a case, its timeline and its contacts, and work it (allocate, contacts, start,
hold, resume, close, THRIVE grouping, supporters, clinical review, re-grading, transfer).

Access: a case the caller may not read answers 404, exactly like a case that does not exist (no
existence oracle). A case they can read but not change answers 403.

Optimistic concurrency: every case response carries a strong ``ETag: "<version>"``. Every action
requires ``If-Match`` with that value: without it the answer is 428, with an out-of-date one 412
(and the current ETag), so a stale screen never silently overwrites someone else's change. As
RFC 9110 requires for If-Match, comparison is strong: a weak tag (``W/"3"``) never matches.

Every action goes through one dependency (``locked_case``): the case row locked for the
request's transaction, the caller, the time and the versions If-Match names. The services raise
domain errors (``StaleVersion(current_version)``); this module turns them into headers.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Body, Depends, Header, Request, Response

from app.case_presenters import case_read, contact_read, contact_summary, event_read, waiting_clock
from app.deps import ClockDep, JsonBody, RulesetDep, SessionDep, StaffDep
from app.models.case import ContactAttendance, ContactMechanism, ContactWith, ReviewOutcome
from app.responses import errors_for
from app.schemas.case import (
    AllocateRequest,
    CaseRead,
    CaseTimeline,
    CloseRequest,
    ContactCreate,
    ContactList,
    ContactRequest,
    HoldRequest,
    NoteRequest,
    ReviewRequest,
    SupporterCreate,
    ThriveDecisionRequest,
    TransferRequest,
    UrgencyChangeRequest,
)
from app.security import Actor
from app.services import audit
from app.services import cases as service
from app.services.case_reads import case_contacts
from app.services.cases import CaseAction, CaseContext
from app.triage import Ruleset

router = APIRouter(prefix="/v1/cases", tags=["cases"])

IF_MATCH_DESCRIPTION = (
    'The case\'s ETag as last read ("<version>", compared strongly: a weak W/ tag never '
    "matches). Required: missing → 428; out of date → 412 with the current ETag."
)
IfMatch = Annotated[
    str | None, Header(alias="If-Match", max_length=256, description=IF_MATCH_DESCRIPTION)
]
ACTION_ERRORS = errors_for(400, 401, 403, 404, 409, 412, 413, 415, 422, 428, 503)
READ_ERRORS = errors_for(401, 403, 404, 422, 503)
ETAG_HEADER = {
    "ETag": {"description": 'The case version: "<version>"', "schema": {"type": "string"}}
}


def etag(version: int) -> str:
    """The case version as a strong entity tag."""
    return f'"{version}"'


def if_match_versions(if_match: str | None) -> frozenset[int] | None:
    """The versions If-Match names by strong tag (``"3"``, or a list); None if it names none.

    Absent, empty or ``*`` (which would let a client skip the check) is "none": 428. Weak tags
    (``W/"3"``) never match (RFC 9110 §13.1.1), so a header of weak tags alone is stale: 412.
    """
    if not if_match or if_match.strip() == "*":
        return None
    versions = set()
    for raw_tag in if_match.split(","):
        tag = raw_tag.strip()
        if tag.startswith("W/") or len(tag) < 2 or tag[0] != '"' or tag[-1] != '"':
            continue
        value = tag[1:-1]
        if value.isdigit() and len(value) <= 9:
            versions.add(int(value))
    return frozenset(versions)


@dataclass(frozen=True, slots=True)
class CaseWork:
    """What every case action starts from: the locked case and who, when and against what."""

    ctx: CaseContext
    actor: Actor
    now: datetime
    expected_versions: frozenset[int] | None
    ruleset: Ruleset


def locked_case(attempted: str) -> Any:
    """The case row, locked for this request's transaction (404 if the caller may not read it;
    the refusal audited as ``attempted``). A ``StaleVersion`` raised by the action leaves with
    the case's current ETag."""

    async def dependency(
        case_id: uuid.UUID,
        session: SessionDep,
        actor: StaffDep,
        clock: ClockDep,
        ruleset: RulesetDep,
        if_match: IfMatch = None,
    ) -> AsyncIterator[CaseWork]:
        now = clock.now()
        ctx = await service.readable_case(
            session, actor, case_id, now=now, for_update=True, attempted=attempted
        )
        try:
            yield CaseWork(ctx, actor, now, if_match_versions(if_match), ruleset)
        except service.StaleVersion as exc:
            exc.headers = {**(exc.headers or {}), "ETag": etag(exc.current_version)}
            raise
        except service.VersionRequired as exc:
            exc.errors = [{"field": "header:If-Match", "message": "required", "type": "missing"}]
            raise

    return Depends(dependency, scope="function")


async def _answer(session: SessionDep, work: CaseWork, response: Response) -> CaseRead:
    """The case after the action, with its new ETag."""
    response.headers["ETag"] = etag(work.ctx.case.version)
    return await case_read(session, work.ctx, work.now, work.ruleset)


# Reads -------------------------------------------------------------------------------------------


@router.get(
    "/{case_id}",
    response_model=CaseRead,
    responses={200: {"headers": ETAG_HEADER}, **READ_ERRORS},
    summary="Read a case: the person, eligibility, urgency, waiting clock, contacts, key worker, "
    "THRIVE grouping, supporters",
)
async def get_case(
    case_id: uuid.UUID,
    session: SessionDep,
    actor: StaffDep,
    clock: ClockDep,
    ruleset: RulesetDep,
    response: Response,
) -> CaseRead:
    now = clock.now()
    ctx = await service.readable_case(session, actor, case_id, now=now)
    _audit_read(session, actor, ctx, now, {"view": "case"})
    response.headers["ETag"] = etag(ctx.case.version)
    return await case_read(session, ctx, now, ruleset)


def _audit_read(
    session: SessionDep, actor: Actor, ctx: CaseContext, now: datetime, details: dict[str, Any]
) -> None:
    audit.record(
        session,
        actor=actor,
        action="read",
        resource_type="case",
        resource_id=ctx.case.id,
        person_id=ctx.case.person_id,
        now=now,
        details=details,
    )


@router.get(
    "/{case_id}/events",
    response_model=CaseTimeline,
    responses={200: {"headers": ETAG_HEADER}, **READ_ERRORS},
    summary="The case's timeline: every event, oldest first (who, what, when, why)",
)
async def get_case_events(
    case_id: uuid.UUID, session: SessionDep, actor: StaffDep, clock: ClockDep, response: Response
) -> CaseTimeline:
    now = clock.now()
    ctx = await service.readable_case(session, actor, case_id, now=now)
    events = await service.case_events(session, ctx.case.id)
    _audit_read(session, actor, ctx, now, {"view": "timeline", "events": len(events)})
    response.headers["ETag"] = etag(ctx.case.version)
    return CaseTimeline(
        case_id=ctx.case.id,
        version=ctx.case.version,
        status=service.Status(ctx.case.status),
        waiting_clock=waiting_clock(ctx.case, now),
        events=[event_read(e) for e in events],
    )


@router.get(
    "/{case_id}/contacts",
    response_model=ContactList,
    response_model_by_alias=True,
    responses={200: {"headers": ETAG_HEADER}, **READ_ERRORS},
    summary="Every contact recorded on the case, in the order they happened, with the counts",
)
async def list_contacts(
    case_id: uuid.UUID, session: SessionDep, actor: StaffDep, clock: ClockDep, response: Response
) -> ContactList:
    now = clock.now()
    ctx = await service.readable_case(session, actor, case_id, now=now)
    contacts = await case_contacts(session, ctx.case.id)
    _audit_read(session, actor, ctx, now, {"view": "contacts", "contacts": len(contacts)})
    response.headers["ETag"] = etag(ctx.case.version)
    return ContactList(
        case_id=ctx.case.id,
        version=ctx.case.version,
        summary=contact_summary(ctx.case),
        items=[contact_read(c) for c in contacts],
    )


# Actions -----------------------------------------------------------------------------------------

STATUS_DESCRIPTION = (
    "403: the caller may read the case but not do this. 404: no such case, or one the caller "
    "may not read. 409 (type illegal_transition): not allowed in the case's current status, "
    "which the body names (current_status, allowed_from)."
)

_Endpoint = TypeVar("_Endpoint", bound=Callable[..., Any])


def _action(
    path: str, summary: str, description: str, *, status_code: int = 200
) -> Callable[[_Endpoint], _Endpoint]:
    """Register a case action: JSON body, the updated case back with its new ETag."""
    return router.post(
        path,
        response_model=CaseRead,
        status_code=status_code,
        dependencies=[JsonBody],
        responses={status_code: {"headers": ETAG_HEADER}, **ACTION_ERRORS},
        summary=summary,
        description=f"{description}\n\n{IF_MATCH_DESCRIPTION}\n\n{STATUS_DESCRIPTION}",
    )


# One alias per action: the locked case, with refusals audited under the action's name.
AllocateWork = Annotated[CaseWork, locked_case(CaseAction.ALLOCATE)]
FirstContactWork = Annotated[CaseWork, locked_case(CaseAction.RECORD_CONTACT)]
ContactWork = Annotated[CaseWork, locked_case("record_contact")]
StartWork = Annotated[CaseWork, locked_case(CaseAction.START)]
HoldWork = Annotated[CaseWork, locked_case(CaseAction.HOLD)]
ResumeWork = Annotated[CaseWork, locked_case(CaseAction.RESUME)]
CloseWork = Annotated[CaseWork, locked_case(CaseAction.CLOSE)]
ThriveWork = Annotated[CaseWork, locked_case(CaseAction.DECIDE_THRIVE)]
AddSupporterWork = Annotated[CaseWork, locked_case(CaseAction.ADD_SUPPORTER)]
RemoveSupporterWork = Annotated[CaseWork, locked_case(CaseAction.REMOVE_SUPPORTER)]
ReviewWork = Annotated[CaseWork, locked_case("review")]
UrgencyWork = Annotated[CaseWork, locked_case(CaseAction.CHANGE_URGENCY)]
TransferWork = Annotated[CaseWork, locked_case(CaseAction.TRANSFER)]


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
    body: Annotated[AllocateRequest, Body()],
    work: AllocateWork,
    session: SessionDep,
    response: Response,
) -> CaseRead:
    await service.allocate(
        session,
        work.ctx,
        actor=work.actor,
        expected_versions=work.expected_versions,
        key_worker_id=body.key_worker_id,
        now=work.now,
        reason=body.reason,
    )
    return await _answer(session, work, response)


@_action(
    "/{case_id}/contact",
    "Record the first meaningful contact (allocated → contacted); stops the waiting clock",
    "The older form of POST /v1/cases/{case_id}/contacts, kept for clients that use it: an "
    "attended contact with the young person that must be the first. The contact type (advice, "
    "assessment, intervention) and time are kept in the case's contact records; the timeline "
    "event says whether it was within the respond-by target.",
)
async def record_contact(
    body: Annotated[ContactRequest, Body()],
    work: FirstContactWork,
    session: SessionDep,
    response: Response,
) -> CaseRead:
    await service.record_first_contact(
        session,
        work.ctx,
        actor=work.actor,
        expected_versions=work.expected_versions,
        contact_type=body.contact_type.value,
        method=body.method.value if body.method else None,
        contacted_at=body.contacted_at,
        now=work.now,
        reason=body.reason,
    )
    return await _answer(session, work, response)


@_action(
    "/{case_id}/contacts",
    "Record a contact: when, how, attended or not, with whom",
    "The first attended contact stops the waiting clock (an allocated case becomes contacted); "
    "the case counts its first and second attended contacts and did-not-attend. occurred_at "
    "may not be in the future or before the referral was received (422 on occurred_at). A case "
    "not yet allocated is a 409: claim it first. The key worker, a supporting worker, a team "
    "lead of the queue, or a duty clinician on a crisis or duty case may record contacts.",
    status_code=201,
)
async def add_contact(
    body: Annotated[ContactCreate, Body()],
    work: ContactWork,
    session: SessionDep,
    response: Response,
) -> CaseRead:
    contact = await service.record_contact(
        session,
        work.ctx,
        actor=work.actor,
        expected_versions=work.expected_versions,
        occurred_at=body.occurred_at,
        mechanism=ContactMechanism(body.mechanism),
        attendance=ContactAttendance(body.attendance),
        with_whom=ContactWith(body.with_whom),
        now=work.now,
    )
    response.headers["Location"] = f"/v1/cases/{work.ctx.case.id}/contacts#{contact.id}"
    return await _answer(session, work, response)


async def _status_change(
    action: CaseAction, reason: str | None, work: CaseWork, session: SessionDep, response: Response
) -> CaseRead:
    await service.change_status(
        session,
        work.ctx,
        actor=work.actor,
        expected_versions=work.expected_versions,
        action=action,
        now=work.now,
        reason=reason,
    )
    return await _answer(session, work, response)


@_action("/{case_id}/start", "Start the intervention (contacted → active)", "Send {} or a reason.")
async def start_case(
    body: Annotated[NoteRequest, Body()],
    work: StartWork,
    session: SessionDep,
    response: Response,
) -> CaseRead:
    return await _status_change(CaseAction.START, body.reason, work, session, response)


@_action("/{case_id}/hold", "Put the case on hold (active → on_hold)", "A reason is required.")
async def hold_case(
    body: Annotated[HoldRequest, Body()],
    work: HoldWork,
    session: SessionDep,
    response: Response,
) -> CaseRead:
    return await _status_change(CaseAction.HOLD, body.reason, work, session, response)


@_action("/{case_id}/resume", "Resume a case on hold (on_hold → active)", "Send {} or a reason.")
async def resume_case(
    body: Annotated[NoteRequest, Body()],
    work: ResumeWork,
    session: SessionDep,
    response: Response,
) -> CaseRead:
    return await _status_change(CaseAction.RESUME, body.reason, work, session, response)


@_action(
    "/{case_id}/close",
    "Close the case with an outcome (from allocated, contacted, active or on_hold)",
    "The young person can come back at any time: a later referral opens a new case.",
)
async def close_case(
    body: Annotated[CloseRequest, Body()],
    work: CloseWork,
    session: SessionDep,
    response: Response,
) -> CaseRead:
    await service.close(
        session,
        work.ctx,
        actor=work.actor,
        expected_versions=work.expected_versions,
        outcome=body.outcome.value,
        now=work.now,
        reason=body.reason,
    )
    return await _answer(session, work, response)


@_action(
    "/{case_id}/thrive",
    "Confirm or change the THRIVE grouping with the young person (after first contact)",
    "The grouping proposed at triage is confirmed (same value) or changed; the case records "
    "who decided and when.",
)
async def decide_thrive(
    body: Annotated[ThriveDecisionRequest, Body()],
    work: ThriveWork,
    session: SessionDep,
    response: Response,
) -> CaseRead:
    await service.decide_thrive(
        session,
        work.ctx,
        actor=work.actor,
        expected_versions=work.expected_versions,
        grouping=body.thrive_grouping.value,
        now=work.now,
        reason=body.reason,
    )
    return await _answer(session, work, response)


@_action(
    "/{case_id}/supporters",
    "Pull in a supporting worker or specialist team; the key worker keeps the case",
    "A supporting worker can read the case; so can members of a supporting team. worker_id "
    "must be a known member of staff who works with cases (not a call handler), else a 422 "
    "on worker_id.",
)
async def add_supporter(
    body: Annotated[SupporterCreate, Body()],
    work: AddSupporterWork,
    session: SessionDep,
    response: Response,
) -> CaseRead:
    await service.add_supporter(
        session,
        work.ctx,
        actor=work.actor,
        expected_versions=work.expected_versions,
        kind=body.kind,
        worker_id=body.worker_id,
        team_queue_id=body.team_queue_id,
        role=body.role,
        now=work.now,
        reason=body.reason,
    )
    return await _answer(session, work, response)


@_action(
    "/{case_id}/supporters/{supporter_id}/remove",
    "Stand a supporter down (kept in the case's history)",
    "Send {} or a reason.",
)
async def remove_supporter(
    supporter_id: uuid.UUID,
    body: Annotated[NoteRequest, Body()],
    work: RemoveSupporterWork,
    session: SessionDep,
    response: Response,
) -> CaseRead:
    await service.remove_supporter(
        session,
        work.ctx,
        actor=work.actor,
        expected_versions=work.expected_versions,
        supporter_id=supporter_id,
        now=work.now,
        reason=body.reason,
    )
    return await _answer(session, work, response)


@_action(
    "/{case_id}/review",
    "The clinical-review decision: accept into a team, signpost, or hand over to adult services",
    "For a case awaiting clinical review (the engine's eligibility for its opening referral is "
    "clinical_review and nobody has reviewed it; 409 type not_awaiting_review otherwise), by a "
    "duty clinician or a team lead of the case's queue. accept: eligible, into queue_id "
    "(default: the case's review_proposal, the team the routing rules propose for the young "
    "person as eligible; 422 on queue_id for an unknown queue); the key worker stays only if "
    "they work that queue. signpost: closed with outcome signposted. adult_handover: closed "
    "with outcome adult_handover (warm handover to adult services). The engine's decision is "
    "never edited: the case's eligibility shows the review, who, when and why.",
)
async def review_case(
    body: Annotated[ReviewRequest, Body()],
    work: ReviewWork,
    session: SessionDep,
    request: Request,
    response: Response,
) -> CaseRead:
    await service.review(
        session,
        work.ctx,
        actor=work.actor,
        expected_versions=work.expected_versions,
        outcome=ReviewOutcome(body.outcome),
        queue_id=body.queue_id,
        reason=body.reason,
        ruleset=work.ruleset,
        now=work.now,
        signposting=request.app.state.signposting,
    )
    return await _answer(session, work, response)


@_action(
    "/{case_id}/urgency",
    "Re-grade the case's urgency (up or down) with a reason",
    "By the key worker, a duty clinician or a team lead of the case's queue, on an open case. "
    "While the waiting clock runs, respond_by_at follows the new code: a downgrade counts its "
    "window from the referral's receipt; an upgrade counts it from now, never later than the "
    "old deadline. A crisis code (A, B) moves the case to the crisis queue; its key worker "
    "stays only if they work crisis. The same code again is a 409 (type urgency_unchanged). "
    "The engine's code stays (engine_urgency_code) and every re-grade is kept.",
)
async def regrade_case(
    body: Annotated[UrgencyChangeRequest, Body()],
    work: UrgencyWork,
    session: SessionDep,
    response: Response,
) -> CaseRead:
    await service.change_urgency(
        session,
        work.ctx,
        actor=work.actor,
        expected_versions=work.expected_versions,
        code=body.code,
        reason=body.reason,
        ruleset=work.ruleset,
        now=work.now,
    )
    return await _answer(session, work, response)


@_action(
    "/{case_id}/transfer",
    "Move the case to another queue with a reason (team lead of its queue, or duty clinician)",
    "Rare (no referring on): pulling in a supporter shares a case without moving it. The "
    "waiting clock keeps running; the key worker stays only if they work the target queue, "
    "else the case waits there unallocated. 422 on queue_id for an unknown queue; 409 for the "
    "queue the case is already in.",
)
async def transfer_case(
    body: Annotated[TransferRequest, Body()],
    work: TransferWork,
    session: SessionDep,
    response: Response,
) -> CaseRead:
    await service.transfer(
        session,
        work.ctx,
        actor=work.actor,
        expected_versions=work.expected_versions,
        queue_id=body.queue_id,
        reason=body.reason,
        now=work.now,
    )
    return await _answer(session, work, response)
