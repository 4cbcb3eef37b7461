"""report speed: indexes for the case reports at a million referrals

Indexes only, no new columns (see docs/domain/reporting.md, "Indexes"):

- ``ix_referrals_opening``: each case's opening referral by ``case_id`` (partial: the
  ``case_opened`` referrals), carrying on PostgreSQL the referral columns the case reports
  group by and filter on (age, received time, the referral dimensions, the id for the
  decision). A case report that needs its cases' opening referrals (the waiting list by age
  band, CYP access under 18, triage agreement) looks each one up in this index alone instead of
  scanning the referrals.
- ``ix_cases_second_contact_at``: cases by second attended contact (partial: those with one),
  carrying the queue and person: the CYP two-contact measure ranges over it instead of every
  case.
- ``ix_cases_received_at`` gains ``urgency_code`` (the case's own urgency: triage agreement
  reads it from the index).

Revision ID: d1a0b0c0a008
Revises: d1a0b0c0a007
Create Date: 2026-12-02 01:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d1a0b0c0a008"
down_revision: str | None = "d1a0b0c0a007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out here (not imported from the models): a migration describes its revision's schema.
OPENING_REFERRAL_INCLUDE = (
    "age_years",
    "received_at",
    "channel",
    "referrer_type",
    "source_of_referral_code",
    "eligibility_rule",
    "locality_id",
    "gender_code",
    "ethnic_category_code",
    "id",
)
SECOND_CONTACT_INCLUDE = ("queue_id", "person_id", "id")
# ix_cases_received_at of d1a0b0c0a007 with the case's urgency code added (triage agreement).
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
    "urgency_code",
    "person_id",
    "id",
)
CASE_REPORT_INDEX_BEFORE = tuple(c for c in CASE_REPORT_INDEX if c != "urgency_code")


def upgrade() -> None:
    op.create_index(
        "ix_referrals_opening",
        "referrals",
        ["case_id"],
        postgresql_where=sa.text("disposition = 'case_opened'"),
        sqlite_where=sa.text("disposition = 'case_opened'"),
        postgresql_include=list(OPENING_REFERRAL_INCLUDE),
    )
    # Plain drop/create_index on cases (its generated column rules out a batch copy on SQLite).
    op.drop_index("ix_cases_received_at", table_name="cases")
    op.create_index("ix_cases_received_at", "cases", list(CASE_REPORT_INDEX))
    op.create_index(
        "ix_cases_second_contact_at",
        "cases",
        ["second_contact_at"],
        postgresql_where=sa.text("second_contact_at IS NOT NULL"),
        sqlite_where=sa.text("second_contact_at IS NOT NULL"),
        postgresql_include=list(SECOND_CONTACT_INCLUDE),
    )


def downgrade() -> None:
    op.drop_index("ix_cases_second_contact_at", table_name="cases")
    op.drop_index("ix_cases_received_at", table_name="cases")
    op.create_index("ix_cases_received_at", "cases", list(CASE_REPORT_INDEX_BEFORE))
    op.drop_index("ix_referrals_opening", table_name="referrals")
