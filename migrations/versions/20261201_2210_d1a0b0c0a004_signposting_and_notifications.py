"""signposting stored with the referral

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


def upgrade() -> None:
    with op.batch_alter_table("referrals") as batch:
        batch.add_column(sa.Column("signposting", app.models.base.JSONType, nullable=True))
        batch.add_column(sa.Column("signposting_version", sa.String(length=96), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("referrals") as batch:
        batch.drop_column("signposting_version")
        batch.drop_column("signposting")
