"""The service directory (queues) and the rulesets that have been in force."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base

QUEUE_KINDS = ("crisis", "duty", "looked_after", "access_hub", "community_base", "one_stop_shop")


class Queue(Base):
    """A team's worklist. Loaded from the ruleset's directory at start-up; never deleted, so
    cases and decisions that name a queue stay meaningful after the directory changes."""

    __tablename__ = "queues"
    __table_args__ = (
        CheckConstraint(
            "kind IN (" + ", ".join(f"'{k}'" for k in QUEUE_KINDS) + ")", name="kind_known"
        ),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    locality_id: Mapped[str | None] = mapped_column(String(64))
    locality_name: Mapped[str | None] = mapped_column(String(200))
    open_24_7: Mapped[bool] = mapped_column(default=False)
    # False when the current directory no longer lists the queue (its open cases still show).
    active: Mapped[bool] = mapped_column(default=True)
    updated_at: Mapped[datetime]


class RulesetRecord(Base):
    """Every ruleset version that has made decisions, with its full content."""

    __tablename__ = "rulesets"

    version: Mapped[str] = mapped_column(String(128), primary_key=True)
    label: Mapped[str] = mapped_column(String(128))
    content: Mapped[dict[str, Any]]
    first_loaded_at: Mapped[datetime]
