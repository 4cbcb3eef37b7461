"""Staff members the service has seen: who a case can be allocated to."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, JSONType


class StaffMember(Base):
    """One staff user, as their last verified token described them (``sub``, ``name``,
    ``role``, ``queues``). Written when a token shows someone new or changed, not on every
    request (``app.services.staff.StaffRegistry``)."""

    __tablename__ = "staff"

    # The token's ``sub``: the identity provider's id for this person.
    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(32))
    queue_ids: Mapped[list[str]] = mapped_column(JSONType)
    first_seen_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
