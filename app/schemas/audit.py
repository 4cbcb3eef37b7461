"""The audit trail as admins read it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class AuditEventRead(BaseModel):
    """One access to or change of person, referral or case data (ids and codes only)."""

    id: uuid.UUID
    occurred_at: datetime
    request_id: str | None
    actor_kind: str = Field(description="staff | system | public")
    actor_id: str | None
    actor_role: str | None
    actor_organisation: str | None = Field(description="ODS code the actor acts for")
    action: str = Field(description="create | read | update | search | ...")
    resource_type: str = Field(description="person | referral | case | audit | ...")
    resource_id: str | None
    person_id: uuid.UUID | None
    outcome: str = Field(description="success | denied")
    details: dict[str, Any]


class AuditPage(BaseModel):
    events: list[AuditEventRead] = Field(description="newest first")
    next_cursor: str | None = Field(
        description="pass as `before` for the next (older) page; null on the last page"
    )
