"""The console for the people who work cases: practitioners, duty clinicians and team leads.

Queues open as worklists (most urgent first, keyset pages); "claim next" takes the most urgent
unallocated case; "My cases" lists what the signed-in worker holds or supports; a case page shows
what the young person and referrer told us, the decision and the rules that fired, the timeline,
contacts and supporters, with a form for every action the worker may take now. A team lead sees
the breaches and the cases due within 24 hours across their queues.

Thin, like the rest of the console: read the form, check the CSRF token, call the same services
as the API (``app.services.cases``, ``app.services.queues``), render. Every form carries the
case version it was rendered with and is sent as the API's ``If-Match``: a stale submit is shown
"Someone else changed this case" with what changed and the case as it is now, and nothing is
overwritten. A page that catches a domain error rolls the session back before it renders.
Call handlers see none of this (app.authz: they do not read cases).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any, Protocol

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData

from app.authz import can_claim_from_queue, can_see_queue
from app.content import URGENT_CODES
from app.deps import ClockDep, RulesetDep, SessionDep
from app.errors import (
    Conflict,
    Forbidden,
    FrontDoorError,
    NotFound,
    PreconditionFailed,
    PreconditionRequired,
    Unprocessable,
)
from app.models import CaseEvent, Queue
from app.models.base import is_uuid
from app.models.case import (
    CaseOutcome,
    ContactAttendance,
    ContactMechanism,
    ContactWith,
    ReviewOutcome,
)
from app.pagination import InvalidCursor
from app.schemas.common import REASON_MAX_CHARS
from app.schemas.referral import DecisionRead
from app.security import Actor, Role
from app.services import audit, case_reads, case_views, claims
from app.services import cases as case_service
from app.services import queues as queue_service
from app.services.case_views import CaseView
from app.services.cases import TRANSITIONS, CaseAction, CaseContext
from app.services.claims import NothingToClaim
from app.services.queues import Cursor
from app.services.staff import staff_names
from app.triage import Ruleset
from app.triage.decision import ThriveGrouping, UrgencyCode
from app.web.console import (
    ConsoleActor,
    _forbidden_page,
    _meanings,
    _page,
    what_we_were_told,
)
from app.web.signing import CSRF_FIELD, csrf_valid
from app.web.templating import LONDON, humanise, london_datetime

router = APIRouter(prefix="/console", include_in_schema=False)

WORKLIST_PAGE_SIZE = 25
CASE_ROLES = (Role.PRACTITIONER, Role.DUTY_CLINICIAN, Role.TEAM_LEAD, Role.ADMIN)


# Lists of cases -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CaseRow:
    """One case in a worklist, "My cases" or the due-soon list, with its markers in words."""

    id: uuid.UUID
    name: str
    date_of_birth: Any
    queue_id: str
    status: str
    urgency_code: str
    received_at: datetime
    respond_by_at: datetime | None
    first_contact_at: datetime | None
    key_worker: str | None
    breached: bool
    due_today: bool
    urgent: bool

    @property
    def unallocated(self) -> bool:
        return self.status == case_service.Status.WAITING


class ListedCase(Protocol):
    """What a list of cases shows of each (a worklist row, or one of "My cases")."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def queue_id(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def urgency_code(self) -> str: ...
    @property
    def received_at(self) -> datetime: ...
    @property
    def respond_by_at(self) -> datetime | None: ...
    @property
    def first_contact_at(self) -> datetime | None: ...
    @property
    def key_worker_id(self) -> str | None: ...
    @property
    def given_name(self) -> str | None: ...
    @property
    def family_name(self) -> str | None: ...
    @property
    def date_of_birth(self) -> date | None: ...


def due_today(row: ListedCase, now: datetime) -> bool:
    """Not yet contacted and due later today (UK time): not breached yet, but soon will be."""
    return (
        row.first_contact_at is None
        and row.respond_by_at is not None
        and row.respond_by_at >= now
        and row.respond_by_at.astimezone(LONDON).date() == now.astimezone(LONDON).date()
    )


def case_rows(rows: Sequence[ListedCase], now: datetime, names: dict[str, str]) -> list[CaseRow]:
    urgent = {code.value for code in URGENT_CODES}
    return [
        CaseRow(
            id=row.id,
            name=" ".join(p for p in (row.given_name, row.family_name) if p) or "No name recorded",
            date_of_birth=row.date_of_birth,
            queue_id=row.queue_id,
            status=row.status,
            urgency_code=row.urgency_code,
            received_at=row.received_at,
            respond_by_at=row.respond_by_at,
            first_contact_at=row.first_contact_at,
            key_worker=(
                names.get(row.key_worker_id, row.key_worker_id) if row.key_worker_id else None
            ),
            breached=case_service.breached_at(
                row.status, row.first_contact_at, row.respond_by_at, now
            ),
            due_today=due_today(row, now),
            urgent=row.urgency_code in urgent,
        )
        for row in rows
    ]


def _problem(
    request: Request, actor: Actor, title: str, message: str, status_code: int
) -> Response:
    return _page(
        request,
        "console/problem.html",
        actor,
        {"title": title, "message": message},
        status_code=status_code,
    )


def _not_found(request: Request, actor: Actor, what: str = "case") -> Response:
    return _problem(
        request,
        actor,
        f"{what.capitalize()} not found",
        f"There is no {what} with this id, or it is not one you can see.",
        404,
    )


async def _queue(session: AsyncSession, queue_id: str) -> Queue | None:
    if len(queue_id) > 64:
        return None
    return await session.get(Queue, queue_id)


@router.get("/queues/{queue_id}")
async def worklist_page(
    request: Request,
    queue_id: str,
    actor: ConsoleActor,
    session: SessionDep,
    clock: ClockDep,
    cursor: str = "",
    nothing: str = "",
    done: str = "",
    moved_to: str = "",
) -> Response:
    """A queue's open cases, most urgent first then earliest respond-by, a page at a time."""
    now = clock.now()
    queue = await _queue(session, queue_id)
    if queue is None:
        return _not_found(request, actor, "queue")
    if not can_see_queue(actor, queue.id, queue.kind):
        await audit.record_refusal(
            session,
            actor=actor,
            action="list",
            resource_type="queue",
            resource_id=queue.id,
            now=now,
        )
        return _problem(
            request,
            actor,
            "You do not work this queue",
            "Only staff of this team (and duty clinicians, for the crisis and duty queues) can "
            "see its cases.",
            403,
        )
    try:
        after = Cursor.decode(cursor[:512]) if cursor else None
    except InvalidCursor:
        await session.rollback()  # nothing written yet; as every page that catches an error
        return RedirectResponse(f"/console/queues/{queue_id}", status_code=303)
    page = await queue_service.worklist(
        session, queue.id, now=now, limit=WORKLIST_PAGE_SIZE, cursor=after
    )
    await audit.record_listing(
        session, actor=actor, rows=page.rows, now=now, details={"queue_id": queue.id}
    )
    counts = next(
        (c for c in await queue_service.queue_overview(session, now=now) if c.queue.id == queue.id),
        None,
    )
    names = await staff_names(session, [r.key_worker_id for r in page.rows if r.key_worker_id])
    moved = await _queue(session, moved_to) if moved_to and done in DONE_WORDS else None
    return _page(
        request,
        "console/worklist.html",
        actor,
        {
            "nav": "queues",
            "queue": queue,
            "counts": counts,
            "rows": case_rows(page.rows, now, names),
            "next_cursor": page.next_cursor.encode() if page.next_cursor else None,
            "first_page": after is None,
            "can_claim": can_claim_from_queue(actor, queue.id, queue.kind),
            "nothing_to_claim": bool(nothing),
            "done": DONE_WORDS.get(done) if moved else None,
            "moved_to": moved,
            "now": now,
        },
    )


@router.post("/queues/{queue_id}/claim")
async def claim_next(
    request: Request,
    queue_id: str,
    actor: ConsoleActor,
    session: SessionDep,
    clock: ClockDep,
) -> Response:
    """Become key worker of the queue's most urgent unallocated case, and open it."""
    form = await request.form()
    if not csrf_valid(request, str(form.get(CSRF_FIELD, ""))):
        return _forbidden_page(request, actor)
    now = clock.now()
    queue = await _queue(session, queue_id)
    if queue is None:
        return _not_found(request, actor, "queue")
    if not can_claim_from_queue(actor, queue.id, queue.kind):
        await audit.record_refusal(
            session,
            actor=actor,
            action="claim",
            resource_type="queue",
            resource_id=queue.id,
            now=now,
        )
        return _problem(
            request,
            actor,
            "You cannot claim from this queue",
            "Only staff who hold cases in this team's queue can claim from it.",
            403,
        )
    try:
        claimed = await claims.claim_next(
            session, queue_id=queue.id, queue_kind=queue.kind, actor=actor, now=now
        )
    except NothingToClaim:
        await session.rollback()  # (expires the queue row: use the id from the path)
        return RedirectResponse(f"/console/queues/{queue_id}?nothing=1", status_code=303)
    return RedirectResponse(f"/console/cases/{claimed.case.id}?done=claim", status_code=303)


@router.get("/due")
async def due_page(
    request: Request, actor: ConsoleActor, session: SessionDep, clock: ClockDep
) -> Response:
    """A team lead's breaches and the cases due within 24 hours, across their queues."""
    if not actor.has_role(Role.TEAM_LEAD):
        return _problem(
            request,
            actor,
            "For team leads",
            "This page shows a team lead the breaches and cases due soon across their queues.",
            403,
        )
    now = clock.now()
    queue_ids = sorted(actor.queue_ids)
    rows = await case_views.due_soon(session, queue_ids, now=now)
    for queue_id in {r.queue_id for r in rows}:
        await audit.record_listing(
            session,
            actor=actor,
            rows=[r for r in rows if r.queue_id == queue_id],
            now=now,
            details={"queue_id": queue_id, "view": "due_soon"},
        )
    names = await staff_names(session, [r.key_worker_id for r in rows if r.key_worker_id])
    listed = case_rows(rows, now, names)
    return _page(
        request,
        "console/due.html",
        actor,
        {
            "nav": "due",
            "breached": [r for r in listed if r.breached],
            "due": [r for r in listed if not r.breached],
            "queue_names": await case_views.queue_names(session, queue_ids),
            "hours": case_views.DUE_SOON_HOURS,
            "now": now,
        },
    )


@router.get("/my-cases")
async def my_cases_page(
    request: Request, actor: ConsoleActor, session: SessionDep, clock: ClockDep
) -> Response:
    """The cases the signed-in worker holds or supports, most urgent first."""
    if not actor.has_role(*CASE_ROLES) or actor.id is None:
        return _problem(
            request,
            actor,
            "For staff who hold cases",
            "This page lists the cases a practitioner, duty clinician or team lead holds or "
            "supports.",
            403,
        )
    now = clock.now()
    rows = await case_reads.my_cases(session, actor.id)
    await audit.record_listing(
        session, actor=actor, rows=rows, now=now, details={"view": "my_cases"}
    )
    names = await staff_names(session, [r.key_worker_id for r in rows if r.key_worker_id])
    held = [r for r in rows if r.relationship == "key_worker"]
    supported = [r for r in rows if r.relationship != "key_worker"]
    return _page(
        request,
        "console/my_cases.html",
        actor,
        {
            "nav": "my-cases",
            "held": case_rows(held, now, names),
            "supported": case_rows(supported, now, names),
            "queue_names": await case_views.queue_names(session, {r.queue_id for r in rows}),
            "workable": [
                q
                for q in await case_views.active_queues(session)
                if can_see_queue(actor, q.id, q.kind)
            ],
            "now": now,
        },
    )


# The case page --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ActionPage:
    """A case action with a page of its own (a form with questions)."""

    name: str  # /console/cases/{id}/{name}
    case_actions: tuple[CaseAction, ...]  # offered when any of these is allowed
    title: str  # the page's heading, and the link to it
    button: str
    done: str  # the case page's banner after it
    title_when_held: str | None = None  # once the case has a key worker

    def title_for(self, status: str) -> str:
        if self.title_when_held and status != case_service.Status.WAITING:
            return self.title_when_held
        return self.title


@dataclass(frozen=True, slots=True)
class ActionButton:
    """A case action that is one button on the case page (nothing to ask)."""

    name: str
    case_action: CaseAction
    button: str
    done: str


# In the order the case page offers them: the everyday ones first.
ACTION_PAGES: dict[str, ActionPage] = {
    page.name: page
    for page in (
        ActionPage(
            "review",
            (CaseAction.REVIEW_ACCEPT, CaseAction.REVIEW_CLOSE),
            "Record the clinical review decision",
            "Save the decision",
            "Clinical review decision saved",
        ),
        ActionPage(
            "contacts",
            (CaseAction.RECORD_ATTENDED_CONTACT, CaseAction.RECORD_MISSED_CONTACT),
            "Record a contact",
            "Save the contact",
            "Contact recorded",
        ),
        ActionPage(
            "allocate",
            (CaseAction.ALLOCATE, CaseAction.REALLOCATE),
            "Allocate to a key worker",
            "Allocate",
            "Key worker allocated",
            title_when_held="Change the key worker",
        ),
        ActionPage(
            "urgency",
            (CaseAction.CHANGE_URGENCY,),
            "Change the urgency",
            "Change the urgency",
            "Urgency changed",
        ),
        ActionPage(
            "thrive",
            (CaseAction.DECIDE_THRIVE,),
            "Agree the THRIVE grouping",
            "Save the THRIVE grouping",
            "THRIVE grouping saved",
        ),
        ActionPage(
            "supporters",
            (CaseAction.ADD_SUPPORTER,),
            "Add a supporting worker or team",
            "Add supporter",
            "Supporter added",
        ),
        ActionPage(
            "transfer",
            (CaseAction.TRANSFER,),
            "Move to another team's queue",
            "Move the case",
            "Case moved",
        ),
        ActionPage(
            "hold", (CaseAction.HOLD,), "Put the case on hold", "Put on hold", "The case is on hold"
        ),
        ActionPage("close", (CaseAction.CLOSE,), "Close the case", "Close the case", "Case closed"),
    )
}
ACTION_BUTTONS: dict[str, ActionButton] = {
    button.name: button
    for button in (
        ActionButton("start", CaseAction.START, "Start the intervention", "Intervention started"),
        ActionButton("resume", CaseAction.RESUME, "Resume the case", "Case resumed"),
    )
}
REMOVE_SUPPORTER = "remove-supporter"
DONE_WORDS = {
    "claim": "You are now the key worker for this case",
    REMOVE_SUPPORTER: "Supporter stood down",
    **{p.name: p.done for p in ACTION_PAGES.values()},
    **{b.name: b.done for b in ACTION_BUTTONS.values()},
}


def may_take(actor: Actor, ctx: CaseContext, action: CaseAction) -> bool:
    """Whether to offer ``action``: the case's status allows it and so does the service's
    policy for it (``cases.POLICIES``; the service checks both again when it is taken)."""
    if ctx.case.status not in TRANSITIONS[action]:
        return False
    allowed, _ = case_service.POLICIES.get(action, case_service.DEFAULT_POLICY)
    return actor.is_staff and allowed(actor, ctx)


def page_offered(actor: Actor, ctx: CaseContext, page: ActionPage, awaiting_review: bool) -> bool:
    if page.name == "review" and not awaiting_review:
        return False
    return any(may_take(actor, ctx, action) for action in page.case_actions)


def offered(actor: Actor, ctx: CaseContext, awaiting_review: bool) -> dict[str, Any]:
    """The actions the case page offers this worker now."""
    return {
        "pages": [p for p in ACTION_PAGES.values() if page_offered(actor, ctx, p, awaiting_review)],
        "buttons": [b for b in ACTION_BUTTONS.values() if may_take(actor, ctx, b.case_action)],
        "remove_supporter": may_take(actor, ctx, CaseAction.REMOVE_SUPPORTER),
    }


EVENT_WORDS = {
    "case_opened": "Case opened",
    "referral_joined": "A further referral joined the case",
    "person_confirmed": "Confirmed as a known person",
    "claimed": "Claimed",
    "allocated": "Allocated",
    "reallocated": "Key worker changed",
    "key_worker_released": "Key worker released",
    "first_contact": "First contact",
    "contact_recorded": "Contact recorded",
    "intervention_started": "Intervention started",
    "put_on_hold": "Put on hold",
    "resumed": "Resumed",
    "closed": "Closed",
    "thrive_confirmed": "THRIVE grouping confirmed",
    "thrive_changed": "THRIVE grouping changed",
    "supporter_added": "Supporter added",
    "supporter_removed": "Supporter stood down",
    "urgency_raised": "Urgency raised",
    "urgency_lowered": "Urgency lowered",
    "transferred": "Moved to another queue",
    "clinical_review": "Clinical review",
}
MECHANISM_WORDS = {
    "face_to_face": "Face to face",
    "telephone": "Telephone",
    "video": "Video call",
    "text": "Text message",
    "email": "Email",
}
ATTENDANCE_WORDS = {
    "attended": "Attended",
    "did_not_attend": "Did not attend",
    "cancelled_by_patient": "Cancelled by the young person",
    "cancelled_by_service": "Cancelled by the service",
}
WITH_WORDS = {
    "young_person": "The young person",
    "parent_carer": "A parent or carer",
    "professional": "A professional about them",
}
REVIEW_WORDS = {
    "accept": "Accept into a team",
    "signpost": "Signpost elsewhere and close",
    "adult_handover": "Warm handover to adult services and close",
}


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    seq: int
    at: datetime
    title: str
    by: str
    details: list[str] = field(default_factory=list)
    reason: str | None = None


def timeline(view: CaseView) -> list[TimelineEntry]:
    """The case's events in words, newest first."""
    return [describe_event(e, view.staff_names, view.queue_names) for e in reversed(view.events)]


def describe_event(
    event: CaseEvent, staff_names: dict[str, str], queue_names: dict[str, str]
) -> TimelineEntry:
    """One timeline event as staff read it: what, by whom, and the facts it recorded."""
    data = event.data or {}

    def staff(staff_id: object) -> str:
        return staff_names.get(str(staff_id), str(staff_id)) if staff_id else "no one"

    def queue(queue_id: object) -> str:
        return queue_names.get(str(queue_id), str(queue_id))

    details: list[str] = []
    kind = event.type
    if kind in ("case_opened", "referral_joined") and data.get("reference"):
        # (Where it was routed is the event's reason.)
        details.append(f"Referral {data['reference']}, urgency {data.get('urgency_code', '')}")
    elif kind in ("claimed", "allocated", "reallocated"):
        details.append(f"Key worker: {staff(data.get('key_worker_id'))}")
        if data.get("previous_key_worker_id"):
            details.append(f"Before: {staff(data['previous_key_worker_id'])}")
    elif kind == "key_worker_released":
        released = staff(data.get("previous_key_worker_id"))
        details.append(f"{released} does not work {queue(data.get('queue_id'))}")
    elif kind == "first_contact":
        details.append(humanise(str(data.get("contact_type") or "contact")))
    elif kind == "contact_recorded":
        parts = [
            ATTENDANCE_WORDS.get(str(data.get("attendance")), ""),
            MECHANISM_WORDS.get(str(data.get("mechanism")), "").lower(),
            WITH_WORDS.get(str(data.get("with")), "").lower(),
        ]
        if parts[2]:
            parts[2] = f"with {parts[2]}"
        details.append(", ".join(part for part in parts if part))
        if data.get("occurred_at"):
            details.append(f"On {_london(data['occurred_at'])}")
        if data.get("stopped_clock"):
            details.append("The first attended contact: the waiting clock stopped")
    elif kind == "closed" and data.get("outcome"):
        details.append(f"Outcome: {humanise(str(data['outcome'])).lower()}")
    elif kind in ("thrive_confirmed", "thrive_changed") and data.get("decided"):
        details.append(humanise(str(data["decided"])))
    elif kind in ("supporter_added", "supporter_removed"):
        worker = data.get("worker_id")
        who = staff(worker) if worker else queue(data.get("team_queue_id"))
        details.append(who + (f" ({data['role']})" if data.get("role") else ""))
    elif kind in ("urgency_raised", "urgency_lowered"):
        details.append(f"Urgency {data.get('from_code')} to {data.get('to_code')}")
        if data.get("respond_by_at"):
            details.append(f"Respond by {_london(data['respond_by_at'])}")
        if data.get("queue_id") and data.get("queue_id") != data.get("from_queue_id"):
            details.append(f"Moved to {queue(data['queue_id'])}")
    elif kind == "transferred":
        details.append(f"From {queue(data.get('from_queue_id'))} to {queue(data.get('queue_id'))}")
    elif kind == "clinical_review":
        details.append(
            REVIEW_WORDS.get(str(data.get("outcome")), humanise(str(data.get("outcome"))))
        )
        if data.get("queue_id"):
            details.append(f"Into {queue(data['queue_id'])}")
    if event.from_status and event.to_status and event.from_status != event.to_status:
        details.append(
            f"Status: {humanise(event.from_status).lower()} to {humanise(event.to_status).lower()}"
        )
    role = f" ({humanise(event.actor_role).lower()})" if event.actor_role else ""
    by = (
        staff(event.actor_id) + role
        if event.actor_kind == "staff"
        else {"system": "Front Door", "public": "The public form"}.get(
            event.actor_kind, humanise(event.actor_kind)
        )
    )
    return TimelineEntry(
        seq=event.seq,
        at=event.created_at,
        title=EVENT_WORDS.get(kind, humanise(kind)),
        by=by,
        details=[d for d in details if d],
        reason=event.reason,
    )


def _london(value: object) -> str:
    """An ISO time from an event's data in UK words (as the templates show times)."""
    try:
        return london_datetime(datetime.fromisoformat(str(value)))
    except ValueError:
        return str(value)


async def _readable(
    session: AsyncSession,
    actor: Actor,
    case_id: str,
    now: datetime,
    *,
    attempted: str = "read",
    for_update: bool = False,
) -> CaseContext | None:
    """The case if the caller may read it (else None: a 404 page, refusal audited);
    ``for_update`` locks its row for the action about to be taken."""
    if not is_uuid(case_id):
        return None
    try:
        return await case_service.readable_case(
            session, actor, uuid.UUID(case_id), now=now, attempted=attempted, for_update=for_update
        )
    except NotFound:
        await session.rollback()  # nothing to keep but the refusal's audit row (queued apart)
        return None


def _case_context(
    actor: Actor, view: CaseView, ruleset_meanings: dict[str, str], now: datetime
) -> dict[str, Any]:
    """What the case page and the action pages show of the case."""
    case = view.ctx.case
    latest = view.latest
    decision = DecisionRead.model_validate(latest.decision.output) if latest else None
    supporters = view.ctx.supporting_worker_ids
    return {
        "nav": "my-cases" if actor.id in (case.key_worker_id, *supporters) else "queues",
        "view": view,
        "case": case,
        "person": view.person,
        "version": case.version,
        "seen_seq": case.last_event_seq,
        "breached": case_service.is_breached(case, now),
        "due_today": (
            case.first_contact_at is None
            and case.status != case_service.Status.CLOSED
            and case.respond_by_at is not None
            and case.respond_by_at >= now
            and case.respond_by_at.astimezone(LONDON).date() == now.astimezone(LONDON).date()
        ),
        "urgent": case.urgency_code in {code.value for code in URGENT_CODES},
        "key_worker": (
            view.staff_names.get(case.key_worker_id, case.key_worker_id)
            if case.key_worker_id
            else None
        ),
        "staff_names": view.staff_names,
        "queue_names": view.queue_names,
        "decision": decision,
        "told": what_we_were_told(latest) if latest else None,
        "channel": latest.referral.channel if latest else None,
        "meanings": ruleset_meanings,
        "offered": offered(actor, view.ctx, view.awaiting_review),
        "timeline": timeline(view),
        "mechanism_words": MECHANISM_WORDS,
        "attendance_words": ATTENDANCE_WORDS,
        "with_words": WITH_WORDS,
        "review_words": REVIEW_WORDS,
    }


async def _audit_case_read(
    session: AsyncSession, actor: Actor, view: CaseView, now: datetime, page: str
) -> None:
    """A case page is a read of the case and of the referral whose words it shows."""
    case = view.ctx.case
    audit.record(
        session,
        actor=actor,
        action="read",
        resource_type="case",
        resource_id=case.id,
        person_id=case.person_id,
        now=now,
        details={"view": page, "via": "console"},
    )
    if view.latest is not None:
        audit.record(
            session,
            actor=actor,
            action="read",
            resource_type="referral",
            resource_id=view.latest.referral.id,
            person_id=view.latest.referral.person_id,
            now=now,
            details={"via": "console_case", "case_id": str(case.id)},
        )


async def _render_case(
    request: Request,
    actor: Actor,
    session: AsyncSession,
    ruleset: Ruleset,
    ctx: CaseContext,
    now: datetime,
    *,
    done: str | None = None,
    stale: list[TimelineEntry] | None = None,
    problem: str | None = None,
    status_code: int = 200,
) -> Response:
    view = await case_views.case_view(session, ctx, ruleset)
    await _audit_case_read(session, actor, view, now, "case")
    return _page(
        request,
        "console/case.html",
        actor,
        {
            **_case_context(actor, view, _meanings(ruleset), now),
            "done": DONE_WORDS.get(done or ""),
            "stale": stale,
            "problem": problem,
        },
        status_code=status_code,
    )


@router.get("/cases/{case_id}")
async def case_page(
    request: Request,
    case_id: str,
    actor: ConsoleActor,
    session: SessionDep,
    ruleset: RulesetDep,
    clock: ClockDep,
    done: str = "",
) -> Response:
    """A case: who, what they told us, the decision, what has happened, and what to do next."""
    now = clock.now()
    ctx = await _readable(session, actor, case_id, now)
    if ctx is None:
        return _not_found(request, actor)
    return await _render_case(request, actor, session, ruleset, ctx, now, done=done)


# Acting on a case -------------------------------------------------------------------------------


class FormErrors(Exception):
    """The form's answers cannot be used: field id → what to do."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("form errors")
        self.errors = errors


@dataclass(frozen=True, slots=True)
class Submitted:
    """One submitted action form, with what the service call needs."""

    session: AsyncSession
    ctx: CaseContext
    actor: Actor
    form: FormData
    versions: frozenset[int] | None
    ruleset: Ruleset
    now: datetime
    signposting: Any = None

    def text(self, name: str) -> str:
        return str(self.form.get(name, "")).strip()

    def optional(self, name: str) -> str | None:
        """An optional note: blank is none; too long is an error on the field."""
        value = self.text(name)
        if len(value) > REASON_MAX_CHARS:
            raise FormErrors({name: f"Enter a note in {REASON_MAX_CHARS} characters or fewer"})
        return value or None

    def required(self, name: str, message: str) -> str:
        value = self.text(name)
        if not value:
            raise FormErrors({name: message})
        if len(value) > REASON_MAX_CHARS:
            raise FormErrors({name: f"Enter it in {REASON_MAX_CHARS} characters or fewer"})
        return value

    def choice(self, name: str, choices: Iterable[str], message: str) -> str:
        value = self.text(name)
        if value not in set(choices):
            raise FormErrors({name: message})
        return value


def expected_versions(form: FormData) -> frozenset[int] | None:
    """The case version the form was rendered with (the API's If-Match); None if missing."""
    raw = str(form.get("version", "")).strip()
    return frozenset({int(raw)}) if raw.isdigit() and len(raw) <= 9 else None


def _seen_seq(form: FormData) -> int:
    raw = str(form.get("seen_seq", "")).strip()
    return int(raw) if raw.isdigit() and len(raw) <= 9 else 0


async def _allocate(s: Submitted) -> None:
    await case_service.allocate(
        s.session,
        s.ctx,
        actor=s.actor,
        expected_versions=s.versions,
        key_worker_id=s.required("key_worker_id", "Choose who will be the key worker"),
        now=s.now,
        reason=s.optional("reason"),
    )


async def _hold(s: Submitted) -> None:
    await case_service.change_status(
        s.session,
        s.ctx,
        actor=s.actor,
        expected_versions=s.versions,
        action=CaseAction.HOLD,
        now=s.now,
        reason=s.required("reason", "Enter why the case is on hold"),
    )


async def _close(s: Submitted) -> None:
    outcome = s.choice("outcome", CLOSE_OUTCOMES, "Choose the outcome")
    await case_service.close(
        s.session,
        s.ctx,
        actor=s.actor,
        expected_versions=s.versions,
        outcome=outcome,
        now=s.now,
        reason=s.optional("reason"),
    )


async def _thrive(s: Submitted) -> None:
    grouping = s.choice(
        "thrive_grouping",
        [g.value for g in ThriveGrouping],
        "Choose the grouping you agreed with the young person",
    )
    await case_service.decide_thrive(
        s.session,
        s.ctx,
        actor=s.actor,
        expected_versions=s.versions,
        grouping=grouping,
        now=s.now,
        reason=s.optional("reason"),
    )


async def _add_supporter(s: Submitted) -> None:
    kind = s.choice("kind", ("worker", "team"), "Choose a worker or a team")
    worker = s.required("worker_id", "Choose the worker") if kind == "worker" else None
    team = s.required("team_queue_id", "Choose the team") if kind == "team" else None
    role = s.text("role")
    if len(role) > SUPPORTER_ROLE_MAX_CHARS:
        raise FormErrors(
            {"role": f"Enter what they bring in {SUPPORTER_ROLE_MAX_CHARS} characters or fewer"}
        )
    await case_service.add_supporter(
        s.session,
        s.ctx,
        actor=s.actor,
        expected_versions=s.versions,
        kind=kind,
        worker_id=worker,
        team_queue_id=team,
        role=role or None,
        now=s.now,
        reason=s.optional("reason"),
    )


async def _review(s: Submitted) -> None:
    outcome = ReviewOutcome(
        s.choice("outcome", [o.value for o in ReviewOutcome], "Choose what you decided")
    )
    queue_id = (
        s.required("queue_id", "Choose the team to accept them into")
        if outcome == ReviewOutcome.ACCEPT
        else None
    )
    await case_service.review(
        s.session,
        s.ctx,
        actor=s.actor,
        expected_versions=s.versions,
        outcome=outcome,
        reason=s.required("reason", "Enter why you decided this"),
        ruleset=s.ruleset,
        now=s.now,
        queue_id=queue_id,
        signposting=s.signposting,
    )


async def _urgency(s: Submitted) -> None:
    code = UrgencyCode(s.choice("code", [c.value for c in UrgencyCode], "Choose the new urgency"))
    reason = s.required("reason", "Enter why you are changing the urgency")
    await case_service.change_urgency(
        s.session,
        s.ctx,
        actor=s.actor,
        expected_versions=s.versions,
        code=code,
        reason=reason,
        ruleset=s.ruleset,
        now=s.now,
    )


async def _transfer(s: Submitted) -> None:
    queue_id = s.required("queue_id", "Choose the team's queue to move the case to")
    reason = s.required("reason", "Enter why the case is moving")
    await case_service.transfer(
        s.session,
        s.ctx,
        actor=s.actor,
        expected_versions=s.versions,
        queue_id=queue_id,
        reason=reason,
        now=s.now,
    )


async def _contact(s: Submitted) -> None:
    errors: dict[str, str] = {}
    occurred_at = None
    try:
        occurred_at = contact_time(s.form)
    except FormErrors as exc:
        errors |= exc.errors
    checks = (
        ("mechanism", MECHANISM_WORDS, "Choose how the contact happened"),
        ("attendance", ATTENDANCE_WORDS, "Choose whether they attended"),
        ("with_whom", WITH_WORDS, "Choose who the contact was with"),
    )
    for name, words, message in checks:
        if s.text(name) not in words:
            errors[name] = message
    if errors or occurred_at is None:
        raise FormErrors(errors)
    received = s.ctx.case.received_at
    if received.replace(second=0, microsecond=0) <= occurred_at < received:
        # Typed to the minute: a contact in the minute the referral arrived is after it.
        occurred_at = received
    await case_service.record_contact(
        s.session,
        s.ctx,
        actor=s.actor,
        expected_versions=s.versions,
        occurred_at=occurred_at,
        mechanism=ContactMechanism(s.text("mechanism")),
        attendance=ContactAttendance(s.text("attendance")),
        with_whom=ContactWith(s.text("with_whom")),
        now=s.now,
    )


_TIME = re.compile(r"^(\d{1,2})[:.](\d{2})$")


def contact_time(form: FormData) -> datetime:
    """When a contact happened: a date (day, month, year) and a 24-hour time, UK time."""
    parts = [str(form.get(f"occurred_{part}", "")).strip() for part in ("day", "month", "year")]
    time_text = str(form.get("occurred_time", "")).strip()
    errors: dict[str, str] = {}
    day_value = None
    if not all(parts):
        errors["occurred"] = "Enter the date of the contact, with a day, month and year"
    else:
        try:
            day_value = date(int(parts[2]), int(parts[1]), int(parts[0]))
        except ValueError:
            errors["occurred"] = "Enter a real date, like 14 3 2026"
    matched = _TIME.match(time_text)
    if not matched or int(matched.group(1)) > 23 or int(matched.group(2)) > 59:
        errors["occurred_time"] = "Enter the time of the contact, like 14:30"
    if errors or day_value is None or matched is None:
        raise FormErrors(errors)
    local = datetime.combine(day_value, time(int(matched.group(1)), int(matched.group(2))))
    return local.replace(tzinfo=LONDON).astimezone(UTC)


HANDLERS: dict[str, Callable[[Submitted], Awaitable[None]]] = {
    "allocate": _allocate,
    "hold": _hold,
    "close": _close,
    "thrive": _thrive,
    "supporters": _add_supporter,
    "review": _review,
    "urgency": _urgency,
    "transfer": _transfer,
    "contacts": _contact,
}
# A service's 422 names an API field; the form's field for it (else the error is the form's).
SERVICE_FIELDS = {
    "key_worker_id": "key_worker_id",
    "worker_id": "worker_id",
    "team_queue_id": "team_queue_id",
    "queue_id": "queue_id",
    "code": "code",
    "occurred_at": "occurred",
}
# Closing by hand: the outcomes a clinical review records are set by the review itself.
CLOSE_OUTCOMES = tuple(o.value for o in CaseOutcome if o not in (CaseOutcome.ADULT_HANDOVER,))
SUPPORTER_ROLE_MAX_CHARS = 100


def _options(workers: Iterable[case_views.StaffChoice]) -> list[tuple[str, str, str]]:
    """Radio options for staff: their name (else id), with their role as the hint."""
    return [(w.id, w.name or w.id, humanise(w.role)) for w in workers]


async def _choices(
    session: AsyncSession, view: CaseView, name: str, ruleset: Ruleset, now: datetime
) -> dict[str, Any]:
    """The options an action's form offers (who to allocate to, supporters, teams, codes)."""
    ctx = view.ctx
    case = ctx.case
    if name == "allocate":
        workers = await case_views.may_hold(
            session, queue_id=case.queue_id, queue_kind=ctx.queue_kind
        )
        return {"workers": _options(w for w in workers if w.id != case.key_worker_id)}
    if name == "supporters":
        exclude = {case.key_worker_id or "", *ctx.supporting_worker_ids}
        return {
            "workers": _options(await case_views.may_support(session, exclude=exclude)),
            "teams": [
                (q.id, q.name)
                for q in await case_views.active_queues(session)
                if q.id != case.queue_id and q.id not in ctx.supporting_team_kinds
            ],
        }
    if name in ("transfer", "review"):
        proposal = view.review_proposal
        teams = [
            (
                q.id,
                q.name,
                "Proposed by the routing rules" if proposal and q.id == proposal.queue_id else None,
            )
            for q in await case_views.active_queues(session)
            if name == "review" or q.id != case.queue_id
        ]
        if proposal and proposal.queue_id:  # the proposal first
            teams.sort(key=lambda t: t[0] != proposal.queue_id)
        return {
            "teams": [t if t[2] else t[:2] for t in teams],
            "proposed_queue_id": proposal.queue_id if proposal else None,
        }
    if name == "urgency":
        meanings = _meanings(ruleset)
        return {
            "codes": [
                (c.value, f"{c.value}: {humanise(meanings.get(c.value, ''))}")
                for c in UrgencyCode
                if c.value != case.urgency_code
            ]
        }
    if name == "contacts":
        local = now.astimezone(LONDON)
        return {
            "defaults": {
                "occurred_day": str(local.day),
                "occurred_month": str(local.month),
                "occurred_year": str(local.year),
                "occurred_time": f"{local:%H:%M}",
            }
        }
    return {}


async def _render_action(
    request: Request,
    actor: Actor,
    session: AsyncSession,
    ruleset: Ruleset,
    ctx: CaseContext,
    page: ActionPage,
    now: datetime,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    stale: list[TimelineEntry] | None = None,
    status_code: int = 200,
) -> Response:
    view = await case_views.case_view(session, ctx, ruleset)
    await _audit_case_read(session, actor, view, now, page.name)
    errors = errors or {}
    choices = await _choices(session, view, page.name, ruleset, now)
    return _page(
        request,
        "console/case_action.html",
        actor,
        {
            **_case_context(actor, view, _meanings(ruleset), now),
            "action": page,
            "values": {**choices.pop("defaults", {}), **(values or {})},
            "errors": errors,
            "error_summary": [
                {"href": f"#{ERROR_ANCHORS.get(k, k)}", "text": v} for k, v in errors.items()
            ],
            "stale": stale,
            "available": page_offered(actor, ctx, page, view.awaiting_review),
            "outcomes": [(o, humanise(o)) for o in CLOSE_OUTCOMES],
            "groupings": [(g.value, humanise(g.value)) for g in ThriveGrouping],
            "review_options": list(REVIEW_WORDS.items()),
            "mechanisms": list(MECHANISM_WORDS.items()),
            "attendances": list(ATTENDANCE_WORDS.items()),
            "withs": list(WITH_WORDS.items()),
            **choices,
        },
        status_code=status_code,
    )


# Where the error summary links for a field whose first input has another id.
ERROR_ANCHORS = {"occurred": "occurred_day"}


@router.get("/cases/{case_id}/{action}")
async def action_page(
    request: Request,
    case_id: str,
    action: str,
    actor: ConsoleActor,
    session: SessionDep,
    ruleset: RulesetDep,
    clock: ClockDep,
) -> Response:
    """The form for one action on the case (carrying the case version it shows)."""
    page = ACTION_PAGES.get(action)
    now = clock.now()
    ctx = await _readable(session, actor, case_id, now) if page else None
    if page is None or ctx is None:
        return _not_found(request, actor)
    return await _render_action(request, actor, session, ruleset, ctx, page, now)


async def _changed_since(
    session: AsyncSession,
    actor: Actor,
    case_id: str,
    seen_seq: int,
    ruleset: Ruleset,
    now: datetime,
) -> tuple[CaseContext | None, list[TimelineEntry]]:
    """The case as it is now and what happened to it after the page was drawn (newest first)."""
    ctx = await _readable(session, actor, case_id, now)
    if ctx is None:
        return None, []
    view = await case_views.case_view(session, ctx, ruleset)
    return ctx, [e for e in timeline(view) if e.seq > seen_seq]


@router.post("/cases/{case_id}/{action}")
async def take_action(
    request: Request,
    case_id: str,
    action: str,
    actor: ConsoleActor,
    session: SessionDep,
    ruleset: RulesetDep,
    clock: ClockDep,
) -> Response:
    """Take an action on the case: its form page's, or a one-button action from the case page.

    Every outcome but success rolls the session back before rendering: nothing of a refused or
    stale submit is kept (a refusal's audit row is, as for the API).
    """
    form = await request.form()
    if not csrf_valid(request, str(form.get(CSRF_FIELD, ""))):
        return _forbidden_page(request, actor)
    page = ACTION_PAGES.get(action)
    button = ACTION_BUTTONS.get(action)
    if page is None and button is None and action != REMOVE_SUPPORTER:
        return _not_found(request, actor)
    now = clock.now()
    attempted = (
        page.case_actions[0]
        if page
        else button.case_action
        if button
        else CaseAction.REMOVE_SUPPORTER
    )
    ctx = await _readable(session, actor, case_id, now, attempted=attempted.value, for_update=True)
    if ctx is None:
        return _not_found(request, actor)
    from_queue = ctx.case.queue_id
    submitted = Submitted(
        session,
        ctx,
        actor,
        form,
        expected_versions(form),
        ruleset,
        now,
        getattr(request.app.state, "signposting", None),
    )
    values = {k: str(v) for k, v in form.items() if k not in (CSRF_FIELD, "version", "seen_seq")}
    try:
        if page is not None:
            await HANDLERS[page.name](submitted)
        elif button is not None:
            await case_service.change_status(
                session,
                ctx,
                actor=actor,
                expected_versions=submitted.versions,
                action=button.case_action,
                now=now,
            )
        else:
            supporter_id = submitted.text("supporter_id")
            if not is_uuid(supporter_id):
                raise NotFound("No such supporter on this case.")
            await case_service.remove_supporter(
                session,
                ctx,
                actor=actor,
                expected_versions=submitted.versions,
                supporter_id=uuid.UUID(supporter_id),
                now=now,
            )
    except FormErrors as exc:
        await session.rollback()
        fresh = await _readable(session, actor, case_id, now)
        if fresh is None or page is None:
            return _not_found(request, actor)
        return await _render_action(
            request, actor, session, ruleset, fresh, page, now,
            values=values, errors=exc.errors, status_code=422,
        )  # fmt: skip
    except (PreconditionFailed, PreconditionRequired):
        # Someone else changed the case after this page was drawn: show them what, and the
        # case as it is now; nothing of this submit is kept.
        await session.rollback()
        fresh, changed = await _changed_since(
            session, actor, case_id, _seen_seq(form), ruleset, now
        )
        if fresh is None:
            return _not_found(request, actor)
        if page is not None:
            return await _render_action(
                request, actor, session, ruleset, fresh, page, now,
                values=values, stale=changed, status_code=409,
            )  # fmt: skip
        return await _render_case(
            request, actor, session, ruleset, fresh, now, stale=changed, status_code=409
        )
    except FrontDoorError as exc:
        await session.rollback()
        fresh = await _readable(session, actor, case_id, now)
        if fresh is None:
            return _not_found(request, actor)
        if isinstance(exc, Forbidden):
            return _problem(request, actor, "You cannot do this", exc.detail, 403)
        status = exc.status_code if isinstance(exc, Unprocessable | Conflict) else 400
        if page is not None:
            named = str((exc.errors or [{}])[0].get("field", ""))
            return await _render_action(
                request, actor, session, ruleset, fresh, page, now,
                values=values, errors={SERVICE_FIELDS.get(named, "form"): exc.detail},
                status_code=status,
            )  # fmt: skip
        return await _render_case(
            request, actor, session, ruleset, fresh, now, problem=exc.detail, status_code=status
        )
    if not case_service.may_read(actor, ctx):
        # Accepted into, or moved to, a queue the worker does not work: back to the queue it
        # left, saying where it went.
        return RedirectResponse(
            f"/console/queues/{from_queue}?done={action}&moved_to={ctx.case.queue_id}",
            status_code=303,
        )
    return RedirectResponse(f"/console/cases/{ctx.case.id}?done={action}", status_code=303)


__all__ = ["router"]
