"""case report columns: what the case reports read of the opening referral, on the case

The case reports (waits, waiting list, triage agreement, CYP access) take their dimensions from
the referral that opened the case (docs/domain/reporting.md). Joining each case to that referral
cost the access report several seconds at a million referrals. The referral is never changed
after intake, so its report columns are copied onto the case when the case opens:

- ``cases.age_years``, ``locality_id``, ``gender_code``, ``ethnic_category_code``: as on the
  opening referral (age on its received date; the locality its postcode is in; the equity
  answers given then);
- ``cases.opening_urgency_code``: the engine's urgency on the opening referral's decision (the
  case's own ``urgency_code`` starts as it and may be raised or re-graded since; triage
  agreement compares the two without looking up each decision);
- ``cases.last_contact_at``: the latest attended contact (beside ``first_contact_at`` and
  ``second_contact_at``), so the cases with an attended contact in a period are found from the
  cases: every case whose first is before the period's end and whose last is in or after its
  start, the contact records consulted only for a case with contacts either side of the
  period and none known in it.

Back-filled here from the opening referrals and the attended contacts. Indexes:

- ``ix_cases_received_at`` carries the copied columns (before ``person_id``, ``id``);
- ``ix_cases_second_contact_at`` includes them on PostgreSQL (two contacts, by any of them);
- ``ix_cases_last_contact_at`` (new): cases by latest attended contact (partial: those with
  one), on PostgreSQL including the first contact, queue, person, the four columns and the id.

Revision ID: d1a0b0c0a009
Revises: d1a0b0c0a008
Create Date: 2026-12-02 04:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d1a0b0c0a009"
down_revision: str | None = "d1a0b0c0a008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out here (not imported from the models): a migration describes its revision's schema.
OPENING_COLUMNS = ("age_years", "locality_id", "gender_code", "ethnic_category_code")
CASE_REPORT_INDEX_BEFORE = (
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
CASE_REPORT_INDEX = (
    *CASE_REPORT_INDEX_BEFORE[:-2],
    "opening_urgency_code",
    *OPENING_COLUMNS,
    "person_id",
    "id",
)
SECOND_CONTACT_INCLUDE_BEFORE = ("queue_id", "person_id", "id")
SECOND_CONTACT_INCLUDE = ("queue_id", "person_id", *OPENING_COLUMNS, "id")
LAST_CONTACT_INCLUDE = ("first_contact_at", "queue_id", "person_id", *OPENING_COLUMNS, "id")


# The back-fill, by dialect (tests/test_reports.py runs it against what intake writes).
BACKFILL = {
    "postgresql": (
        "UPDATE cases SET age_years = r.age_years, locality_id = r.locality_id, "
        "gender_code = r.gender_code, ethnic_category_code = r.ethnic_category_code, "
        "opening_urgency_code = d.urgency_code "
        "FROM referrals r JOIN triage_decisions d ON d.referral_id = r.id "
        "WHERE r.case_id = cases.id AND r.disposition = 'case_opened'",
        "UPDATE cases SET last_contact_at = m.last FROM ("
        "SELECT case_id, max(occurred_at) AS last FROM case_contacts "
        "WHERE attendance = 'attended' GROUP BY case_id) m WHERE m.case_id = cases.id",
    ),
    # SQLite: correlated sub-selects, each through an index.
    "sqlite": (
        "UPDATE cases SET (age_years, locality_id, gender_code, ethnic_category_code, "
        "opening_urgency_code) = ("
        "SELECT r.age_years, r.locality_id, r.gender_code, r.ethnic_category_code, "
        "d.urgency_code FROM referrals r JOIN triage_decisions d ON d.referral_id = r.id "
        "WHERE r.case_id = cases.id AND r.disposition = 'case_opened')",
        "UPDATE cases SET last_contact_at = (SELECT max(occurred_at) FROM case_contacts "
        "WHERE case_id = cases.id AND attendance = 'attended')",
    ),
}


def _contact_index(column: str, include: Sequence[str]) -> None:
    """Cases by one of their contact times, partial on those that have it."""
    op.create_index(
        f"ix_cases_{column}",
        "cases",
        [column],
        postgresql_where=sa.text(f"{column} IS NOT NULL"),
        sqlite_where=sa.text(f"{column} IS NOT NULL"),
        postgresql_include=list(include),
    )


def upgrade() -> None:
    # Plain add_column/create_index on cases (its generated column rules out a batch copy on
    # SQLite). Nullable: an age or locality may be unknown, as on the referral.
    op.add_column("cases", sa.Column("age_years", sa.SmallInteger(), nullable=True))
    op.add_column("cases", sa.Column("locality_id", sa.String(64), nullable=True))
    op.add_column("cases", sa.Column("gender_code", sa.String(2), nullable=True))
    op.add_column("cases", sa.Column("ethnic_category_code", sa.String(2), nullable=True))
    op.add_column("cases", sa.Column("opening_urgency_code", sa.String(1), nullable=True))
    op.add_column("cases", sa.Column("last_contact_at", sa.DateTime(timezone=True), nullable=True))
    for statement in BACKFILL[op.get_bind().dialect.name]:
        op.execute(statement)
    op.drop_index("ix_cases_received_at", table_name="cases")
    op.create_index("ix_cases_received_at", "cases", list(CASE_REPORT_INDEX))
    op.drop_index("ix_cases_second_contact_at", table_name="cases")
    _contact_index("second_contact_at", SECOND_CONTACT_INCLUDE)
    _contact_index("last_contact_at", LAST_CONTACT_INCLUDE)


def downgrade() -> None:
    op.drop_index("ix_cases_last_contact_at", table_name="cases")
    op.drop_index("ix_cases_second_contact_at", table_name="cases")
    _contact_index("second_contact_at", SECOND_CONTACT_INCLUDE_BEFORE)
    op.drop_index("ix_cases_received_at", table_name="cases")
    op.create_index("ix_cases_received_at", "cases", list(CASE_REPORT_INDEX_BEFORE))
    for column in ("last_contact_at", "opening_urgency_code", *reversed(OPENING_COLUMNS)):
        op.drop_column("cases", column)
