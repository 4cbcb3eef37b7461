"""staff identity and shared rate limits

Revision ID: d1a0b0c0a001
Revises: c104bef0a399
Create Date: 2026-12-01 21:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "d1a0b0c0a001"
down_revision: str | None = "c104bef0a399"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
