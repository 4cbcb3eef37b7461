"""The audit trail: every create, update and read of person, referral or case data."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, new_id


class AuditEvent(Base):
    """Append-only: written in the same transaction as the action it records; never changed
    (PostgreSQL refuses UPDATE and DELETE with a trigger)."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_person_occurred", "person_id", "occurred_at"),
        Index("ix_audit_events_resource", "resource_type", "resource_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    occurred_at: Mapped[datetime]
    request_id: Mapped[str | None] = mapped_column(String(64))
    actor_kind: Mapped[str] = mapped_column(String(16))  # staff | system | public
    actor_id: Mapped[str | None] = mapped_column(String(128))
    actor_role: Mapped[str | None] = mapped_column(String(32))
    actor_organisation: Mapped[str | None] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(32))  # create | read | update | search | ...
    resource_type: Mapped[str] = mapped_column(String(32))  # person | referral | case | ...
    resource_id: Mapped[str | None] = mapped_column(String(64))
    person_id: Mapped[uuid.UUID | None]
    outcome: Mapped[str] = mapped_column(String(16))  # success | denied | not_found
    # Ids and codes only: never names, NHS numbers, dates of birth or free text.
    details: Mapped[dict[str, Any]]
