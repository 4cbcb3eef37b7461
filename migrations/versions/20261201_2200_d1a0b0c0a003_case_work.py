"""case work: clinical review, urgency re-grades, contact
records, outcome vocabulary

Revision ID: d1a0b0c0a003
Revises: d1a0b0c0a002
Create Date: 2026-12-01 22:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base

revision: str = "d1a0b0c0a003"
down_revision: str | None = "d1a0b0c0a002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The vocabularies as they were when this revision was written (app/models/case.py); a
# migration never follows later code.
OUTCOMES = (
    "returned_to_thriving",
    "signposted",
    "adult_handover",
    "moved_to_adult_services",
    "transferred_to_specialist",
    "moved_out_of_area",
    "declined",
    "not_contactable",
)
REVIEWS = ("accept", "signpost", "adult_handover")
MECHANISMS = ("face_to_face", "telephone", "video", "text", "email")
ATTENDANCE = ("attended", "did_not_attend", "cancelled_by_patient", "cancelled_by_service")
WITH = ("young_person", "parent_carer", "professional")
SOURCES = ("regrade", "referral")


def _in(column: str, values: Sequence[str], *, nullable: bool = False) -> str:
    check = f"{column} IN ({', '.join(repr(v) for v in values)})"
    return f"{column} IS NULL OR {check}" if nullable else check


CASE_CHECKS = {
    "outcome_known": _in("outcome", OUTCOMES, nullable=True),
    "review_known": _in("eligibility_review", REVIEWS, nullable=True),
    "review_with_who": (
        "(eligibility_reviewed_at IS NULL) = (eligibility_reviewed_by IS NULL) "
        "AND (eligibility_reviewed_at IS NULL) = (eligibility_review IS NULL)"
    ),
    "dna_count_positive": "did_not_attend_count >= 0",
    "second_after_first": "second_contact_at IS NULL OR first_contact_at IS NOT NULL",
}


def upgrade() -> None:
    # Plain ADD COLUMNs: batch mode would copy the table, which SQLite refuses for its generated
    # respond_by_sort_at column. SQLite cannot add a constraint to an existing table, so there
    # the new CHECKs travel with their columns and the outcome CHECK is PostgreSQL's alone.
    sqlite = op.get_bind().dialect.name == "sqlite"
    add = op.add_column
    add("cases", sa.Column("second_contact_at", app.models.base.UTCDateTime(), nullable=True))
    add(
        "cases",
        sa.Column(
            "did_not_attend_count", sa.Integer(), server_default=sa.text("0"), nullable=False
        ),
    )
    add("cases", sa.Column("eligibility_review", sa.String(length=16), nullable=True))
    add("cases", sa.Column("eligibility_reviewed_by", sa.String(length=128), nullable=True))
    add(
        "cases",
        sa.Column("eligibility_reviewed_at", app.models.base.UTCDateTime(), nullable=True),
    )
    add("cases", sa.Column("eligibility_reason", sa.Text(), nullable=True))
    if not sqlite:
        for name, condition in CASE_CHECKS.items():
            op.create_check_constraint(name, "cases", condition)
    # A contact record for each first contact already recorded, so counts start complete.
    op.create_table(
        "case_contacts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("occurred_at", app.models.base.UTCDateTime(), nullable=False),
        sa.Column("mechanism", sa.String(length=16), nullable=True),
        sa.Column("attendance", sa.String(length=24), nullable=False),
        sa.Column("with_whom", sa.String(length=16), nullable=False),
        sa.Column("contact_type", sa.String(length=32), nullable=True),
        sa.Column("recorded_by_id", sa.String(length=128), nullable=False),
        sa.Column("recorded_at", app.models.base.UTCDateTime(), nullable=False),
        sa.CheckConstraint(_in("mechanism", MECHANISMS, nullable=True), name="mechanism_known"),
        sa.CheckConstraint(_in("attendance", ATTENDANCE), name="attendance_known"),
        sa.CheckConstraint(_in("with_whom", WITH), name="with_known"),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_case_contacts_case_id_cases")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_contacts")),
    )
    op.create_index(
        "ix_case_contacts_case_id_occurred_at", "case_contacts", ["case_id", "occurred_at"]
    )
    op.create_table(
        "case_urgency_changes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("engine_code", sa.String(length=1), nullable=False),
        sa.Column("from_code", sa.String(length=1), nullable=False),
        sa.Column("to_code", sa.String(length=1), nullable=False),
        sa.Column("from_respond_by_at", app.models.base.UTCDateTime(), nullable=True),
        sa.Column("to_respond_by_at", app.models.base.UTCDateTime(), nullable=True),
        sa.Column("from_queue_id", sa.String(length=64), nullable=False),
        sa.Column("to_queue_id", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("changed_by_id", sa.String(length=128), nullable=True),
        sa.Column("changed_by_role", sa.String(length=32), nullable=True),
        sa.Column("changed_at", app.models.base.UTCDateTime(), nullable=False),
        sa.CheckConstraint(_in("source", SOURCES), name="source_known"),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_case_urgency_changes_case_id_cases")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_urgency_changes")),
    )
    op.create_index(
        "ix_case_urgency_changes_case_id_changed_at",
        "case_urgency_changes",
        ["case_id", "changed_at"],
    )
    op.execute(
        "INSERT INTO case_contacts (id, case_id, occurred_at, mechanism, attendance, with_whom,"
        " contact_type, recorded_by_id, recorded_at)"
        " SELECT id, id, first_contact_at, NULL, 'attended', 'young_person', first_contact_type,"
        " coalesce(key_worker_id, 'unknown'), first_contact_at"
        " FROM cases WHERE first_contact_at IS NOT NULL"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        for name in CASE_CHECKS:
            op.drop_constraint(name, "cases", type_="check")
    for column in (
        "eligibility_reason",
        "eligibility_reviewed_at",
        "eligibility_reviewed_by",
        "eligibility_review",
        "did_not_attend_count",
        "second_contact_at",
    ):
        op.drop_column("cases", column)
    op.drop_index("ix_case_urgency_changes_case_id_changed_at", table_name="case_urgency_changes")
    op.drop_table("case_urgency_changes")
    op.drop_index("ix_case_contacts_case_id_occurred_at", table_name="case_contacts")
    op.drop_table("case_contacts")
