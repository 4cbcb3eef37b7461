"""The service directory (queues) and the rulesets that have been in force."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, String, Text
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
    """Every stored ruleset version (published, or loaded at start-up), with its full content.

    A version is derived from the content, so a row never changes: publishing the same content
    again finds this row. ``source_yaml`` is the text as published (None for versions stored
    before rulesets were published through the API); ``content`` is what the version hashes and
    what is loaded. ``first_loaded_at`` is when it was first stored, ``published_by`` by whom.
    """

    __tablename__ = "rulesets"

    version: Mapped[str] = mapped_column(String(128), primary_key=True)
    label: Mapped[str] = mapped_column(String(128))
    content: Mapped[dict[str, Any]]
    first_loaded_at: Mapped[datetime]
    source_yaml: Mapped[str | None] = mapped_column(Text)
    published_by: Mapped[str | None] = mapped_column(String(200))


class RulesetActivation(Base):
    """One switch of the live ruleset, append-only: the row with the highest ``seq`` names the
    version every process uses now (docs/domain/changing-rules.md).

    ``seq`` is the previous row's + 1 and the primary key, so two activations racing from the
    same state cannot both be written: one fails and is retried or refused, and the history
    stays one chain (each row's ``from_version`` is the previous row's ``to_version``).
    """

    __tablename__ = "ruleset_activations"

    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    to_version: Mapped[str] = mapped_column(String(128), ForeignKey("rulesets.version"))
    from_version: Mapped[str | None] = mapped_column(String(128), ForeignKey("rulesets.version"))
    activated_by: Mapped[str] = mapped_column(String(200))
    activated_at: Mapped[datetime]
