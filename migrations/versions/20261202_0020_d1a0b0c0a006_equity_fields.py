"""optional gender and ethnic category recorded at intake

Revision ID: d1a0b0c0a006
Revises: d1a0b0c0a005
Create Date: 2026-12-02 00:20:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d1a0b0c0a006"
down_revision: str | None = "d1a0b0c0a005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# The code lists as they stand in this revision (app/equity.py may grow later; a migration must
# keep describing the schema it made).
GENDER_CODES = ("1", "2", "3", "4", "Z", "X")
ETHNIC_CATEGORY_CODES = (
    *("A", "B", "C", "D", "E", "F", "G", "H", "J", "K", "L", "M", "N", "P", "R", "S"),
    *("Z", "99"),
)


def _in(codes: Sequence[str]) -> str:
    return "(" + ", ".join(f"'{c}'" for c in codes) + ")"


def upgrade() -> None:
    # Nullable, no default: existing referrals were never asked, so they are "not recorded".
    # Batch mode so SQLite can add the check constraints (referrals has no generated column).
    with op.batch_alter_table("referrals") as batch:
        batch.add_column(sa.Column("gender_code", sa.String(length=2), nullable=True))
        batch.add_column(sa.Column("ethnic_category_code", sa.String(length=2), nullable=True))
        batch.create_check_constraint(
            "gender_code_known", "gender_code IS NULL OR gender_code IN " + _in(GENDER_CODES)
        )
        batch.create_check_constraint(
            "ethnic_category_code_known",
            "ethnic_category_code IS NULL OR ethnic_category_code IN " + _in(ETHNIC_CATEGORY_CODES),
        )


def downgrade() -> None:
    with op.batch_alter_table("referrals") as batch:
        batch.drop_constraint("ethnic_category_code_known", type_="check")
        batch.drop_constraint("gender_code_known", type_="check")
        batch.drop_column("ethnic_category_code")
        batch.drop_column("gender_code")
