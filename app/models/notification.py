"""The outbox: every message the service owes someone, written in the transaction that caused it.

A delivery worker (``app/worker.py``) claims due rows, sends them through GOV.UK Notify (or the
local sink) and records what happened (docs/domain/signposting-and-messages.md).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, JSONType, new_id
from app.models.case import Case
from app.models.referral import Referral

NOTIFICATION_KINDS = ("acknowledgement", "referrer_outcome", "breach_warning")
NOTIFICATION_CHANNELS = ("email", "sms")
NOTIFICATION_STATUSES = (
    "pending",
    "sending",
    "delivered",
    "failed",
    "permanent_failure",
    "not_sent",
    "sink",
)
# Statuses after which nothing more happens unless an admin retries.
FINAL_STATUSES = frozenset({"delivered", "failed", "permanent_failure", "not_sent", "sink"})


def _known(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN (" + ", ".join(f"'{v}'" for v in values) + ")"


class Notification(Base):
    """One message: whom, how, what it says, and every step of its delivery."""

    __tablename__ = "notifications"
    __table_args__ = (
        CheckConstraint(_known("kind", NOTIFICATION_KINDS), name="kind_known"),
        CheckConstraint(_known("channel", NOTIFICATION_CHANNELS), name="channel_known"),
        CheckConstraint(_known("status", NOTIFICATION_STATUSES), name="status_known"),
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        # What the worker claims: due messages in order.
        Index("ix_notifications_status_due", "status", "next_attempt_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(24))
    channel: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(24))
    # One message per cause: a repeated enqueue of the same cause is a no-op.
    dedupe_key: Mapped[str] = mapped_column(String(160), unique=True)
    referral_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("referrals.id"), index=True)
    case_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("cases.id"), index=True)
    # The email address or phone number (personal data: never logged, masked when shown).
    # Null when nobody may be contacted this way (the message is then not_sent, with a reason).
    recipient: Mapped[str | None] = mapped_column(String(320))
    # What is sent: Notify's template is chosen by kind and channel at send time; these are the
    # template's personalisation fields (plain words, no clinical detail by SMS).
    personalisation: Mapped[dict[str, Any]]
    # What the worker checks before sending, never sent (e.g. the respond-by time warned about).
    details: Mapped[dict[str, Any]] = mapped_column(
        JSONType, default=dict, server_default=text("'{}'")
    )
    attempts: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    next_attempt_at: Mapped[datetime]
    # A worker's claim: nobody else touches the row until this passes (a crashed worker's
    # claim lapses, and the next worker asks Notify before sending again).
    claimed_until: Mapped[datetime | None]
    provider_id: Mapped[str | None] = mapped_column(String(64))
    provider_status: Mapped[str | None] = mapped_column(String(32))
    # Why the last attempt did not succeed: a status code and Notify's error class, never data.
    last_error: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]

    # Only so the unit of work inserts a message after the referral and case it is about (all
    # written in one flush at intake); never loaded.
    referral: Mapped[Referral | None] = relationship(lazy="raise", viewonly=False)
    case: Mapped[Case | None] = relationship(lazy="raise", viewonly=False)
