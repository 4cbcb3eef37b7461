"""report speed

Schema support for the reports at a million referrals (see docs/domain/reporting.md).
Placeholder: no schema change yet; filled in by the reports-speed work.

Revision ID: d1a0b0c0a008
Revises: d1a0b0c0a007
Create Date: 2026-12-02 01:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "d1a0b0c0a008"
down_revision: str | None = "d1a0b0c0a007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
