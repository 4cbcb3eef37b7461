"""The case lifecycle: the one owner of case state, every change an appended event.

Every change of a case — opening it, a further referral joining it, claim, allocation, clinical
review, re-grading, transfer, contacts, hold, close — is made here, and ``TRANSITIONS`` below is
the whole state machine: an action not listed for the case's current status is refused with a
409 naming that status. Every change bumps the case version (optimistic concurrency), appends an
event to the timeline (who, what, when, why) and writes an audit record, all in the caller's
transaction; the caller holds the case row locked (``load_case(..., for_update=True)``).

Errors are domain errors with domain data (``StaleVersion(current_version)``,
``VersionRequired``, ``IllegalTransition``); the HTTP layer turns them into headers
(app/routers/cases.py). The rules are in docs/domain/after-the-door.md.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app import authz
from app.errors import (
    Conflict,
    Forbidden,
    NotFound,
    PreconditionFailed,
    PreconditionRequired,
    Unprocessable,
)
from app.models import (
    Case,
    CaseContact,
    CaseEvent,
    CaseSupporter,
    CaseUrgencyChange,
    Person,
    Queue,
    Referral,
    StaffMember,
    TriageDecision,
)
from app.models.base import new_id
from app.models.case import (
    OPEN_CASE_STATUSES,
    CaseOutcome,
    CaseStatus,
    ContactAttendance,
    ContactMechanism,
    ContactWith,
    EffectiveEligibility,
    ReviewOutcome,
    UrgencyChangeSource,
)
from app.security import Actor
from app.services import audit
from app.services.case_events import append_event, record_referral
from app.services.staff import as_actor, ensure_can_hold, ensure_can_support
from app.triage import Decision, Ruleset
from app.triage.decision import URGENCY_RANK, RouteKind, UrgencyCode
from app.triage.ruleset import RoutingStep
from app.triage.urgency import respond_by

# The one status vocabulary (app/models/case.py); ``Status`` is its name in this module.
Status = CaseStatus


class CaseAction(StrEnum):
    OPEN = "open"
    JOIN_REFERRAL = "join_referral"
    CLAIM = "claim"
    ALLOCATE = "allocate"
    REALLOCATE = "reallocate"
    RELEASE_KEY_WORKER = "release_key_worker"
    # The older first-contact action: an attended contact that must be the first.
    RECORD_CONTACT = "record_contact"
    RECORD_ATTENDED_CONTACT = "record_attended_contact"
    RECORD_MISSED_CONTACT = "record_missed_contact"
    START = "start"
    HOLD = "hold"
    RESUME = "resume"
    CLOSE = "close"
    DECIDE_THRIVE = "decide_thrive"
    ADD_SUPPORTER = "add_supporter"
    REMOVE_SUPPORTER = "remove_supporter"
    CHANGE_URGENCY = "change_urgency"
    TRANSFER = "transfer"
    REVIEW_ACCEPT = "review_accept"
    REVIEW_CLOSE = "review_close"


_OPEN = OPEN_CASE_STATUSES
_HELD = (Status.ALLOCATED, Status.CONTACTED, Status.ACTIVE, Status.ON_HOLD)
_SEEN = (Status.CONTACTED, Status.ACTIVE, Status.ON_HOLD)


def _stay(*statuses: Status) -> dict[Status | None, Status]:
    """Actions that change the case but not its status (reallocation, THRIVE, supporters)."""
    return {status: status for status in statuses}


# The state machine: action → {status it is allowed from: status it leads to}. ``None`` is
# "no case yet": only opening starts from it.
TRANSITIONS: Final[Mapping[CaseAction, Mapping[Status | None, Status]]] = MappingProxyType(
    {
        CaseAction.OPEN: {None: Status.WAITING},
        # A further referral joins any open case (its urgency can only rise).
        CaseAction.JOIN_REFERRAL: _stay(*_OPEN),
        # A named worker takes the case: by claiming it, or a team lead allocating it.
        CaseAction.CLAIM: {Status.WAITING: Status.ALLOCATED},
        CaseAction.ALLOCATE: {Status.WAITING: Status.ALLOCATED},
        # A team lead hands a held case to another key worker; its progress is kept.
        CaseAction.REALLOCATE: _stay(*_HELD),
        # Moved to a queue its key worker does not work: back to waiting there, unallocated
        # (a first contact already made stays made: the clock does not restart).
        CaseAction.RELEASE_KEY_WORKER: {status: Status.WAITING for status in _HELD},
        # The first meaningful contact stops the waiting clock.
        CaseAction.RECORD_CONTACT: {Status.ALLOCATED: Status.CONTACTED},
        CaseAction.RECORD_ATTENDED_CONTACT: {Status.ALLOCATED: Status.CONTACTED, **_stay(*_SEEN)},
        CaseAction.RECORD_MISSED_CONTACT: _stay(*_HELD),
        CaseAction.START: {Status.CONTACTED: Status.ACTIVE},
        CaseAction.HOLD: {Status.ACTIVE: Status.ON_HOLD},
        CaseAction.RESUME: {Status.ON_HOLD: Status.ACTIVE},
        # Closing needs a key worker: a waiting case is claimed or allocated first, so nobody
        # is closed unseen by a named worker (a clinical review is that named decision).
        CaseAction.CLOSE: {status: Status.CLOSED for status in _HELD},
        # The grouping is agreed *with the young person*, so only after first contact.
        CaseAction.DECIDE_THRIVE: _stay(*_SEEN),
        CaseAction.ADD_SUPPORTER: _stay(*_HELD),
        CaseAction.REMOVE_SUPPORTER: _stay(*_HELD),
        CaseAction.CHANGE_URGENCY: _stay(*_OPEN),
        CaseAction.TRANSFER: _stay(*_OPEN),
        CaseAction.REVIEW_ACCEPT: _stay(*_OPEN),
        CaseAction.REVIEW_CLOSE: {status: Status.CLOSED for status in _OPEN},
    }
)

# The timeline event each assignment of a key worker appends (the SQL claim writes the same).
KEY_WORKER_EVENTS: Final[Mapping[CaseAction, str]] = MappingProxyType(
    {
        CaseAction.CLAIM: "claimed",
        CaseAction.ALLOCATE: "allocated",
        CaseAction.REALLOCATE: "reallocated",
    }
)
REVIEW_CLOSE_OUTCOMES: Final[Mapping[ReviewOutcome, CaseOutcome]] = MappingProxyType(
    {
        ReviewOutcome.SIGNPOST: CaseOutcome.SIGNPOSTED,
        ReviewOutcome.ADULT_HANDOVER: CaseOutcome.ADULT_HANDOVER,
    }
)
# The effective eligibility a review leaves the case with.
REVIEWED_ELIGIBILITY: Final[Mapping[ReviewOutcome, EffectiveEligibility]] = MappingProxyType(
    {
        ReviewOutcome.ACCEPT: EffectiveEligibility.ELIGIBLE,
        ReviewOutcome.SIGNPOST: EffectiveEligibility.INELIGIBLE,
        ReviewOutcome.ADULT_HANDOVER: EffectiveEligibility.INELIGIBLE,
    }
)


class IllegalTransition(Conflict):
    type = "illegal_transition"
    title = "Not allowed in the case's current state"


class NotAwaitingReview(Conflict):
    type = "not_awaiting_review"
    title = "The case is not awaiting clinical review"


class UrgencyUnchanged(Conflict):
    type = "urgency_unchanged"
    title = "The case already has this urgency"


class StaleVersion(PreconditionFailed):
    """The caller changed the case from a version that is no longer current."""

    type = "stale_version"

    def __init__(self, current_version: int) -> None:
        super().__init__(
            f"The case has changed since you read it (it is now version {current_version}). "
            "Read it again and retry.",
            current_version=current_version,
        )
        self.current_version = current_version


class VersionRequired(PreconditionRequired):
    """The caller named no version of the case to change."""

    def __init__(self) -> None:
        super().__init__(
            "Name the version of the case you read (If-Match with its ETag) to change it."
        )


def next_status(current: str | None, action: CaseAction) -> Status:
    """The status ``action`` leads to from ``current``, or a 409 naming the current status."""
    allowed = TRANSITIONS[action]
    target = allowed.get(Status(current) if current is not None else None)
    if target is None:
        raise IllegalTransition(
            f"Cannot {action.value.replace('_', ' ')} a case that is {current}.",
            current_status=current,
            action=action.value,
            allowed_from=[status.value for status in allowed if status is not None],
        )
    return target


# Loading and access --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CaseReferral:
    """What a case shows of each referral that opened or joined it (not the payloads)."""

    id: uuid.UUID
    reference: str
    channel: str
    received_at: datetime
    disposition: str
    urgency_code: str
    route_kind: str
    eligibility_outcome: str


# CaseReferral's fields, in order: one query's worth of referral and decision columns.
CASE_REFERRAL_COLUMNS = (
    Referral.id,
    Referral.reference,
    Referral.channel,
    Referral.received_at,
    Referral.disposition,
    TriageDecision.urgency_code,
    TriageDecision.route_kind,
    TriageDecision.eligibility_outcome,
)


@dataclass(slots=True)
class CaseContext:
    """A case with what access decisions need: its queue's kind and its current supporters."""

    case: Case
    queue_kind: str
    supporters: list[CaseSupporter] = field(default_factory=list)
    supporting_team_kinds: dict[str, str] = field(default_factory=dict)
    # Set when already loaded with the case (saves a round trip when the response shows them).
    person: Person | None = None
    referrals: list[CaseReferral] | None = None

    @property
    def supporting_worker_ids(self) -> list[str]:
        return [s.worker_id for s in self.supporters if s.worker_id is not None]


async def load_case(
    session: AsyncSession, case_id: uuid.UUID, *, for_update: bool = False
) -> CaseContext | None:
    """The case and its access context; ``for_update`` locks the case row (not its queue)."""
    stmt = (
        select(Case, Queue.kind)
        .join(Queue, Queue.id == Case.queue_id)
        .where(Case.id == case_id)
        .execution_options(populate_existing=True)
    )
    if for_update:
        stmt = stmt.with_for_update(of=Case)
    row = (await session.execute(stmt)).one_or_none()
    if row is None:
        return None
    case, queue_kind = row
    team_kind = Queue.__table__.alias("team")
    supporters = (
        await session.execute(
            select(CaseSupporter, team_kind.c.kind)
            .outerjoin(team_kind, team_kind.c.id == CaseSupporter.team_queue_id)
            .where(CaseSupporter.case_id == case.id, CaseSupporter.removed_at.is_(None))
            .order_by(CaseSupporter.added_at, CaseSupporter.id)
        )
    ).all()
    return CaseContext(
        case=case,
        queue_kind=queue_kind,
        supporters=[s for s, _ in supporters],
        supporting_team_kinds={
            s.team_queue_id: kind for s, kind in supporters if s.team_queue_id and kind
        },
    )


def may_read(actor: Actor, ctx: CaseContext) -> bool:
    """The access policy (app.authz), plus: members of a supporting team may read the case."""
    if authz.can_read_case(
        actor,
        queue_id=ctx.case.queue_id,
        queue_kind=ctx.queue_kind,
        key_worker_id=ctx.case.key_worker_id,
        supporting_worker_ids=ctx.supporting_worker_ids,
    ):
        return True
    return any(
        authz.can_see_queue(actor, team_id, kind)
        for team_id, kind in ctx.supporting_team_kinds.items()
    )


async def readable_case(
    session: AsyncSession,
    actor: Actor,
    case_id: uuid.UUID,
    *,
    now: datetime,
    for_update: bool = False,
    attempted: str = "read",
) -> CaseContext:
    """The case, or 404: a case the caller may not see is indistinguishable from none (the
    refused attempt is audited as ``attempted``)."""
    ctx = await load_case(session, case_id, for_update=for_update)
    if ctx is not None and not may_read(actor, ctx):
        await _refuse(session, actor, ctx, attempted, now)
        ctx = None
    if ctx is None:
        raise NotFound("No case with this id.")
    return ctx


async def _refuse(
    session: AsyncSession, actor: Actor, ctx: CaseContext, attempted: str, now: datetime
) -> None:
    """Audit a refused access: queued, and written after the error response rolls back."""
    await audit.record_refusal(
        session,
        actor=actor,
        action=attempted,
        resource_type="case",
        resource_id=ctx.case.id,
        person_id=ctx.case.person_id,
        now=now,
    )


def _may_act(actor: Actor, ctx: CaseContext) -> bool:
    case = ctx.case
    return authz.can_act_on_case(
        actor, queue_id=case.queue_id, queue_kind=ctx.queue_kind, key_worker_id=case.key_worker_id
    )


def _may_allocate(actor: Actor, ctx: CaseContext) -> bool:
    return authz.can_manage_queue(actor, ctx.case.queue_id)


def _may_record_contact(actor: Actor, ctx: CaseContext) -> bool:
    return _may_act(actor, ctx) or authz.can_record_contact_as_supporter(
        actor, supporting_worker_ids=ctx.supporting_worker_ids
    )


def _may_review(actor: Actor, ctx: CaseContext) -> bool:
    return authz.can_review_case(actor, queue_id=ctx.case.queue_id)


def _may_regrade(actor: Actor, ctx: CaseContext) -> bool:
    return authz.can_regrade_case(
        actor, queue_id=ctx.case.queue_id, key_worker_id=ctx.case.key_worker_id
    )


def _may_transfer(actor: Actor, ctx: CaseContext) -> bool:
    return authz.can_transfer_case(actor, queue_id=ctx.case.queue_id)


_Policy = Callable[[Actor, CaseContext], bool]
# Who may take each action on a case they can already read (app.authz has the rules).
POLICIES: Final[Mapping[CaseAction, tuple[_Policy, str]]] = MappingProxyType(
    {
        CaseAction.ALLOCATE: (
            _may_allocate,
            "Only a team lead of this case's queue can allocate it.",
        ),
        CaseAction.REALLOCATE: (
            _may_allocate,
            "Only a team lead of this case's queue can allocate it.",
        ),
        CaseAction.RECORD_ATTENDED_CONTACT: (
            _may_record_contact,
            "Only the key worker, a supporting worker or a team lead can record a contact.",
        ),
        CaseAction.RECORD_MISSED_CONTACT: (
            _may_record_contact,
            "Only the key worker, a supporting worker or a team lead can record a contact.",
        ),
        CaseAction.REVIEW_ACCEPT: (
            _may_review,
            "Only a duty clinician or a team lead of the case's queue can review it.",
        ),
        CaseAction.REVIEW_CLOSE: (
            _may_review,
            "Only a duty clinician or a team lead of the case's queue can review it.",
        ),
        CaseAction.CHANGE_URGENCY: (
            _may_regrade,
            "Only the key worker, a duty clinician or a team lead of the case's queue can "
            "re-grade it.",
        ),
        CaseAction.TRANSFER: (
            _may_transfer,
            "Only a team lead of the case's queue or a duty clinician can transfer it.",
        ),
    }
)
DEFAULT_POLICY: Final[tuple[_Policy, str]] = (
    _may_act,
    "Only the key worker (or a team lead of the case's queue) can do this.",
)


async def ensure_may_act(
    session: AsyncSession, actor: Actor, ctx: CaseContext, action: CaseAction, now: datetime
) -> None:
    """403 unless the caller may take ``action`` (they can already see the case)."""
    allowed, message = POLICIES.get(action, DEFAULT_POLICY)
    if not actor.is_staff or not allowed(actor, ctx):
        await _refuse(session, actor, ctx, action.value, now)
        raise Forbidden(message)


def check_version(case: Case, expected_versions: Collection[int] | None) -> None:
    """Optimistic concurrency: the change must be made against the version the caller read.

    ``None``: the caller named no version, which is refused rather than treated as "any".
    """
    if expected_versions is None:
        raise VersionRequired()
    if case.version not in expected_versions:
        raise StaleVersion(case.version)


async def prepare(
    session: AsyncSession,
    actor: Actor,
    ctx: CaseContext,
    action: CaseAction,
    expected_versions: Collection[int] | None,
    now: datetime,
) -> None:
    """The checks before any change, in the order a client can act on: may the caller do it
    (403), did they read the current version (428/412), does the state allow it (409)."""
    await ensure_may_act(session, actor, ctx, action, now)
    check_version(ctx.case, expected_versions)
    next_status(ctx.case.status, action)


async def ensure_referrals(session: AsyncSession, ctx: CaseContext) -> list[CaseReferral]:
    """The case's referrals (loaded once per request)."""
    if ctx.referrals is None:
        ctx.referrals = await case_referrals(session, ctx.case.id)
    return ctx.referrals


async def case_referrals(session: AsyncSession, case_id: uuid.UUID) -> list[CaseReferral]:
    """The referrals that opened or joined the case, oldest first, with their decisions.

    Plain columns, not ORM objects: the referral's raw payload and the decision's snapshot are
    JSON documents the case view never shows.
    """
    rows = await session.execute(
        select(*CASE_REFERRAL_COLUMNS)
        .join(TriageDecision, TriageDecision.referral_id == Referral.id)
        .where(Referral.case_id == case_id)
        .order_by(Referral.received_at, Referral.id)
    )
    return [CaseReferral(*row) for row in rows]


async def case_events(session: AsyncSession, case_id: uuid.UUID) -> list[CaseEvent]:
    """The timeline, oldest first."""
    rows = await session.scalars(
        select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.seq)
    )
    return list(rows)


# Derived state ---------------------------------------------------------------------------------


def breached_at(
    status: str, first_contact_at: datetime | None, respond_by_at: datetime | None, now: datetime
) -> bool:
    """Past respond-by with no first contact, while open: shows on the queue until contacted."""
    return (
        status != Status.CLOSED
        and first_contact_at is None
        and respond_by_at is not None
        and respond_by_at < now
    )


def is_breached(case: Case, now: datetime) -> bool:
    return breached_at(case.status, case.first_contact_at, case.respond_by_at, now)


def within_target(case: Case) -> bool | None:
    """Once the clock has stopped: was the first contact by respond-by (None: no window)."""
    if case.first_contact_at is None or case.respond_by_at is None:
        return None
    return case.first_contact_at <= case.respond_by_at


def engine_eligibility(referrals: list[CaseReferral]) -> str | None:
    """The engine's eligibility for the referral that opened the case (never edited)."""
    return referrals[0].eligibility_outcome if referrals else None


def engine_urgency_code(referrals: list[CaseReferral]) -> str | None:
    """The most urgent code the engine gave any of the case's referrals."""
    codes = [UrgencyCode(r.urgency_code) for r in referrals]
    return min(codes, key=lambda code: URGENCY_RANK[code]).value if codes else None


def effective_eligibility(case: Case, referrals: list[CaseReferral]) -> str | None:
    """The engine's outcome for the opening referral until a clinical review decides."""
    if case.eligibility_review is not None:
        return REVIEWED_ELIGIBILITY[ReviewOutcome(case.eligibility_review)].value
    return engine_eligibility(referrals)


def awaiting_review(case: Case, referrals: list[CaseReferral]) -> bool:
    """Open, its opening referral sent for clinical review by the engine, not yet reviewed."""
    return (
        case.status != Status.CLOSED
        and case.eligibility_review is None
        and engine_eligibility(referrals) == EffectiveEligibility.CLINICAL_REVIEW
    )


# Recording a change ------------------------------------------------------------------------------


def transition_audit_details(from_status: Any, to_status: Any, version: Any) -> dict[str, Any]:
    """What the audit row of every case change records (also built as SQL by the claim)."""
    return {"from_status": from_status, "to_status": to_status, "version": version}


def key_worker_change_data(previous: Any, current: Any) -> dict[str, Any]:
    """The timeline data of a claim, allocation or reallocation (also built as SQL)."""
    return {"previous_key_worker_id": previous, "key_worker_id": current}


async def _record_change(
    session: AsyncSession,
    ctx: CaseContext,
    *,
    actor: Actor | None,
    action: CaseAction,
    now: datetime,
    event_type: str,
    reason: str | None = None,
    data: dict[str, Any] | None = None,
    audit_details: dict[str, Any] | None = None,
) -> None:
    """Move the case to its next status, bump its version, append the event and the audit."""
    case = ctx.case
    from_status = case.status
    case.status = next_status(from_status, action).value
    case.version += 1
    case.updated_at = now
    await append_event(
        session,
        case,
        type=event_type,
        now=now,
        actor=actor,
        from_status=from_status,
        to_status=case.status,
        reason=reason,
        data=data,
    )
    if actor is not None:
        audit.record(
            session,
            actor=actor,
            action=action.value,
            resource_type="case",
            resource_id=case.id,
            person_id=case.person_id,
            now=now,
            details={
                **transition_audit_details(from_status, case.status, case.version),
                **(audit_details or {}),
            },
        )


# Opening and joining (intake) ---------------------------------------------------------------


async def open_or_join_case(
    session: AsyncSession,
    person: Person,
    decision: Decision,
    now: datetime,
    *,
    person_is_new: bool,
    gender_code: str | None,
    ethnic_category_code: str | None,
) -> tuple[Case | None, str, bool]:
    """Join the person's open case if they have one; else open a case unless signposted.

    Returns the case (None when signposted), the referral's disposition (``case_opened``,
    ``joined_case`` or ``signposted``) and whether joining changed the case.

    A case opened here carries what its opening referral records for the reports, as the
    referral does: the age and locality of the decision and the equity answers given with this
    referral (``gender_code``, ``ethnic_category_code``); docs/domain/reporting.md.

    A person this transaction has just recorded can have no case yet, and no other transaction
    can open one for them before this one commits (it cannot see them): their case needs
    neither the lookup nor a savepoint, and is inserted with the rest at the commit. The
    timeline event and audit row are added by ``record_referral_on_case`` once the referral
    exists.
    """
    if not person_is_new:
        open_case = await _open_case_for_update(session, person)
        if open_case is not None:
            return open_case, "joined_case", _join(session, open_case, decision, now)
    if decision.route.kind is RouteKind.SIGNPOST or decision.route.queue_id is None:
        return None, "signposted", False
    case = Case(
        id=new_id(),
        person_id=person.id,
        queue_id=decision.route.queue_id,
        status=next_status(None, CaseAction.OPEN).value,
        urgency_code=decision.urgency.code.value,
        opening_urgency_code=decision.urgency.code.value,
        urgency_rank=URGENCY_RANK[decision.urgency.code],
        received_at=now,
        respond_by_at=decision.urgency.respond_by_at,
        thrive_grouping_proposed=decision.thrive_grouping.value,
        age_years=decision.age_years,
        locality_id=decision.locality_id,
        gender_code=gender_code,
        ethnic_category_code=ethnic_category_code,
        version=1,
        last_event_seq=0,
        did_not_attend_count=0,
        created_at=now,
        updated_at=now,
    )
    if person_is_new:
        session.add(case)
        return case, "case_opened", False
    try:
        async with session.begin_nested():
            session.add(case)
            await session.flush()
    except IntegrityError:
        # Another referral for the same person opened a case a moment ago: join that one.
        open_case = await _open_case_for_update(session, person)
        if open_case is None:
            raise
        return open_case, "joined_case", _join(session, open_case, decision, now)
    return case, "case_opened", False


async def _open_case_for_update(session: AsyncSession, person: Person) -> Case | None:
    return await session.scalar(
        select(Case)
        .where(Case.person_id == person.id, Case.status != Status.CLOSED.value)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


@dataclass(frozen=True, slots=True)
class JoinChange:
    """What a further referral changed on the case it joined (kept for its event and audit)."""

    urgency_raised: bool = False
    respond_by_brought_forward: bool = False
    queue_moved: bool = False
    from_code: str | None = None
    from_respond_by_at: datetime | None = None
    from_queue_id: str | None = None

    @property
    def changed(self) -> bool:
        return self.urgency_raised or self.respond_by_brought_forward or self.queue_moved

    def audit_keys(self) -> dict[str, bool]:
        """Each key says one thing that happened (docs/domain/after-the-door.md)."""
        return {
            "urgency_raised": self.urgency_raised,
            "respond_by_brought_forward": self.respond_by_brought_forward,
            "queue_moved": self.queue_moved,
        }


_JOIN_CHANGES_KEY = "frontdoor.cases.join_changes"


def _join(session: AsyncSession, case: Case, decision: Decision, now: datetime) -> bool:
    """A new referral can make an open case more urgent, never less.

    An unallocated case moves to the new route's queue when it is more urgent (e.g. to crisis);
    an allocated case stays with its key worker ("no referring on"), who sees the raised
    urgency. The deadline moves only while the clock runs, and only ever earlier.
    """
    next_status(case.status, CaseAction.JOIN_REFERRAL)
    new_rank = URGENCY_RANK[decision.urgency.code]
    new_respond_by = decision.urgency.respond_by_at
    from_code, from_respond_by, from_queue_id = case.urgency_code, case.respond_by_at, case.queue_id
    urgency_raised = respond_by_moved = queue_moved = False
    if new_rank < case.urgency_rank:
        case.urgency_rank = new_rank
        case.urgency_code = decision.urgency.code.value
        urgency_raised = True
        target = decision.route.queue_id
        if case.status == Status.WAITING and target is not None and target != case.queue_id:
            case.queue_id = target
            queue_moved = True
    if (
        new_respond_by is not None
        and case.first_contact_at is None
        and (case.respond_by_at is None or new_respond_by < case.respond_by_at)
    ):
        case.respond_by_at = new_respond_by
        respond_by_moved = True
    change = JoinChange(
        urgency_raised, respond_by_moved, queue_moved, from_code, from_respond_by, from_queue_id
    )
    session.info.setdefault(_JOIN_CHANGES_KEY, {})[case.id] = change
    if change.changed:
        case.version += 1
        case.updated_at = now
    return change.changed


async def record_referral_on_case(
    session: AsyncSession,
    case: Case,
    referral: Referral,
    decision: Decision,
    *,
    actor: Actor,
    joined: bool,
    now: datetime,
) -> None:
    """The timeline event and audit row of a referral opening or joining ``case``; a join that
    raised the urgency also records the change in ``case_urgency_changes``."""
    await record_referral(session, case, referral, decision, joined=joined, now=now)
    change = session.info.get(_JOIN_CHANGES_KEY, {}).pop(case.id, JoinChange()) if joined else None
    details: dict[str, Any] = {
        "referral_id": referral.id,
        "queue_id": case.queue_id,
        "urgency_code": case.urgency_code,
    }
    if change is not None:
        details |= {"change": "referral_joined", **change.audit_keys()}
        if change.urgency_raised:
            session.add(
                CaseUrgencyChange(
                    case_id=case.id,
                    source=UrgencyChangeSource.REFERRAL.value,
                    engine_code=decision.urgency.code.value,
                    from_code=change.from_code or case.urgency_code,
                    to_code=case.urgency_code,
                    from_respond_by_at=change.from_respond_by_at,
                    to_respond_by_at=case.respond_by_at,
                    from_queue_id=change.from_queue_id or case.queue_id,
                    to_queue_id=case.queue_id,
                    reason=None,
                    changed_by_id=actor.id,
                    changed_by_role=actor.role,
                    changed_at=now,
                )
            )
    audit.record(
        session,
        actor=actor,
        action="update" if joined else "create",
        resource_type="case",
        resource_id=case.id,
        person_id=case.person_id,
        now=now,
        details=details,
    )


# Key workers -----------------------------------------------------------------------------------


async def assign_key_worker(
    session: AsyncSession,
    ctx: CaseContext,
    *,
    actor: Actor,
    key_worker_id: str,
    action: CaseAction,
    now: datetime,
    reason: str | None = None,
) -> None:
    """Claim, allocate or reallocate: ``key_worker_id`` now holds the case."""
    case = ctx.case
    previous = case.key_worker_id
    if previous == key_worker_id:
        raise Conflict("This worker is already the case's key worker.")
    next_status(case.status, action)  # refuse before changing anything
    case.key_worker_id = key_worker_id
    case.allocated_at = now
    await _record_change(
        session,
        ctx,
        actor=actor,
        action=action,
        now=now,
        event_type=KEY_WORKER_EVENTS[action],
        reason=reason,
        data=key_worker_change_data(previous, key_worker_id),
    )


async def allocate(
    session: AsyncSession,
    ctx: CaseContext,
    *,
    actor: Actor,
    expected_versions: Collection[int] | None,
    key_worker_id: str,
    now: datetime,
    reason: str | None = None,
) -> None:
    """A team lead allocates a waiting case, or reallocates a held one (history in events)."""
    action = CaseAction.ALLOCATE if ctx.case.status == Status.WAITING else CaseAction.REALLOCATE
    await prepare(session, actor, ctx, action, expected_versions, now)
    # Only to someone who can hold it: a known worker whose role holds cases in this queue.
    await ensure_can_hold(
        session,
        key_worker_id,
        queue_id=ctx.case.queue_id,
        queue_kind=ctx.queue_kind,
        field="key_worker_id",
    )
    await assign_key_worker(
        session,
        ctx,
        actor=actor,
        key_worker_id=key_worker_id,
        action=action,
        now=now,
        reason=reason,
    )


async def works_queue(
    session: AsyncSession, worker_id: str, *, queue_id: str, queue_kind: str
) -> bool:
    """Whether a known worker holds cases in the queue (the roles that may claim from it)."""
    member = await session.get(StaffMember, worker_id)
    if member is None:
        return False
    return authz.can_claim_from_queue(as_actor(member), queue_id, queue_kind)


async def _move_to_queue(
    session: AsyncSession,
    ctx: CaseContext,
    target: Queue,
    *,
    actor: Actor,
    now: datetime,
    reason: str | None,
) -> bool:
    """Put the case in ``target``'s queue; its key worker stays only if they work that queue
    (else a recorded ``key_worker_released`` step makes it waiting there). Whether released."""
    case = ctx.case
    case.queue_id = target.id
    ctx.queue_kind = target.kind
    if case.key_worker_id is None:
        return False
    if await works_queue(session, case.key_worker_id, queue_id=target.id, queue_kind=target.kind):
        return False
    released = case.key_worker_id
    case.key_worker_id = None
    case.allocated_at = None
    await _record_change(
        session,
        ctx,
        actor=actor,
        action=CaseAction.RELEASE_KEY_WORKER,
        now=now,
        event_type="key_worker_released",
        reason=reason,
        data={"previous_key_worker_id": released, "queue_id": target.id},
    )
    return True


async def _active_queue(session: AsyncSession, queue_id: str, *, field: str) -> Queue:
    queue = await session.get(Queue, queue_id)
    if queue is None or not queue.active:
        raise Unprocessable("No such queue in the service directory.", field=field)
    return queue


# Contacts ----------------------------------------------------------------------------------------

# The older first-contact action's methods, as contact mechanisms.
LEGACY_METHODS: Final[Mapping[str, ContactMechanism]] = MappingProxyType(
    {
        "face_to_face": ContactMechanism.FACE_TO_FACE,
        "phone": ContactMechanism.TELEPHONE,
        "video": ContactMechanism.VIDEO,
        "text_message": ContactMechanism.TEXT,
        "email": ContactMechanism.EMAIL,
    }
)


def _check_contact_time(case: Case, occurred_at: datetime, now: datetime, field: str) -> None:
    if occurred_at > now:
        raise Unprocessable(f"{field} cannot be in the future.", field=field)
    if occurred_at < case.received_at:
        raise Unprocessable(f"{field} cannot be before the referral was received.", field=field)


def _count_contact(case: Case, contact: CaseContact) -> bool:
    """Update the case's first, second and latest attended times and did-not-attend count for
    a new contact; whether it stopped the waiting clock."""
    if contact.attendance == ContactAttendance.DID_NOT_ATTEND:
        case.did_not_attend_count = (case.did_not_attend_count or 0) + 1
    if contact.attendance != ContactAttendance.ATTENDED:
        return False
    stopped = case.first_contact_at is None
    # The two earliest attended contacts: the new one may have happened before those recorded.
    times = sorted(
        at
        for at in (case.first_contact_at, case.second_contact_at, contact.occurred_at)
        if at is not None
    )
    if case.first_contact_at is None or contact.occurred_at < case.first_contact_at:
        case.first_contact_type = contact.contact_type
    case.first_contact_at = times[0]
    case.second_contact_at = times[1] if len(times) > 1 else None
    if case.last_contact_at is None or contact.occurred_at > case.last_contact_at:
        case.last_contact_at = contact.occurred_at
    return stopped


def _contact_data(case: Case, contact: CaseContact, stopped: bool) -> dict[str, Any]:
    return {
        "contact_id": str(contact.id),
        "occurred_at": contact.occurred_at.isoformat(),
        "mechanism": contact.mechanism,
        "attendance": contact.attendance,
        "with": contact.with_whom,
        "stopped_clock": stopped,
        "respond_by_at": case.respond_by_at.isoformat() if case.respond_by_at else None,
        "within_target": within_target(case) if stopped else None,
        "waited_seconds": (
            int((contact.occurred_at - case.received_at).total_seconds()) if stopped else None
        ),
    }


async def record_contact(
    session: AsyncSession,
    ctx: CaseContext,
    *,
    actor: Actor,
    expected_versions: Collection[int] | None,
    occurred_at: datetime,
    mechanism: ContactMechanism,
    attendance: ContactAttendance,
    with_whom: ContactWith,
    now: datetime,
) -> CaseContact:
    """Record one contact. The first attended contact stops the waiting clock (an allocated
    case becomes contacted); the case counts its first and second attended contacts and the
    did-not-attend ones. ``occurred_at``: not in the future, not before the referral."""
    case = ctx.case
    action = (
        CaseAction.RECORD_ATTENDED_CONTACT
        if attendance == ContactAttendance.ATTENDED
        else CaseAction.RECORD_MISSED_CONTACT
    )
    await prepare(session, actor, ctx, action, expected_versions, now)
    _check_contact_time(case, occurred_at, now, "occurred_at")
    contact = _new_contact(
        session, case, actor, now, occurred_at, mechanism.value, attendance.value, with_whom.value
    )
    stopped = _count_contact(case, contact)
    await _record_change(
        session,
        ctx,
        actor=actor,
        action=action,
        now=now,
        event_type="contact_recorded",
        data=_contact_data(case, contact, stopped),
        audit_details={
            "contact_id": contact.id,
            "attendance": contact.attendance,
            "stopped_clock": stopped,
        },
    )
    return contact


def _new_contact(
    session: AsyncSession,
    case: Case,
    actor: Actor,
    now: datetime,
    occurred_at: datetime,
    mechanism: str | None,
    attendance: str,
    with_whom: str,
    contact_type: str | None = None,
) -> CaseContact:
    assert actor.id is not None  # staff always carry a subject
    contact = CaseContact(
        id=new_id(),
        case_id=case.id,
        occurred_at=occurred_at,
        mechanism=mechanism,
        attendance=attendance,
        with_whom=with_whom,
        contact_type=contact_type,
        recorded_by_id=actor.id,
        recorded_at=now,
    )
    session.add(contact)
    return contact


async def record_first_contact(
    session: AsyncSession,
    ctx: CaseContext,
    *,
    actor: Actor,
    expected_versions: Collection[int] | None,
    contact_type: str,
    method: str | None,
    contacted_at: datetime | None,
    now: datetime,
    reason: str | None = None,
) -> CaseContact:
    """The older first-contact action (``POST /v1/cases/{id}/contact``), kept as a use of the
    contact records: an attended contact with the young person that must be the first (an
    allocated case becomes contacted; any other status is a 409, as before)."""
    case = ctx.case
    await prepare(session, actor, ctx, CaseAction.RECORD_CONTACT, expected_versions, now)
    at = contacted_at or now
    _check_contact_time(case, at, now, "contacted_at")
    mechanism = LEGACY_METHODS[method].value if method else None
    contact = _new_contact(
        session,
        case,
        actor,
        now,
        at,
        mechanism,
        ContactAttendance.ATTENDED.value,
        ContactWith.YOUNG_PERSON.value,
        contact_type,
    )
    _count_contact(case, contact)
    await _record_change(
        session,
        ctx,
        actor=actor,
        action=CaseAction.RECORD_CONTACT,
        now=now,
        event_type="first_contact",
        reason=reason,
        data={
            "contact_id": str(contact.id),
            "contact_type": contact_type,
            "method": method,
            "contacted_at": at.isoformat(),
            "respond_by_at": case.respond_by_at.isoformat() if case.respond_by_at else None,
            "within_target": within_target(case),
            "waited_seconds": int((at - case.received_at).total_seconds()),
        },
    )
    return contact


# Status steps, closing, THRIVE, supporters ---------------------------------------------------


async def change_status(
    session: AsyncSession,
    ctx: CaseContext,
    *,
    actor: Actor,
    expected_versions: Collection[int] | None,
    action: CaseAction,
    now: datetime,
    reason: str | None = None,
) -> None:
    """Start the intervention, hold or resume: a status change and nothing else."""
    event_type = {
        CaseAction.START: "intervention_started",
        CaseAction.HOLD: "put_on_hold",
        CaseAction.RESUME: "resumed",
    }[action]
    await prepare(session, actor, ctx, action, expected_versions, now)
    await _record_change(
        session, ctx, actor=actor, action=action, now=now, event_type=event_type, reason=reason
    )


async def close(
    session: AsyncSession,
    ctx: CaseContext,
    *,
    actor: Actor,
    expected_versions: Collection[int] | None,
    outcome: str,
    now: datetime,
    reason: str | None = None,
) -> None:
    """Close with an outcome. The person can come back at any time: a new referral opens a
    new case."""
    case = ctx.case
    await prepare(session, actor, ctx, CaseAction.CLOSE, expected_versions, now)
    case.outcome = CaseOutcome(outcome).value
    case.closed_at = now
    await _record_change(
        session,
        ctx,
        actor=actor,
        action=CaseAction.CLOSE,
        now=now,
        event_type="closed",
        reason=reason,
        data={
            "outcome": case.outcome,
            "first_contact_at": (
                case.first_contact_at.isoformat() if case.first_contact_at else None
            ),
            "within_target": within_target(case),
        },
    )


async def decide_thrive(
    session: AsyncSession,
    ctx: CaseContext,
    *,
    actor: Actor,
    expected_versions: Collection[int] | None,
    grouping: str,
    now: datetime,
    reason: str | None = None,
) -> None:
    """The key worker confirms or changes the THRIVE grouping with the young person; the case
    keeps who decided and when."""
    case = ctx.case
    await prepare(session, actor, ctx, CaseAction.DECIDE_THRIVE, expected_versions, now)
    previous = case.thrive_grouping or case.thrive_grouping_proposed
    case.thrive_grouping = grouping
    case.thrive_decided_by = actor.id
    case.thrive_decided_at = now
    await _record_change(
        session,
        ctx,
        actor=actor,
        action=CaseAction.DECIDE_THRIVE,
        now=now,
        event_type="thrive_confirmed" if grouping == previous else "thrive_changed",
        reason=reason,
        data={
            "proposed": case.thrive_grouping_proposed,
            "previous": previous,
            "decided": grouping,
        },
    )


async def add_supporter(
    session: AsyncSession,
    ctx: CaseContext,
    *,
    actor: Actor,
    expected_versions: Collection[int] | None,
    kind: str,
    worker_id: str | None,
    team_queue_id: str | None,
    role: str | None,
    now: datetime,
    reason: str | None = None,
) -> CaseSupporter:
    """Pull in a supporting worker or specialist team; the key worker still owns the case."""
    case = ctx.case
    await prepare(session, actor, ctx, CaseAction.ADD_SUPPORTER, expected_versions, now)
    if kind == "worker":
        if worker_id is None or team_queue_id is not None:
            raise Unprocessable("A supporting worker needs worker_id only.", field="worker_id")
        await ensure_can_support(session, worker_id, field="worker_id")
        if worker_id == case.key_worker_id:
            raise Conflict("The key worker already holds this case.")
        if worker_id in ctx.supporting_worker_ids:
            raise Conflict("This worker already supports the case.")
    else:
        if team_queue_id is None or worker_id is not None:
            raise Unprocessable(
                "A supporting team needs team_queue_id only.", field="team_queue_id"
            )
        team = await session.get(Queue, team_queue_id)
        if team is None or not team.active:
            raise Unprocessable("No such team in the service directory.", field="team_queue_id")
        if team_queue_id == case.queue_id:
            raise Conflict("The case is already in this team's queue.")
        if team_queue_id in ctx.supporting_team_kinds:
            raise Conflict("This team already supports the case.")
    assert actor.id is not None  # staff always carry a subject
    supporter = CaseSupporter(
        case_id=case.id,
        kind=kind,
        worker_id=worker_id,
        team_queue_id=team_queue_id,
        role=role,
        added_by_id=actor.id,
        added_at=now,
    )
    session.add(supporter)
    await session.flush()
    ctx.supporters.append(supporter)
    await _record_change(
        session,
        ctx,
        actor=actor,
        action=CaseAction.ADD_SUPPORTER,
        now=now,
        event_type="supporter_added",
        reason=reason,
        data=_supporter_data(supporter),
    )
    return supporter


async def remove_supporter(
    session: AsyncSession,
    ctx: CaseContext,
    *,
    actor: Actor,
    expected_versions: Collection[int] | None,
    supporter_id: uuid.UUID,
    now: datetime,
    reason: str | None = None,
) -> CaseSupporter:
    """Stand a supporter down (the row stays, with who and when)."""
    case = ctx.case
    await prepare(session, actor, ctx, CaseAction.REMOVE_SUPPORTER, expected_versions, now)
    supporter = await session.get(CaseSupporter, supporter_id)
    if supporter is None or supporter.case_id != case.id:
        raise NotFound("No such supporter on this case.")
    if supporter.removed_at is not None:
        raise Conflict("This supporter was already stood down.")
    assert actor.id is not None
    supporter.removed_at = now
    supporter.removed_by_id = actor.id
    ctx.supporters = [s for s in ctx.supporters if s.id != supporter.id]
    await _record_change(
        session,
        ctx,
        actor=actor,
        action=CaseAction.REMOVE_SUPPORTER,
        now=now,
        event_type="supporter_removed",
        reason=reason,
        data=_supporter_data(supporter),
    )
    return supporter


def _supporter_data(supporter: CaseSupporter) -> dict[str, Any]:
    return {
        "supporter_id": str(supporter.id),
        "kind": supporter.kind,
        "worker_id": supporter.worker_id,
        "team_queue_id": supporter.team_queue_id,
        "role": supporter.role,
    }


# Re-grading --------------------------------------------------------------------------------------


def respond_within(ruleset: Ruleset, code: UrgencyCode) -> timedelta | None:
    """The ruleset's window for ``code`` (None: no window)."""
    for step in ruleset.compiled.urgency_steps:
        if step.code == code:
            return step.respond_within
    raise ValueError(f"urgency code {code} is not in the ruleset")


def regraded_respond_by(
    *,
    old_code: UrgencyCode,
    new_code: UrgencyCode,
    old_respond_by_at: datetime | None,
    received_at: datetime,
    window: timedelta | None,
    now: datetime,
) -> datetime | None:
    """The respond-by time after a re-grade (docs/domain/after-the-door.md): a downgrade counts
    the new window from the referral's receipt; an upgrade counts it from now, never later
    than the old deadline."""
    if URGENCY_RANK[new_code] > URGENCY_RANK[old_code]:
        return respond_by(received_at, window)
    from_now = respond_by(now, window)
    if from_now is None:
        return old_respond_by_at
    if old_respond_by_at is None:
        return from_now
    return min(from_now, old_respond_by_at)


def crisis_queue_id(ruleset: Ruleset) -> str | None:
    """The county-wide crisis queue (where the routing rules send A and B)."""
    return ruleset.compiled.step_routes[RoutingStep.CRISIS_URGENCY].queue_id


async def change_urgency(
    session: AsyncSession,
    ctx: CaseContext,
    *,
    actor: Actor,
    expected_versions: Collection[int] | None,
    code: UrgencyCode,
    reason: str,
    ruleset: Ruleset,
    now: datetime,
) -> CaseUrgencyChange:
    """A clinician re-grades the case, up or down, with a reason.

    ``respond_by_at`` follows ``regraded_respond_by`` while the waiting clock runs (once it has
    stopped, the deadline the first contact was measured against stays). A case re-graded to a
    crisis code (A, B) moves to the crisis queue; its key worker stays only if they work it.
    The engine's code stays on the decisions, and the change is kept in
    ``case_urgency_changes``.
    """
    case = ctx.case
    await prepare(session, actor, ctx, CaseAction.CHANGE_URGENCY, expected_versions, now)
    old_code = UrgencyCode(case.urgency_code)
    if code == old_code:
        raise UrgencyUnchanged(f"The case is already urgency {code}.", urgency_code=code.value)
    referrals = await ensure_referrals(session, ctx)
    old_respond_by, old_queue = case.respond_by_at, case.queue_id
    if case.first_contact_at is None:
        case.respond_by_at = regraded_respond_by(
            old_code=old_code,
            new_code=code,
            old_respond_by_at=old_respond_by,
            received_at=case.received_at,
            window=respond_within(ruleset, code),
            now=now,
        )
    case.urgency_code = code.value
    case.urgency_rank = URGENCY_RANK[code]
    crisis = crisis_queue_id(ruleset)
    to_crisis = code in ruleset.compiled.crisis_codes and crisis is not None
    target = await _active_queue(session, crisis, field="code") if to_crisis and crisis else None
    moves = target is not None and target.id != case.queue_id
    raised = URGENCY_RANK[code] < URGENCY_RANK[old_code]
    change = CaseUrgencyChange(
        case_id=case.id,
        source=UrgencyChangeSource.REGRADE.value,
        engine_code=engine_urgency_code(referrals) or old_code.value,
        from_code=old_code.value,
        to_code=code.value,
        from_respond_by_at=old_respond_by,
        to_respond_by_at=case.respond_by_at,
        from_queue_id=old_queue,
        to_queue_id=target.id if moves and target else old_queue,
        reason=reason,
        changed_by_id=actor.id,
        changed_by_role=actor.role,
        changed_at=now,
    )
    session.add(change)
    await _record_change(
        session,
        ctx,
        actor=actor,
        action=CaseAction.CHANGE_URGENCY,
        now=now,
        event_type="urgency_raised" if raised else "urgency_lowered",
        reason=reason,
        data={
            "from_code": old_code.value,
            "to_code": code.value,
            "engine_code": change.engine_code,
            "from_respond_by_at": old_respond_by.isoformat() if old_respond_by else None,
            "respond_by_at": case.respond_by_at.isoformat() if case.respond_by_at else None,
            "from_queue_id": old_queue,
            "queue_id": change.to_queue_id,
        },
        audit_details={
            "from_code": old_code.value,
            "to_code": code.value,
            "respond_by_moved": case.respond_by_at != old_respond_by,
            "queue_id": change.to_queue_id,
        },
    )
    if moves and target is not None:
        await _move_to_queue(session, ctx, target, actor=actor, now=now, reason=reason)
    return change


# Transfer ----------------------------------------------------------------------------------------


async def transfer(
    session: AsyncSession,
    ctx: CaseContext,
    *,
    actor: Actor,
    expected_versions: Collection[int] | None,
    queue_id: str,
    reason: str,
    now: datetime,
) -> bool:
    """Move the case to another team's queue with a reason (rare: no referring on). The
    waiting clock keeps running; the key worker stays only if they work the target queue.
    Whether the key worker was released."""
    case = ctx.case
    await prepare(session, actor, ctx, CaseAction.TRANSFER, expected_versions, now)
    target = await _active_queue(session, queue_id, field="queue_id")
    if target.id == case.queue_id:
        raise Conflict("The case is already in this queue.", queue_id=queue_id)
    from_queue = case.queue_id
    case.queue_id = target.id
    await _record_change(
        session,
        ctx,
        actor=actor,
        action=CaseAction.TRANSFER,
        now=now,
        event_type="transferred",
        reason=reason,
        data={"from_queue_id": from_queue, "queue_id": target.id},
        audit_details={"from_queue_id": from_queue, "queue_id": target.id},
    )
    return await _move_to_queue(session, ctx, target, actor=actor, now=now, reason=reason)


# Clinical review ---------------------------------------------------------------------------------


async def review(
    session: AsyncSession,
    ctx: CaseContext,
    *,
    actor: Actor,
    expected_versions: Collection[int] | None,
    outcome: ReviewOutcome,
    reason: str,
    ruleset: Ruleset,
    now: datetime,
    queue_id: str | None = None,
    signposting: Any = None,
) -> None:
    """The clinical-review decision for a case awaiting it (409 otherwise).

    ``accept``: eligible, into ``queue_id`` (default: the team the routing rules propose for the
    young person as eligible, ``case_reads.review_proposal``); the key worker stays only if they
    work that queue. ``signpost`` / ``adult_handover``: closed with that outcome. The engine's
    decision is never edited; the case records the review, who, when and why.
    """
    from app.services.case_reads import review_proposal

    case = ctx.case
    action = (
        CaseAction.REVIEW_ACCEPT if outcome == ReviewOutcome.ACCEPT else CaseAction.REVIEW_CLOSE
    )
    await prepare(session, actor, ctx, action, expected_versions, now)
    referrals = await ensure_referrals(session, ctx)
    if not awaiting_review(case, referrals):
        raise NotAwaitingReview(
            "This case is not awaiting clinical review.",
            eligibility=effective_eligibility(case, referrals),
            reviewed_at=case.eligibility_reviewed_at.isoformat()
            if case.eligibility_reviewed_at
            else None,
        )
    target: Queue | None = None
    proposal = None
    if outcome == ReviewOutcome.ACCEPT:
        proposal = await review_proposal(session, ctx, ruleset)
        chosen = queue_id or (proposal.queue_id if proposal else None)
        if chosen is None:
            raise Unprocessable("Name the team's queue to accept the case into.", field="queue_id")
        target = await _active_queue(session, chosen, field="queue_id")
    elif queue_id is not None:
        raise Unprocessable("queue_id is only for accept.", field="queue_id")
    assert actor.id is not None
    case.eligibility_review = outcome.value
    case.eligibility_reviewed_by = actor.id
    case.eligibility_reviewed_at = now
    case.eligibility_reason = reason
    from_queue = case.queue_id
    data: dict[str, Any] = {
        "outcome": outcome.value,
        "engine_eligibility": engine_eligibility(referrals),
        "eligibility": REVIEWED_ELIGIBILITY[outcome].value,
        "from_queue_id": from_queue,
    }
    if target is not None:
        data |= {
            "queue_id": target.id,
            "proposed_queue_id": proposal.queue_id if proposal else None,
        }
        case.queue_id = target.id
    else:
        case.outcome = REVIEW_CLOSE_OUTCOMES[outcome].value
        case.closed_at = now
        data["case_outcome"] = case.outcome
    await _record_change(
        session,
        ctx,
        actor=actor,
        action=action,
        now=now,
        event_type="clinical_review",
        reason=reason,
        data=data,
        audit_details={"review": outcome.value, "queue_id": case.queue_id},
    )
    if target is not None and target.id != from_queue:
        await _move_to_queue(session, ctx, target, actor=actor, now=now, reason=reason)
    # Signposting for a young person signposted or handed over, and the referrer told again.
    from app.services.notifications import review_follow_up
    from app.signposting import default_signposting

    await review_follow_up(
        session,
        case,
        outcome=outcome.value,
        queue_name=target.name if target is not None else None,
        directory=signposting or default_signposting(),
        now=now,
    )
