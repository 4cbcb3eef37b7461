"""Cases straight into the database, in any state, for queue and case tests.

Going through intake for every case would make the worklist tests slow and hide what they are
about; intake itself (and episodic care) is exercised through the API in tests/test_cases.py.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Case, Person, StaffMember

# The default ruleset's windows (docs/domain/urgency.md): hours from receipt; None = no window.
RESPOND_WITHIN_HOURS: dict[str, int | None] = {
    "A": 0,
    "B": 4,
    "C": 24,
    "D": 72,
    "E": 672,
    "F": None,
    "G": 168,
}
URGENCY_RANK = {"A": 0, "B": 1, "C": 2, "D": 3, "E": 4, "G": 5, "F": 6}
THRIVE = {
    "A": "getting_risk_support",
    "B": "getting_risk_support",
    "C": "getting_risk_support",
    "D": "getting_more_help",
    "E": "getting_help",
    "F": "getting_advice",
    "G": "getting_advice",
}


async def add_case(
    session: AsyncSession,
    *,
    received_at: datetime,
    queue_id: str = "cb-norwich",
    urgency: str = "E",
    status: str = "waiting",
    key_worker_id: str | None = None,
    first_contact_at: datetime | None = None,
    respond_by_at: datetime | str | None = "window",
    given_name: str = "Sam",
    family_name: str = "Testcase",
    **fields: Any,
) -> Case:
    """A person and their case, flushed. ``respond_by_at`` defaults to the urgency's window."""
    if respond_by_at == "window":
        hours = RESPOND_WITHIN_HOURS[urgency]
        respond_by_at = None if hours is None else received_at + timedelta(hours=hours)
    assert not isinstance(respond_by_at, str)
    if status not in ("waiting", "closed") and key_worker_id is None:
        key_worker_id = "user-practitioner"
    if status in ("contacted", "active", "on_hold") and first_contact_at is None:
        first_contact_at = received_at + timedelta(minutes=30)
    person = Person(
        given_name=given_name,
        family_name=family_name,
        given_name_key=given_name.lower(),
        family_name_key=family_name.lower(),
        created_at=received_at,
        updated_at=received_at,
    )
    session.add(person)
    await session.flush()
    case = Case(
        person_id=person.id,
        queue_id=queue_id,
        status=status,
        urgency_code=urgency,
        urgency_rank=URGENCY_RANK[urgency],
        received_at=received_at,
        respond_by_at=respond_by_at,
        first_contact_at=first_contact_at,
        # One attended contact (when any) is both the first and the latest.
        last_contact_at=first_contact_at,
        first_contact_type="assessment" if first_contact_at else None,
        key_worker_id=key_worker_id,
        allocated_at=received_at if key_worker_id else None,
        thrive_grouping_proposed=THRIVE[urgency],
        closed_at=received_at + timedelta(days=1) if status == "closed" else None,
        outcome="returned_to_thriving" if status == "closed" else None,
        version=1,
        created_at=received_at,
        updated_at=received_at,
        **fields,
    )
    session.add(case)
    await session.flush()
    return case


async def add_staff(
    session: AsyncSession,
    staff_id: str,
    role: str = "practitioner",
    queues: tuple[str, ...] = ("cb-norwich",),
    *,
    seen_at: datetime,
) -> StaffMember:
    """A member of staff the service has seen (as a verified token would record them)."""
    member = StaffMember(
        id=staff_id,
        name=None,
        role=role,
        queue_ids=sorted(queues),
        first_seen_at=seen_at,
        last_seen_at=seen_at,
    )
    session.add(member)
    await session.flush()
    return member


def if_match(version: int) -> dict[str, str]:
    return {"If-Match": f'"{version}"'}
