"""Queues: the overview every staff role sees, worklists and claiming.

``GET /v1/queues`` shows counts only (no person data), so every staff role may see it: the
call-handler console shows queue depth. Worklists and claiming follow app.authz; a queue the
caller may not work answers 403 (queues are public knowledge: ``GET /v1/services``), an unknown
queue 404.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, NoReturn

from fastapi import APIRouter, Path, Query, Response

from app.authz import can_claim_from_queue, can_see_queue
from app.case_presenters import case_read, worklist_item
from app.deps import ClockDep, RulesetDep, SessionDep, StaffDep
from app.errors import Forbidden, NotFound, Unprocessable
from app.models import Queue
from app.models.case import CaseStatus
from app.pagination import InvalidCursor
from app.responses import errors_for
from app.routers.cases import ETAG_HEADER, etag
from app.schemas.case import CaseRead, QueueOverview, QueueOverviewItem, WorklistPage
from app.security import Actor
from app.services import audit, claims
from app.services import queues as service
from app.services.queues import WORKLIST_DEFAULT_LIMIT, WORKLIST_MAX_LIMIT, Cursor, WorklistFilter
from app.triage import Ruleset

router = APIRouter(prefix="/v1/queues", tags=["queues"])

QueueIdPath = Annotated[str, Path(max_length=64, description="A queue id from GET /v1/queues")]


@dataclass(frozen=True, slots=True)
class QueueRef:
    id: str
    kind: str


async def _queue(session: SessionDep, ruleset: Ruleset, queue_id: str) -> QueueRef:
    """The queue's id and kind: from the loaded directory (no query), else from the queues
    table, which also keeps queues the directory has since dropped (their cases still show)."""
    config = ruleset.queue(queue_id)
    if config is not None:
        return QueueRef(id=config.id, kind=str(config.kind))
    queue = await session.get(Queue, queue_id)
    if queue is None:
        raise NotFound("No queue with this id.")
    return QueueRef(id=queue.id, kind=queue.kind)


@router.get(
    "",
    response_model=QueueOverview,
    responses=errors_for(401, 403),
    summary="Every queue with its open, unallocated and breached counts and oldest wait",
    description="Counts only, no person data: open to every staff role. Breached: open, past "
    "respond_by_at and not yet contacted. Oldest wait: the open case not yet contacted that "
    "was received first.",
)
async def list_queues(
    session: SessionDep, actor: StaffDep, clock: ClockDep, ruleset: RulesetDep
) -> QueueOverview:
    now = clock.now()
    counts = await service.queue_overview(session, now=now)
    # The directory's own order (crisis, duty, … then the sites); retired queues last.
    order = {queue.id: index for index, queue in enumerate(ruleset.queues)}
    counts.sort(key=lambda c: (order.get(c.queue.id, len(order)), c.queue.id))
    return QueueOverview(
        as_of=now,
        queues=[
            QueueOverviewItem(
                id=c.queue.id,
                name=c.queue.name,
                kind=c.queue.kind,
                locality_id=c.queue.locality_id,
                active=c.queue.active,
                open_count=c.open_count,
                unallocated_count=c.unallocated_count,
                breached_count=c.breached_count,
                oldest_waiting_since=c.oldest_waiting_since,
                longest_wait_seconds=(
                    max(0, int((now - c.oldest_waiting_since).total_seconds()))
                    if c.oldest_waiting_since
                    else None
                ),
            )
            for c in counts
        ],
    )


async def _refuse(
    session: SessionDep, actor: Actor, queue: QueueRef, action: str, now: datetime, message: str
) -> NoReturn:
    """Audit the refused attempt (written when the request ends), then answer 403."""
    await audit.record_refusal(
        session, actor=actor, action=action, resource_type="queue", resource_id=queue.id, now=now
    )
    raise Forbidden(message)


@router.get(
    "/{queue_id}/cases",
    response_model=WorklistPage,
    responses=errors_for(401, 403, 404, 422),
    summary="A queue's open cases: most urgent first (A before B …), then earliest respond-by",
    description="Keyset pagination: pass next_cursor back as cursor for the next page (null on "
    "the last page). Filters combine (AND). An invalid cursor is a 422 on query:cursor.",
)
async def queue_worklist(
    queue_id: QueueIdPath,
    session: SessionDep,
    actor: StaffDep,
    clock: ClockDep,
    ruleset: RulesetDep,
    limit: Annotated[
        int, Query(ge=1, le=WORKLIST_MAX_LIMIT, description="page size")
    ] = WORKLIST_DEFAULT_LIMIT,
    cursor: Annotated[
        str | None, Query(max_length=512, description="next_cursor from the previous page")
    ] = None,
    status: Annotated[
        list[CaseStatus] | None,
        Query(description="only these open statuses (repeatable; closed cases are not listed)"),
    ] = None,
    allocated: Annotated[
        bool | None, Query(description="true: has a key worker; false: waiting")
    ] = None,
    breached: Annotated[
        bool | None, Query(description="true: past respond_by_at without first contact")
    ] = None,
    key_worker_id: Annotated[
        str | None, Query(max_length=128, description="only cases this worker holds")
    ] = None,
) -> WorklistPage:
    now = clock.now()
    queue = await _queue(session, ruleset, queue_id)
    if not can_see_queue(actor, queue.id, queue.kind):
        await _refuse(session, actor, queue, "list", now, "You do not work this queue.")
    if status and CaseStatus.CLOSED in status:
        raise Unprocessable("A worklist lists open cases only.", field="query:status")
    page = await service.worklist(
        session,
        queue.id,
        now=now,
        limit=limit,
        cursor=_cursor(cursor),
        filters=WorklistFilter(
            statuses=tuple(status or ()),
            allocated=allocated,
            breached=breached,
            key_worker_id=key_worker_id,
        ),
    )
    await audit.record_listing(
        session, actor=actor, rows=page.rows, now=now, details={"queue_id": queue.id}
    )
    return WorklistPage(
        queue_id=queue.id,
        as_of=now,
        limit=limit,
        items=[worklist_item(row, now) for row in page.rows],
        next_cursor=page.next_cursor.encode() if page.next_cursor else None,
    )


def _cursor(value: str | None) -> Cursor | None:
    """The worklist cursor a client sent back, or a 422 naming the query parameter."""
    if value is None:
        return None
    try:
        return Cursor.decode(value)
    except InvalidCursor as exc:
        raise Unprocessable(
            "cursor is not one this service issued; start again without it.",
            field="query:cursor",
        ) from exc


@router.post(
    "/{queue_id}/claim",
    response_model=CaseRead,
    responses={200: {"headers": ETAG_HEADER}, **errors_for(401, 403, 404, 409, 422, 503)},
    summary="Become key worker of the queue's most urgent unallocated case",
    description="Two workers never get the same case: concurrent claims each take a different "
    "one. 409 (type nothing_to_claim) when the queue has no unallocated case; 404 for an "
    "unknown queue; 403 for a queue the caller does not work or a role that does not hold "
    "cases. No body and no If-Match: the claim is on the queue, not on a case version.",
)
async def claim_from_queue(
    queue_id: QueueIdPath,
    session: SessionDep,
    actor: StaffDep,
    clock: ClockDep,
    ruleset: RulesetDep,
    response: Response,
) -> CaseRead:
    now = clock.now()
    queue = await _queue(session, ruleset, queue_id)
    if not can_claim_from_queue(actor, queue.id, queue.kind):
        await _refuse(session, actor, queue, "claim", now, "You cannot claim from this queue.")
    claimed = await claims.claim_next(
        session, queue_id=queue.id, queue_kind=queue.kind, actor=actor, now=now
    )
    response.headers["Location"] = f"/v1/cases/{claimed.case.id}"
    response.headers["ETag"] = etag(claimed.case.version)
    return await case_read(session, claimed, now, ruleset)
