"""signposting stored with the referral; the notifications outbox

Revision ID: d1a0b0c0a004
Revises: d1a0b0c0a003
Create Date: 2026-12-01 22:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base

revision: str = "d1a0b0c0a004"
down_revision: str | None = "d1a0b0c0a003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The vocabularies as they were when this revision was written (app/models/notification.py).
KINDS = ("acknowledgement", "referrer_outcome", "breach_warning")
CHANNELS = ("email", "sms")
STATUSES = ("pending", "sending", "delivered", "failed", "permanent_failure", "not_sent", "sink")


def _known(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN (" + ", ".join(f"'{v}'" for v in values) + ")"


def upgrade() -> None:
    with op.batch_alter_table("referrals") as batch:
        batch.add_column(sa.Column("signposting", app.models.base.JSONType, nullable=True))
        batch.add_column(sa.Column("signposting_version", sa.String(length=96), nullable=True))
    op.create_table(
        "notifications",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("dedupe_key", sa.String(length=160), nullable=False),
        sa.Column("referral_id", sa.Uuid(), nullable=True),
        sa.Column("case_id", sa.Uuid(), nullable=True),
        sa.Column("recipient", sa.String(length=320), nullable=True),
        sa.Column("personalisation", app.models.base.JSONType, nullable=False),
        sa.Column(
            "details", app.models.base.JSONType, server_default=sa.text("'{}'"), nullable=False
        ),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("next_attempt_at", app.models.base.UTCDateTime(), nullable=False),
        sa.Column("claimed_until", app.models.base.UTCDateTime(), nullable=True),
        sa.Column("provider_id", sa.String(length=64), nullable=True),
        sa.Column("provider_status", sa.String(length=32), nullable=True),
        sa.Column("last_error", sa.String(length=300), nullable=True),
        sa.Column("created_at", app.models.base.UTCDateTime(), nullable=False),
        sa.Column("sent_at", app.models.base.UTCDateTime(), nullable=True),
        sa.Column("delivered_at", app.models.base.UTCDateTime(), nullable=True),
        sa.Column("updated_at", app.models.base.UTCDateTime(), nullable=False),
        sa.CheckConstraint(_known("kind", KINDS), name=op.f("ck_notifications_kind_known")),
        sa.CheckConstraint(
            _known("channel", CHANNELS), name=op.f("ck_notifications_channel_known")
        ),
        sa.CheckConstraint(_known("status", STATUSES), name=op.f("ck_notifications_status_known")),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_notifications_attempts_not_negative")),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_notifications_case_id_cases")
        ),
        sa.ForeignKeyConstraint(
            ["referral_id"], ["referrals.id"], name=op.f("fk_notifications_referral_id_referrals")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_notifications_dedupe_key")),
    )
    op.create_index(op.f("ix_notifications_case_id"), "notifications", ["case_id"], unique=False)
    op.create_index(
        op.f("ix_notifications_referral_id"), "notifications", ["referral_id"], unique=False
    )
    op.create_index(
        "ix_notifications_status_due", "notifications", ["status", "next_attempt_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_notifications_status_due", table_name="notifications")
    op.drop_index(op.f("ix_notifications_referral_id"), table_name="notifications")
    op.drop_index(op.f("ix_notifications_case_id"), table_name="notifications")
    op.drop_table("notifications")
    with op.batch_alter_table("referrals") as batch:
        batch.drop_column("signposting_version")
        batch.drop_column("signposting")
