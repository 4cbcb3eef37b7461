"""The staff members the service has seen, and who may hold or support a case.

A staff member is recorded (``staff`` table) from their verified token: id (``sub``), name, role
and queues, with when they were first and last seen. Cheaply: the row is written when this
process has not written it yet, when the token describes them differently (a new name, role or
queues), or at most every ``LAST_SEEN_REFRESH_SECONDS`` to keep ``last_seen_at`` roughly right;
never on every request. The write is a single upsert in a short transaction of its own, so a
request that fails still records who made it, and no request waits on another's row lock.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from datetime import datetime

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.authz import CASE_READER_ROLES, can_claim_from_queue
from app.db import insert_on_conflict
from app.errors import Unprocessable
from app.models import StaffMember
from app.security import Actor

log = structlog.get_logger(__name__)

LAST_SEEN_REFRESH_SECONDS = 15 * 60.0
MAX_REMEMBERED_STAFF = 10_000

_Description = tuple[str | None, str | None, tuple[str, ...]]


def _describe(actor: Actor) -> _Description:
    return (actor.name, actor.role, tuple(sorted(actor.queue_ids)))


class StaffRegistry:
    """Records staff as their tokens are verified; remembers, per process, what it wrote."""

    def __init__(self) -> None:
        # staff id -> (what was written, when: time.monotonic())
        self._written: dict[str, tuple[_Description, float]] = {}

    async def seen(
        self, session_factory: async_sessionmaker[AsyncSession], actor: Actor, now: datetime
    ) -> None:
        """Record ``actor`` (staff) unless this process wrote the same description lately."""
        if not actor.is_staff or actor.id is None or actor.role is None:
            return
        description = _describe(actor)
        remembered = self._written.get(actor.id)
        if (
            remembered is not None
            and remembered[0] == description
            and time.monotonic() - remembered[1] < LAST_SEEN_REFRESH_SECONDS
        ):
            return
        async with session_factory() as session:
            table = StaffMember.__table__
            queue_ids = list(description[2])
            statement = (
                insert_on_conflict(session, table)
                .values(
                    id=actor.id,
                    name=actor.name,
                    role=actor.role,
                    queue_ids=queue_ids,
                    first_seen_at=now,
                    last_seen_at=now,
                )
                .on_conflict_do_update(
                    index_elements=[table.c.id],
                    set_={
                        "name": actor.name,
                        "role": actor.role,
                        "queue_ids": queue_ids,
                        "last_seen_at": now,
                    },
                )
            )
            await session.execute(statement)
            await session.commit()
        if len(self._written) >= MAX_REMEMBERED_STAFF:
            self._written.clear()
        self._written[actor.id] = (description, time.monotonic())
        if remembered is None or remembered[0] != description:
            log.info("staff_recorded", staff_id=actor.id, role=actor.role)


def as_actor(member: StaffMember) -> Actor:
    """The staff member as the access rules see them."""
    return Actor(
        kind="staff",
        id=member.id,
        role=member.role,
        name=member.name,
        queue_ids=frozenset(member.queue_ids or []),
    )


async def ensure_can_hold(
    session: AsyncSession, worker_id: str, *, queue_id: str, queue_kind: str, field: str
) -> None:
    """422 on ``field`` unless ``worker_id`` is a known worker whose role holds cases in the
    queue: a practitioner or team lead of the queue, a duty clinician of it or of any crisis or
    duty queue (the roles that may claim from it). Never a call handler or an admin."""
    member = await session.get(StaffMember, worker_id)
    if member is None:
        raise Unprocessable(
            "No known member of staff has this id (they appear once they have signed in).",
            field=field,
        )
    if not can_claim_from_queue(as_actor(member), queue_id, queue_kind):
        raise Unprocessable(
            "This member of staff does not hold cases in this case's queue.", field=field
        )


async def ensure_can_support(session: AsyncSession, worker_id: str, *, field: str) -> None:
    """422 on ``field`` unless ``worker_id`` is a known member of staff who works with cases
    (a practitioner, duty clinician, team lead or admin; not a call handler)."""
    member = await session.get(StaffMember, worker_id)
    if member is None:
        raise Unprocessable(
            "No known member of staff has this id (they appear once they have signed in).",
            field=field,
        )
    if member.role not in CASE_READER_ROLES:
        raise Unprocessable("This member of staff does not work with cases.", field=field)


async def staff_names(session: AsyncSession, staff_ids: Collection[str]) -> dict[str, str]:
    """The names of staff members by id, from the staff the service has seen (a worker not seen
    yet, or seen without a name, is left out: callers show the id)."""
    if not staff_ids:
        return {}
    rows = await session.execute(
        select(StaffMember.id, StaffMember.name).where(StaffMember.id.in_(set(staff_ids)))
    )
    return {staff_id: name for staff_id, name in rows.all() if name}
