"""Claiming: the caller becomes key worker of a queue's most urgent unallocated case.

Two workers never get the same case. The claim is a case change like any other (the lifecycle's
``CaseAction.CLAIM``): the same status, timeline event and audit row whichever path makes it.

- SQLite, and PostgreSQL when asked (``one_statement=False``): the claim SELECT below, then
  ``cases.assign_key_worker`` — the ORM change, its event and audit row, flushed at the commit.
  On SQLite every transaction begins IMMEDIATE (app.db), so claimers are serialised.
- PostgreSQL: the whole claim as one statement (``CLAIM_STATEMENT_POSTGRESQL``), built from the
  same parts as the ORM path: the target status from ``TRANSITIONS``, the event type from
  ``KEY_WORKER_EVENTS``, the event data from ``key_worker_change_data`` and the audit details
  from ``transition_audit_details``, each called with column expressions instead of values.
  It halves a claim's server CPU (bench/RESULTS.md, "What changed the claim"), which is what
  keeps the claim p99 under its 30 ms target with 20 concurrent workers.
  tests/test_claim_concurrency.py runs both paths on one PostgreSQL database and compares the
  rows they write.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, cast

import structlog
from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    Table,
    bindparam,
    func,
    insert,
    literal_column,
    null,
    select,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.errors import Conflict
from app.models import AuditEvent, Case, CaseEvent, Person, Referral, TriageDecision
from app.models.base import new_id
from app.security import Actor
from app.services import audit
from app.services.cases import (
    CASE_REFERRAL_COLUMNS,
    KEY_WORKER_EVENTS,
    CaseAction,
    CaseContext,
    CaseReferral,
    Status,
    assign_key_worker,
    key_worker_change_data,
    next_status,
    transition_audit_details,
)
from app.services.queues import WORKLIST_ORDER, sql_constant

CASES = cast(Table, Case.__table__)
CASE_EVENTS = cast(Table, CaseEvent.__table__)
AUDIT_EVENTS = cast(Table, AuditEvent.__table__)

WAITING_SQL = sql_constant(Status.WAITING.value)
# What a claim makes a waiting case, from the lifecycle table.
CLAIMED_SQL = sql_constant(next_status(Status.WAITING, CaseAction.CLAIM).value)


class NothingToClaim(Conflict):
    type = "nothing_to_claim"
    title = "No unallocated case to claim"


def claim_statement() -> Select[*tuple[Any, ...]]:
    """The next unallocated case of the queue ``:queue_id``, locked, with its person and
    referrals: what the claim's response shows, in one round trip.

    The inner SELECT walks ix_cases_unallocated and locks the first row no other claimer holds
    (``FOR UPDATE SKIP LOCKED``); it returns that row as locked, i.e. its latest committed
    version, and every case column is read from it. The person and the referrals (one row per
    referral) are joined outside it, so only the case row is locked.

    Built once (``CLAIM_STATEMENT``), the queue a bound parameter: building this statement costs
    more CPU than the database takes to run it.
    """
    next_case = (
        select(Case)
        .where(Case.queue_id == bindparam("queue_id"), Case.status == WAITING_SQL)
        .order_by(*WORKLIST_ORDER)
        .limit(literal_column("1"))  # a constant too: the cached plan is costed for one row
        .with_for_update(skip_locked=True)
        .subquery("next_case")
    )
    claimed = aliased(Case, next_case)
    return (
        select(claimed, Person, *CASE_REFERRAL_COLUMNS)
        .join(Person, Person.id == claimed.person_id)
        .outerjoin(Referral, Referral.case_id == claimed.id)
        .outerjoin(TriageDecision, TriageDecision.referral_id == Referral.id)
        .execution_options(populate_existing=True)
    )


CLAIM_STATEMENT = claim_statement()


def json_object(values: Mapping[str, ColumnElement[Any]]) -> ColumnElement[Any]:
    """``jsonb_build_object`` of a dict whose keys are ours (SQL constants) and whose values
    are column expressions: the SQL twin of the dict the ORM path writes."""
    arguments: list[Any] = []
    for key, value in values.items():
        arguments += [sql_constant(key), value]
    return func.jsonb_build_object(*arguments)


def claim_statement_postgresql() -> Select[*tuple[Any, ...]]:
    """The whole claim as one PostgreSQL statement: lock the next unallocated case, allocate it,
    append its timeline event and audit row, and return it with its person and referrals.

    ``next_case`` locks the row with ``FOR UPDATE SKIP LOCKED`` (a row another claimer holds is
    passed over; one that changed since the snapshot is re-checked against the WHERE and
    skipped if no longer waiting); ``claimed`` updates that locked row; the event and audit
    INSERTs read the updated row, so they carry its new version and timeline seq.

    Parameters are named ``claim_*``: an UPDATE takes any execution parameter named like one of
    its table's columns as one more SET value.
    """
    now = bindparam("claim_now", type_=CASES.c.updated_at.type)
    next_case = (
        select(CASES.c.id, CASES.c.key_worker_id, CASES.c.status)
        .where(CASES.c.queue_id == bindparam("claim_queue_id"), CASES.c.status == WAITING_SQL)
        .order_by(*WORKLIST_ORDER)
        .limit(literal_column("1"))
        .with_for_update(skip_locked=True)
        .cte("next_case")
    )
    claimed = (
        update(CASES)
        .where(CASES.c.id == next_case.c.id)
        .values(
            status=CLAIMED_SQL,
            key_worker_id=bindparam("claim_key_worker_id", type_=CASES.c.key_worker_id.type),
            allocated_at=now,
            version=CASES.c.version + literal_column("1"),
            last_event_seq=CASES.c.last_event_seq + literal_column("1"),
            updated_at=now,
        )
        .returning(*CASES.c)
        .cte("claimed")
    )
    from_claimed = claimed.join(next_case, next_case.c.id == claimed.c.id)
    actor_kind = bindparam("claim_actor_kind", type_=String)
    actor_id = bindparam("claim_actor_id", type_=String)
    actor_role = bindparam("claim_actor_role", type_=String)
    event = insert(CASE_EVENTS).from_select(
        [
            "id",
            "case_id",
            "seq",
            "type",
            "actor_kind",
            "actor_id",
            "actor_role",
            "from_status",
            "to_status",
            "reason",
            "data",
            "created_at",
        ],
        select(
            bindparam("claim_event_id", type_=CASE_EVENTS.c.id.type),
            claimed.c.id,
            claimed.c.last_event_seq,
            sql_constant(KEY_WORKER_EVENTS[CaseAction.CLAIM]),
            actor_kind,
            actor_id,
            actor_role,
            next_case.c.status,
            claimed.c.status,
            null(),
            json_object(key_worker_change_data(next_case.c.key_worker_id, claimed.c.key_worker_id)),
            now,
        ).select_from(from_claimed),
    )
    audit_row = insert(AUDIT_EVENTS).from_select(
        audit.AUDIT_INSERT_COLUMNS,
        select(
            bindparam("claim_audit_id", type_=AUDIT_EVENTS.c.id.type),
            now,
            bindparam("claim_request_id", type_=String),
            actor_kind,
            actor_id,
            actor_role,
            bindparam("claim_actor_organisation", type_=String),
            sql_constant(CaseAction.CLAIM.value),
            sql_constant("case"),
            sql_cast(claimed.c.id, String),
            claimed.c.person_id,
            sql_constant(audit.SUCCESS),
            json_object(
                transition_audit_details(next_case.c.status, claimed.c.status, claimed.c.version)
            ),
        ).select_from(from_claimed),
    )
    claimed_case = aliased(Case, claimed)
    return (
        select(claimed_case, Person, *CASE_REFERRAL_COLUMNS)
        .add_cte(event.cte("claim_event"), audit_row.cte("claim_audit"))
        .join(Person, Person.id == claimed_case.person_id)
        .outerjoin(Referral, Referral.case_id == claimed_case.id)
        .outerjoin(TriageDecision, TriageDecision.referral_id == Referral.id)
        .execution_options(populate_existing=True)
    )


CLAIM_STATEMENT_POSTGRESQL = claim_statement_postgresql()


async def claim_next(
    session: AsyncSession,
    *,
    queue_id: str,
    queue_kind: str,
    actor: Actor,
    now: datetime,
    one_statement: bool | None = None,
) -> CaseContext:
    """Make ``actor`` key worker of the queue's most urgent unallocated case (409 when none).

    ``one_statement``: None chooses by database (PostgreSQL: the one statement); False forces
    the ORM path (the comparison test).
    """
    assert actor.id is not None  # staff always carry a subject
    on_postgresql = session.get_bind().dialect.name == "postgresql"
    use_statement = on_postgresql if one_statement is None else one_statement and on_postgresql
    if use_statement:
        rows = (
            await session.execute(
                CLAIM_STATEMENT_POSTGRESQL,
                {
                    "claim_queue_id": queue_id,
                    "claim_key_worker_id": actor.id,
                    "claim_now": now,
                    "claim_event_id": new_id(),
                    "claim_audit_id": new_id(),
                    "claim_request_id": structlog.contextvars.get_contextvars().get("request_id"),
                    "claim_actor_kind": actor.kind,
                    "claim_actor_id": actor.id,
                    "claim_actor_role": actor.role,
                    "claim_actor_organisation": actor.ods_code,
                },
            )
        ).all()
    else:
        rows = (await session.execute(CLAIM_STATEMENT, {"queue_id": queue_id})).all()
    if not rows:
        raise NothingToClaim("This queue has no unallocated case to claim.", queue_id=queue_id)
    case, person = rows[0][0], rows[0][1]
    referrals = sorted(
        (CaseReferral(*row[2:]) for row in rows if row[2] is not None),
        key=lambda referral: (referral.received_at, referral.id),
    )
    claimed = CaseContext(case=case, queue_kind=queue_kind, person=person, referrals=referrals)
    if not use_statement:  # the statement made the change itself
        await assign_key_worker(
            session,
            claimed,
            actor=actor,
            key_worker_id=actor.id,
            action=CaseAction.CLAIM,
            now=now,
        )
    return claimed
