"""optional gender and ethnic category recorded at intake

Revision ID: d1a0b0c0a006
Revises: d1a0b0c0a005
Create Date: 2026-12-02 00:20:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "d1a0b0c0a006"
down_revision: str | None = "d1a0b0c0a005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
