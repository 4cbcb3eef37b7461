"""reporting columns and indexes

Each referral carries, copied from its triage decision, what the reports group by and the
decision keeps only inside its JSON output: age in years on the received date, the locality,
the MHSDS source of referral code and the eligibility rule that decided. Existing referrals are
back-filled from ``triage_decisions.output``. Indexes: referrals and cases by received date
and decisions by referral, each carrying the columns the reports read, and attended contacts by
date (the CYP access measures).
See docs/domain/reporting.md.

Revision ID: d1a0b0c0a007
Revises: d1a0b0c0a006
Create Date: 2026-12-02 00:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d1a0b0c0a007"
down_revision: str | None = "d1a0b0c0a006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Each new column from the decision's JSON output (the same paths on both databases).
_BACKFILL_POSTGRESQL = """
UPDATE referrals AS r SET
    age_years = (d.output ->> 'age_years')::smallint,
    locality_id = d.output ->> 'locality_id',
    source_of_referral_code = d.output -> 'codes' ->> 'source_of_referral',
    eligibility_rule = d.output -> 'eligibility' -> 'reasons' -> 0 ->> 'rule'
FROM triage_decisions AS d
WHERE d.referral_id = r.id
"""
_BACKFILL_SQLITE = """
UPDATE referrals SET
    age_years = d.age_years,
    locality_id = d.locality_id,
    source_of_referral_code = d.source_of_referral_code,
    eligibility_rule = d.eligibility_rule
FROM (
    SELECT
        referral_id,
        json_extract(output, '$.age_years') AS age_years,
        json_extract(output, '$.locality_id') AS locality_id,
        json_extract(output, '$.codes.source_of_referral') AS source_of_referral_code,
        json_extract(output, '$.eligibility.reasons[0].rule') AS eligibility_rule
    FROM triage_decisions
) AS d
WHERE d.referral_id = referrals.id
"""


# The reports' indexes: the period column first, then what the reports group and join by, so a
# report reads the index alone (an index-only scan on PostgreSQL), never the wide rows. Written
# out here (not imported from the models): a migration describes the schema of its revision.
REFERRAL_REPORT_INDEX = (
    "received_at",
    "channel",
    "referrer_type",
    "source_of_referral_code",
    "eligibility_rule",
    "locality_id",
    "age_years",
    "gender_code",
    "ethnic_category_code",
    "disposition",
    "case_id",
    "id",
)
DECISION_REPORT_INDEX = (
    "referral_id",
    "eligibility_outcome",
    "urgency_code",
    "thrive_grouping",
    "route_kind",
    "queue_id",
)
CASE_REPORT_INDEX = (
    "received_at",
    "queue_id",
    "status",
    "respond_by_at",
    "first_contact_at",
    "second_contact_at",
    "closed_at",
    "thrive_grouping_proposed",
    "thrive_grouping",
    "person_id",
    "id",
)


def upgrade() -> None:
    # Plain add_column: nullable, no constraint, so SQLite needs no table copy.
    op.add_column("referrals", sa.Column("age_years", sa.SmallInteger(), nullable=True))
    op.add_column("referrals", sa.Column("locality_id", sa.String(length=64), nullable=True))
    op.add_column(
        "referrals", sa.Column("source_of_referral_code", sa.String(length=2), nullable=True)
    )
    op.add_column("referrals", sa.Column("eligibility_rule", sa.String(length=48), nullable=True))
    bind = op.get_bind()
    op.execute(_BACKFILL_POSTGRESQL if bind.dialect.name == "postgresql" else _BACKFILL_SQLITE)
    op.create_index("ix_referrals_received_at", "referrals", list(REFERRAL_REPORT_INDEX))
    op.create_index("ix_triage_decisions_report", "triage_decisions", list(DECISION_REPORT_INDEX))
    # Plain create_index on cases (its generated column rules out a batch copy on SQLite).
    op.create_index("ix_cases_received_at", "cases", list(CASE_REPORT_INDEX))
    op.create_index(
        "ix_case_contacts_attended_occurred_at",
        "case_contacts",
        ["occurred_at", "case_id"],
        postgresql_where=sa.text("attendance = 'attended'"),
        sqlite_where=sa.text("attendance = 'attended'"),
    )


def downgrade() -> None:
    op.drop_index("ix_case_contacts_attended_occurred_at", table_name="case_contacts")
    op.drop_index("ix_cases_received_at", table_name="cases")
    op.drop_index("ix_triage_decisions_report", table_name="triage_decisions")
    op.drop_index("ix_referrals_received_at", table_name="referrals")
    with op.batch_alter_table("referrals") as batch:
        batch.drop_column("eligibility_rule")
        batch.drop_column("source_of_referral_code")
        batch.drop_column("locality_id")
        batch.drop_column("age_years")
