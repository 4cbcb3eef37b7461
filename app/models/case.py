"""A case: the work a key worker holds for a young person, and its append-only timeline."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, new_id

CASE_STATUSES = ("waiting", "allocated", "contacted", "active", "on_hold", "closed")
OPEN_STATUSES = CASE_STATUSES[:-1]


class Case(Base):
    __tablename__ = "cases"
    __table_args__ = (
        CheckConstraint(
            "status IN (" + ", ".join(f"'{s}'" for s in CASE_STATUSES) + ")", name="status_known"
        ),
        CheckConstraint("version >= 1", name="version_positive"),
        CheckConstraint(
            "(status = 'closed') = (closed_at IS NOT NULL)", name="closed_iff_closed_at"
        ),
        CheckConstraint(
            "status = 'waiting' OR status = 'closed' OR key_worker_id IS NOT NULL",
            name="key_worker_once_allocated",
        ),
        # Worklist: open cases of a queue, most urgent first, then earliest respond-by.
        Index(
            "ix_cases_open_worklist",
            "queue_id",
            "urgency_rank",
            "respond_by_at",
            "id",
            postgresql_where=text("status <> 'closed'"),
            sqlite_where=text("status <> 'closed'"),
        ),
        # Claim: the next unallocated case of a queue.
        Index(
            "ix_cases_unallocated",
            "queue_id",
            "urgency_rank",
            "respond_by_at",
            "id",
            postgresql_where=text("status = 'waiting'"),
            sqlite_where=text("status = 'waiting'"),
        ),
        # At most one open case per person (episodic care joins it instead).
        Index(
            "uq_cases_one_open_per_person",
            "person_id",
            unique=True,
            postgresql_where=text("status <> 'closed'"),
            sqlite_where=text("status <> 'closed'"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    person_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("persons.id"))
    queue_id: Mapped[str] = mapped_column(ForeignKey("queues.id"))
    status: Mapped[str] = mapped_column(String(16))
    urgency_code: Mapped[str] = mapped_column(String(1))
    # 0 = A … : sorts most urgent first without a CASE expression.
    urgency_rank: Mapped[int]
    # The waiting clock: starts when the referral is received, stops at first contact.
    received_at: Mapped[datetime]
    respond_by_at: Mapped[datetime | None]
    first_contact_at: Mapped[datetime | None]
    first_contact_type: Mapped[str | None] = mapped_column(String(32))
    key_worker_id: Mapped[str | None] = mapped_column(String(128), index=True)
    allocated_at: Mapped[datetime | None]
    thrive_grouping_proposed: Mapped[str] = mapped_column(String(32))
    thrive_grouping: Mapped[str | None] = mapped_column(String(32))
    thrive_decided_by: Mapped[str | None] = mapped_column(String(128))
    thrive_decided_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(32))
    closed_at: Mapped[datetime | None]
    # Optimistic concurrency: every change bumps it; a stale write is refused.
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class CaseEvent(Base):
    """One entry in a case's timeline: who did what, when and why. Never updated or deleted."""

    __tablename__ = "case_events"
    __table_args__ = (UniqueConstraint("case_id", "seq"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id"))
    seq: Mapped[int]
    type: Mapped[str] = mapped_column(String(48))
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str | None] = mapped_column(String(128))
    actor_role: Mapped[str | None] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str | None] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
