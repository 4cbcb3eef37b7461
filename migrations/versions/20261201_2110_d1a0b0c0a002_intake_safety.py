"""intake safety: unverified self-referrals, person change history, incomplete referrals

Revision ID: d1a0b0c0a002
Revises: d1a0b0c0a001
Create Date: 2026-12-01 21:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base

revision: str = "d1a0b0c0a002"
down_revision: str | None = "d1a0b0c0a001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "persons",
        sa.Column("verified", sa.Boolean(), server_default=sa.true(), nullable=False),
    )
    op.add_column("persons", sa.Column("claimed_nhs_number", sa.String(length=10), nullable=True))
    op.create_index(
        op.f("ix_persons_claimed_nhs_number"), "persons", ["claimed_nhs_number"], unique=False
    )
    with op.batch_alter_table("referrals") as batch:
        batch.add_column(
            sa.Column(
                "incomplete_fields",
                app.models.base.JSONType,
                server_default=sa.text("'[]'"),
                nullable=False,
            )
        )
        batch.add_column(sa.Column("proposed_person_id", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("person_link", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("person_link_decided_by", sa.String(length=128), nullable=True))
        batch.add_column(
            sa.Column("person_link_decided_at", app.models.base.UTCDateTime(), nullable=True)
        )
        batch.create_foreign_key(
            op.f("fk_referrals_proposed_person_id_persons"),
            "persons",
            ["proposed_person_id"],
            ["id"],
        )
        batch.create_index(
            op.f("ix_referrals_proposed_person_id"), ["proposed_person_id"], unique=False
        )
        batch.create_check_constraint(
            "person_link_known",
            "person_link IS NULL OR person_link IN ('proposed', 'confirmed', 'rejected')",
        )
        batch.create_check_constraint(
            "person_link_has_person", "(person_link IS NULL) = (proposed_person_id IS NULL)"
        )
    op.create_table(
        "person_changes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("referral_id", sa.Uuid(), nullable=True),
        sa.Column("field", sa.String(length=32), nullable=False),
        sa.Column("old_value", sa.String(length=254), nullable=True),
        sa.Column("new_value", sa.String(length=254), nullable=True),
        sa.Column("changed_by_kind", sa.String(length=16), nullable=False),
        sa.Column("changed_by_id", sa.String(length=128), nullable=True),
        sa.Column("changed_at", app.models.base.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"], ["persons.id"], name=op.f("fk_person_changes_person_id_persons")
        ),
        sa.ForeignKeyConstraint(
            ["referral_id"],
            ["referrals.id"],
            name=op.f("fk_person_changes_referral_id_referrals"),
            initially="DEFERRED",
            deferrable=True,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_person_changes")),
    )
    op.create_index(
        "ix_person_changes_person_changed",
        "person_changes",
        ["person_id", "changed_at"],
        unique=False,
    )
    # Append-only, like the audit trail: a record's history is never rewritten.
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE TRIGGER person_changes_append_only BEFORE UPDATE OR DELETE ON person_changes "
            "FOR EACH ROW EXECUTE FUNCTION frontdoor_forbid_change()"
        )
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER person_changes_no_{verb.lower()} BEFORE {verb} ON person_changes "
                "BEGIN SELECT RAISE(ABORT, 'table person_changes is append-only'); END"
            )


def downgrade() -> None:
    op.drop_index("ix_person_changes_person_changed", table_name="person_changes")
    op.drop_table("person_changes")
    with op.batch_alter_table("referrals") as batch:
        batch.drop_constraint("person_link_has_person", type_="check")
        batch.drop_constraint("person_link_known", type_="check")
        batch.drop_index(op.f("ix_referrals_proposed_person_id"))
        batch.drop_constraint(op.f("fk_referrals_proposed_person_id_persons"), type_="foreignkey")
        batch.drop_column("person_link_decided_at")
        batch.drop_column("person_link_decided_by")
        batch.drop_column("person_link")
        batch.drop_column("proposed_person_id")
        batch.drop_column("incomplete_fields")
    op.drop_index(op.f("ix_persons_claimed_nhs_number"), table_name="persons")
    op.drop_column("persons", "claimed_nhs_number")
    op.drop_column("persons", "verified")
