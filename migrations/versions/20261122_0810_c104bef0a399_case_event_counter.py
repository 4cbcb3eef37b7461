"""case event counter: cases.last_event_seq, so appending a timeline event needs no max(seq) query

Revision ID: c104bef0a399
Revises: e645e17eda7b
Create Date: 2026-11-22 08:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c104bef0a399"
down_revision: str | None = "e645e17eda7b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A constant default: PostgreSQL adds the column without rewriting the table.
    op.add_column(
        "cases",
        sa.Column("last_event_seq", sa.Integer(), server_default=sa.text("0"), nullable=False),
    )
    # Existing timelines: the counter starts at each case's latest seq (an index probe per case
    # on uq_case_events_case_id; cases with no events keep 0).
    op.execute(
        "UPDATE cases SET last_event_seq = "
        "(SELECT max(seq) FROM case_events WHERE case_events.case_id = cases.id) "
        "WHERE EXISTS (SELECT 1 FROM case_events WHERE case_events.case_id = cases.id)"
    )


def downgrade() -> None:
    # A plain DROP COLUMN (SQLite ≥ 3.35 too): batch mode would copy the table, which SQLite
    # refuses for its generated respond_by_sort_at column.
    op.drop_column("cases", "last_event_seq")
