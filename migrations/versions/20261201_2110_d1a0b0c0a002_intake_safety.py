"""intake safety: unverified self-referrals, person change history, incomplete referrals

Revision ID: d1a0b0c0a002
Revises: d1a0b0c0a001
Create Date: 2026-12-01 21:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "d1a0b0c0a002"
down_revision: str | None = "d1a0b0c0a001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
