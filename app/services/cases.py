"""The case lifecycle: one explicit state machine, every change an appended event.

A case moves waiting → allocated → contacted → active ⇄ on_hold → closed. ``TRANSITIONS`` below
is the whole of it: an action not listed for the case's current status is refused with a 409
naming that status. Every change bumps the case version (optimistic concurrency), appends an
event to the timeline (who, what, when, why) and writes an audit record, all in the caller's
transaction; the caller holds the case row locked (``load_case(..., for_update=True)``).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.authz import can_act_on_case, can_manage_queue, can_read_case, can_see_queue
from app.errors import (
    Conflict,
    Forbidden,
    NotFound,
    PreconditionFailed,
    PreconditionRequired,
    Unprocessable,
)
from app.models import Case, CaseEvent, CaseSupporter, Person, Queue, Referral, TriageDecision
from app.security import Actor
from app.services import audit
from app.services.case_events import append_event
from app.services.staff import ensure_can_hold, ensure_can_support


class Status(StrEnum):
    WAITING = "waiting"
    ALLOCATED = "allocated"
    CONTACTED = "contacted"
    ACTIVE = "active"
    ON_HOLD = "on_hold"
    CLOSED = "closed"


class CaseAction(StrEnum):
    CLAIM = "claim"
    ALLOCATE = "allocate"
    REALLOCATE = "reallocate"
    RECORD_CONTACT = "record_contact"
    START = "start"
    HOLD = "hold"
    RESUME = "resume"
    CLOSE = "close"
    DECIDE_THRIVE = "decide_thrive"
    ADD_SUPPORTER = "add_supporter"
    REMOVE_SUPPORTER = "remove_supporter"


_HELD = (Status.ALLOCATED, Status.CONTACTED, Status.ACTIVE, Status.ON_HOLD)
_SEEN = (Status.CONTACTED, Status.ACTIVE, Status.ON_HOLD)


def _stay(*statuses: Status) -> dict[Status, Status]:
    """Actions that change the case but not its status (reallocation, THRIVE, supporters)."""
    return {status: status for status in statuses}


# The state machine: action → {status it is allowed from: status it leads to}.
TRANSITIONS: Final[Mapping[CaseAction, Mapping[Status, Status]]] = MappingProxyType(
    {
        # A named worker takes the case: by claiming it, or a team lead allocating it.
        CaseAction.CLAIM: {Status.WAITING: Status.ALLOCATED},
        CaseAction.ALLOCATE: {Status.WAITING: Status.ALLOCATED},
        # A team lead hands a held case to another key worker; its progress is kept.
        CaseAction.REALLOCATE: _stay(*_HELD),
        # The first meaningful contact stops the waiting clock.
        CaseAction.RECORD_CONTACT: {Status.ALLOCATED: Status.CONTACTED},
        CaseAction.START: {Status.CONTACTED: Status.ACTIVE},
        CaseAction.HOLD: {Status.ACTIVE: Status.ON_HOLD},
        CaseAction.RESUME: {Status.ON_HOLD: Status.ACTIVE},
        # Closing needs a key worker: a waiting case is claimed or allocated first, so nobody
        # is closed unseen by a named worker.
        CaseAction.CLOSE: {status: Status.CLOSED for status in _HELD},
        # The grouping is agreed *with the young person*, so only after first contact.
        CaseAction.DECIDE_THRIVE: _stay(*_SEEN),
        CaseAction.ADD_SUPPORTER: _stay(*_HELD),
        CaseAction.REMOVE_SUPPORTER: _stay(*_HELD),
    }
)


class IllegalTransition(Conflict):
    type = "illegal_transition"
    title = "Not allowed in the case's current state"


def next_status(current: str, action: CaseAction) -> Status:
    """The status ``action`` leads to from ``current``, or a 409 naming the current status."""
    allowed = TRANSITIONS[action]
    target = allowed.get(Status(current))
    if target is None:
        raise IllegalTransition(
            f"Cannot {action.value.replace('_', ' ')} a case that is {current}.",
            current_status=current,
            action=action.value,
            allowed_from=[status.value for status in allowed],
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


# CaseReferral's fields, in order: one query's worth of referral and decision columns.
CASE_REFERRAL_COLUMNS = (
    Referral.id,
    Referral.reference,
    Referral.channel,
    Referral.received_at,
    Referral.disposition,
    TriageDecision.urgency_code,
    TriageDecision.route_kind,
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
    if can_read_case(
        actor,
        queue_id=ctx.case.queue_id,
        queue_kind=ctx.queue_kind,
        key_worker_id=ctx.case.key_worker_id,
        supporting_worker_ids=ctx.supporting_worker_ids,
    ):
        return True
    return any(
        can_see_queue(actor, team_id, kind) for team_id, kind in ctx.supporting_team_kinds.items()
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


async def ensure_may_act(
    session: AsyncSession, actor: Actor, ctx: CaseContext, action: CaseAction, now: datetime
) -> None:
    """403 unless the caller may take ``action`` (they can already see the case)."""
    case = ctx.case
    if action in (CaseAction.ALLOCATE, CaseAction.REALLOCATE):
        allowed = can_manage_queue(actor, case.queue_id)
        message = "Only a team lead of this case's queue can allocate it."
    else:
        allowed = can_act_on_case(
            actor,
            queue_id=case.queue_id,
            queue_kind=ctx.queue_kind,
            key_worker_id=case.key_worker_id,
        )
        message = "Only the key worker (or a team lead of the case's queue) can do this."
    if not allowed:
        await _refuse(session, actor, ctx, action.value, now)
        raise Forbidden(message)


def etag(version: int) -> str:
    """The case version as a weak entity tag (the representation also varies with the clock)."""
    return f'W/"{version}"'


def check_version(case: Case, expected_versions: Collection[int] | None) -> None:
    """Optimistic concurrency: the change must be made against the version the caller read.

    ``None``: the caller named no version (no If-Match), which is refused rather than treated
    as "any version".
    """
    if expected_versions is None:
        raise PreconditionRequired(
            'Send If-Match with the case\'s ETag (W/"<version>") to change it.',
            errors=[{"field": "header:If-Match", "message": "required", "type": "missing"}],
        )
    if case.version not in expected_versions:
        raise PreconditionFailed(
            f"The case has changed since you read it (it is now version {case.version}). "
            "Read it again and retry.",
            headers={"ETag": etag(case.version)},
            current_version=case.version,
        )


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


# The waiting clock ---------------------------------------------------------------------------


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


# Changes ---------------------------------------------------------------------------------------


async def _record_change(
    session: AsyncSession,
    ctx: CaseContext,
    *,
    actor: Actor,
    action: CaseAction,
    now: datetime,
    event_type: str,
    reason: str | None = None,
    data: dict[str, Any] | None = None,
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
    audit.record(
        session,
        actor=actor,
        action=action.value,
        resource_type="case",
        resource_id=case.id,
        person_id=case.person_id,
        now=now,
        details={"from_status": from_status, "to_status": case.status, "version": case.version},
    )


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
    event_type = {
        CaseAction.CLAIM: "claimed",
        CaseAction.ALLOCATE: "allocated",
        CaseAction.REALLOCATE: "reallocated",
    }[action]
    await _record_change(
        session,
        ctx,
        actor=actor,
        action=action,
        now=now,
        event_type=event_type,
        reason=reason,
        data={"previous_key_worker_id": previous, "key_worker_id": key_worker_id},
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
) -> None:
    """The first meaningful contact: stops the waiting clock, recording its type and time."""
    case = ctx.case
    await prepare(session, actor, ctx, CaseAction.RECORD_CONTACT, expected_versions, now)
    at = contacted_at or now
    if at > now:
        raise Unprocessable("contacted_at cannot be in the future.", field="contacted_at")
    if at < case.received_at:
        raise Unprocessable(
            "contacted_at cannot be before the referral was received.", field="contacted_at"
        )
    case.first_contact_at = at
    case.first_contact_type = contact_type
    await _record_change(
        session,
        ctx,
        actor=actor,
        action=CaseAction.RECORD_CONTACT,
        now=now,
        event_type="first_contact",
        reason=reason,
        data={
            "contact_type": contact_type,
            "method": method,
            "contacted_at": at.isoformat(),
            "respond_by_at": case.respond_by_at.isoformat() if case.respond_by_at else None,
            "within_target": within_target(case),
            "waited_seconds": int((at - case.received_at).total_seconds()),
        },
    )


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
    case.outcome = outcome
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
            "outcome": outcome,
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


# Reading ---------------------------------------------------------------------------------------


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
