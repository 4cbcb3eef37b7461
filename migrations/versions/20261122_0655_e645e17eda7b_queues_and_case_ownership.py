"""queues and case ownership: supporters, and a NOT NULL sort key for worklists and claiming

Revision ID: e645e17eda7b
Revises: b17813562459
Create Date: 2026-11-22 06:55:25.929740
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base

revision: str = "e645e17eda7b"
down_revision: str | None = "b17813562459"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN = sa.text("status <> 'closed'")
WAITING = sa.text("status = 'waiting'")
# As app.models.case.RESPOND_BY_SORT_EXPRESSION at this revision: "no window" sorts last.
RESPOND_BY_SORT_EXPRESSION = "coalesce(respond_by_at, '9999-12-31 00:00:00.000000')"


def upgrade() -> None:
    op.create_table(
        "case_supporters",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("worker_id", sa.String(length=128), nullable=True),
        sa.Column("team_queue_id", sa.String(length=64), nullable=True),
        sa.Column("role", sa.String(length=100), nullable=True),
        sa.Column("added_by_id", sa.String(length=128), nullable=False),
        sa.Column("added_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("removed_by_id", sa.String(length=128), nullable=True),
        sa.Column("removed_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "(kind = 'worker') = (worker_id IS NOT NULL) "
            "AND (kind = 'team') = (team_queue_id IS NOT NULL)",
            name=op.f("ck_case_supporters_worker_or_team"),
        ),
        sa.CheckConstraint(
            "kind IN ('worker', 'team')", name=op.f("ck_case_supporters_kind_known")
        ),
        sa.CheckConstraint(
            "(removed_at IS NULL) = (removed_by_id IS NULL)",
            name=op.f("ck_case_supporters_removed_with_who"),
        ),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_case_supporters_case_id_cases")
        ),
        sa.ForeignKeyConstraint(
            ["team_queue_id"],
            ["queues.id"],
            name=op.f("fk_case_supporters_team_queue_id_queues"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_supporters")),
    )
    with op.batch_alter_table("case_supporters", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_supporters_case_id"), ["case_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_case_supporters_worker_id"), ["worker_id"], unique=False
        )
        current_team = sa.text("removed_at IS NULL AND kind = 'team'")
        batch_op.create_index(
            "uq_case_supporters_current_team",
            ["case_id", "team_queue_id"],
            unique=True,
            postgresql_where=current_team,
            sqlite_where=current_team,
        )
        current_worker = sa.text("removed_at IS NULL AND kind = 'worker'")
        batch_op.create_index(
            "uq_case_supporters_current_worker",
            ["case_id", "worker_id"],
            unique=True,
            postgresql_where=current_worker,
            sqlite_where=current_worker,
        )

    # PostgreSQL (before 18) only has STORED generated columns; SQLite cannot ADD a STORED one,
    # but a VIRTUAL one can be indexed just the same.
    persisted = op.get_bind().dialect.name != "sqlite"
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "respond_by_sort_at",
                app.models.base.UTCDateTime(timezone=True),
                sa.Computed(RESPOND_BY_SORT_EXPRESSION, persisted=persisted),
                nullable=False,
            )
        )
        # The worklist and claim indexes now end in the NOT NULL sort key (NULLs last on both
        # databases, and keyset row comparisons stay index conditions).
        batch_op.drop_index("ix_cases_open_worklist", postgresql_where=OPEN, sqlite_where=OPEN)
        batch_op.create_index(
            "ix_cases_open_worklist",
            ["queue_id", "urgency_rank", "respond_by_sort_at", "id"],
            unique=False,
            postgresql_where=OPEN,
            sqlite_where=OPEN,
            # The queue overview's counts, read from the index alone (PostgreSQL).
            postgresql_include=["status", "received_at", "respond_by_at", "first_contact_at"],
        )
        batch_op.drop_index("ix_cases_unallocated", postgresql_where=WAITING, sqlite_where=WAITING)
        batch_op.create_index(
            "ix_cases_unallocated",
            ["queue_id", "urgency_rank", "respond_by_sort_at", "id"],
            unique=False,
            postgresql_where=WAITING,
            sqlite_where=WAITING,
        )


def downgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index("ix_cases_unallocated", postgresql_where=WAITING, sqlite_where=WAITING)
        batch_op.drop_index("ix_cases_open_worklist", postgresql_where=OPEN, sqlite_where=OPEN)
        batch_op.drop_column("respond_by_sort_at")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.create_index(
            "ix_cases_unallocated",
            ["queue_id", "urgency_rank", "respond_by_at", "id"],
            unique=False,
            postgresql_where=WAITING,
            sqlite_where=WAITING,
        )
        batch_op.create_index(
            "ix_cases_open_worklist",
            ["queue_id", "urgency_rank", "respond_by_at", "id"],
            unique=False,
            postgresql_where=OPEN,
            sqlite_where=OPEN,
        )

    with op.batch_alter_table("case_supporters", schema=None) as batch_op:
        batch_op.drop_index("uq_case_supporters_current_worker")
        batch_op.drop_index("uq_case_supporters_current_team")
        batch_op.drop_index(batch_op.f("ix_case_supporters_worker_id"))
        batch_op.drop_index(batch_op.f("ix_case_supporters_case_id"))

    op.drop_table("case_supporters")
