"""A case: the work a key worker holds for a young person, its supporters, its contacts, its
urgency changes and its append-only timeline.

The case vocabulary (statuses, outcomes, contact kinds, review outcomes) is defined here once:
the database constraints below, the API schemas (app/schemas/case.py), the SQL the services
build and the lifecycle table (app/services/cases.py ``TRANSITIONS``) all read these enums.
The rules are in docs/domain/after-the-door.md.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Computed,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, new_id


class CaseStatus(StrEnum):
    """Where a case is in its lifecycle (docs/domain/after-the-door.md)."""

    WAITING = "waiting"  # in a queue, no key worker
    ALLOCATED = "allocated"  # a key worker holds it, not yet seen
    CONTACTED = "contacted"  # first attended contact made: the waiting clock has stopped
    ACTIVE = "active"  # intervention under way
    ON_HOLD = "on_hold"  # paused, with a reason
    CLOSED = "closed"  # closed with an outcome


OPEN_CASE_STATUSES = tuple(status for status in CaseStatus if status is not CaseStatus.CLOSED)


class CaseOutcome(StrEnum):
    """Why a case closed."""

    RETURNED_TO_THRIVING = "returned_to_thriving"
    SIGNPOSTED = "signposted"
    # Clinical review: a warm handover to adult mental health services.
    ADULT_HANDOVER = "adult_handover"
    MOVED_TO_ADULT_SERVICES = "moved_to_adult_services"
    # Fits cases.outcome (String(32)); the longer "…_service" never could be stored.
    TRANSFERRED_TO_SPECIALIST = "transferred_to_specialist"
    MOVED_OUT_OF_AREA = "moved_out_of_area"
    DECLINED = "declined"
    NOT_CONTACTABLE = "not_contactable"


class EffectiveEligibility(StrEnum):
    """The case's eligibility: the engine's outcome until a clinical review decides."""

    ELIGIBLE = "eligible"
    INELIGIBLE = "ineligible"
    CLINICAL_REVIEW = "clinical_review"


class ReviewOutcome(StrEnum):
    """What a duty clinician decides for a case awaiting clinical review."""

    ACCEPT = "accept"  # eligible: into a named team's queue
    SIGNPOST = "signpost"  # closed with signposting
    ADULT_HANDOVER = "adult_handover"  # closed: warm handover to adult services


class ContactMechanism(StrEnum):
    FACE_TO_FACE = "face_to_face"
    TELEPHONE = "telephone"
    VIDEO = "video"
    TEXT = "text"
    EMAIL = "email"


class ContactAttendance(StrEnum):
    ATTENDED = "attended"
    DID_NOT_ATTEND = "did_not_attend"
    CANCELLED_BY_PATIENT = "cancelled_by_patient"
    CANCELLED_BY_SERVICE = "cancelled_by_service"


class ContactWith(StrEnum):
    YOUNG_PERSON = "young_person"
    PARENT_CARER = "parent_carer"
    PROFESSIONAL = "professional"


class UrgencyChangeSource(StrEnum):
    REGRADE = "regrade"  # a clinician re-graded the case
    REFERRAL = "referral"  # a further referral joined the case and raised it


SUPPORTER_KINDS = ("worker", "team")


def sql_in(column: str, values: Iterable[str], *, nullable: bool = False) -> str:
    """A CHECK constraint's ``column IN ('a', 'b')`` from one of the vocabularies above."""
    listed = ", ".join(f"'{value}'" for value in values)
    check = f"{column} IN ({listed})"
    return f"{column} IS NULL OR {check}" if nullable else check


_CLOSED = f"'{CaseStatus.CLOSED.value}'"
_WAITING = f"'{CaseStatus.WAITING.value}'"
OPEN_CASE_SQL = f"status <> {_CLOSED}"
UNALLOCATED_CASE_SQL = f"status = {_WAITING}"

# ``respond_by_at`` with "no window" (NULL) read as the far future: a NOT NULL key that orders
# NULLs last on both databases and compares cleanly in keyset pagination (a row comparison with
# a NULL in it is unknown, which would drop rows). The literal is exactly how SQLite stores
# 9999-12-31 00:00 UTC, so a cursor built from it compares equal to the stored value.
RESPOND_BY_SORT_EXPRESSION = "coalesce(respond_by_at, '9999-12-31 00:00:00.000000')"
OVERVIEW_COLUMNS = ["status", "received_at", "respond_by_at", "first_contact_at"]


# The reports' index on cases: the received date, then what the case measures read.
CASE_REPORT_INDEX_COLUMNS = (
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
    "opening_urgency_code",
    # As on the opening referral (copied when the case opens): what the case reports group by.
    "age_years",
    "locality_id",
    "gender_code",
    "ethnic_category_code",
    "person_id",
    "id",
)
OPENING_REPORT_COLUMNS = ("age_years", "locality_id", "gender_code", "ethnic_category_code")


class Case(Base):
    __tablename__ = "cases"
    __table_args__ = (
        CheckConstraint(sql_in("status", CaseStatus), name="status_known"),
        CheckConstraint(sql_in("outcome", CaseOutcome, nullable=True), name="outcome_known"),
        CheckConstraint(
            sql_in("eligibility_review", ReviewOutcome, nullable=True), name="review_known"
        ),
        CheckConstraint(
            "(eligibility_reviewed_at IS NULL) = (eligibility_reviewed_by IS NULL) "
            "AND (eligibility_reviewed_at IS NULL) = (eligibility_review IS NULL)",
            name="review_with_who",
        ),
        CheckConstraint("did_not_attend_count >= 0", name="dna_count_positive"),
        CheckConstraint(
            "second_contact_at IS NULL OR first_contact_at IS NOT NULL", name="second_after_first"
        ),
        CheckConstraint("version >= 1", name="version_positive"),
        CheckConstraint(
            f"(status = {_CLOSED}) = (closed_at IS NOT NULL)", name="closed_iff_closed_at"
        ),
        CheckConstraint(
            f"status = {_WAITING} OR status = {_CLOSED} OR key_worker_id IS NOT NULL",
            name="key_worker_once_allocated",
        ),
        # Worklist: open cases of a queue, most urgent first, then earliest respond-by; the
        # keyset cursor is (urgency_rank, respond_by_sort_at, id), so pages are index ranges.
        # On PostgreSQL it also carries what the queue overview counts, so the overview is an
        # index-only scan of the open cases instead of a heap visit per open case.
        Index(
            "ix_cases_open_worklist",
            "queue_id",
            "urgency_rank",
            "respond_by_sort_at",
            "id",
            postgresql_where=text(OPEN_CASE_SQL),
            sqlite_where=text(OPEN_CASE_SQL),
            postgresql_include=OVERVIEW_COLUMNS,
        ),
        # Claim: the next unallocated case of a queue (FOR UPDATE SKIP LOCKED walks this).
        Index(
            "ix_cases_unallocated",
            "queue_id",
            "urgency_rank",
            "respond_by_sort_at",
            "id",
            postgresql_where=text(UNALLOCATED_CASE_SQL),
            sqlite_where=text(UNALLOCATED_CASE_SQL),
        ),
        # Reports (docs/domain/reporting.md): cases by received date with what the case
        # measures read, so waits and agreement read the index, not the rows.
        Index("ix_cases_received_at", *CASE_REPORT_INDEX_COLUMNS),
        # The CYP two-contact measure: cases by second attended contact.
        Index(
            "ix_cases_second_contact_at",
            "second_contact_at",
            postgresql_where=text("second_contact_at IS NOT NULL"),
            sqlite_where=text("second_contact_at IS NOT NULL"),
            postgresql_include=["queue_id", "person_id", *OPENING_REPORT_COLUMNS, "id"],
        ),
        # The CYP one-contact measure: cases by latest attended contact (with the first, the
        # cases with an attended contact in a period are found here; docs/domain/reporting.md).
        Index(
            "ix_cases_last_contact_at",
            "last_contact_at",
            postgresql_where=text("last_contact_at IS NOT NULL"),
            sqlite_where=text("last_contact_at IS NOT NULL"),
            postgresql_include=[
                "first_contact_at",
                "queue_id",
                "person_id",
                *OPENING_REPORT_COLUMNS,
                "id",
            ],
        ),
        # At most one open case per person (episodic care joins it instead).
        Index(
            "uq_cases_one_open_per_person",
            "person_id",
            unique=True,
            postgresql_where=text(OPEN_CASE_SQL),
            sqlite_where=text(OPEN_CASE_SQL),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    person_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("persons.id"))
    queue_id: Mapped[str] = mapped_column(ForeignKey("queues.id"))
    status: Mapped[str] = mapped_column(String(16))
    # The effective urgency: the engine's, raised by later referrals or re-graded by a
    # clinician (every change in CaseUrgencyChange; the engine's codes stay on the decisions).
    urgency_code: Mapped[str] = mapped_column(String(1))
    # 0 = A … : sorts most urgent first without a CASE expression.
    urgency_rank: Mapped[int]
    # The waiting clock: starts when the referral is received, stops at first contact.
    received_at: Mapped[datetime]
    respond_by_at: Mapped[datetime | None]
    # Generated by the database from respond_by_at (see RESPOND_BY_SORT_EXPRESSION); read-only.
    respond_by_sort_at: Mapped[datetime] = mapped_column(
        Computed(RESPOND_BY_SORT_EXPRESSION, persisted=True)
    )
    # The first attended contact (stops the waiting clock) and the second (the CYP access
    # measure); counted from the case's contact records (CaseContact).
    first_contact_at: Mapped[datetime | None]
    first_contact_type: Mapped[str | None] = mapped_column(String(32))
    second_contact_at: Mapped[datetime | None]
    # The latest attended contact (the CYP one-contact measure finds contacted cases by it).
    last_contact_at: Mapped[datetime | None]
    did_not_attend_count: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    # The clinical review of a case whose opening referral the engine sent for it: the engine's
    # decision is never edited; the case's effective eligibility follows the review.
    eligibility_review: Mapped[str | None] = mapped_column(String(16))
    eligibility_reviewed_by: Mapped[str | None] = mapped_column(String(128))
    eligibility_reviewed_at: Mapped[datetime | None]
    eligibility_reason: Mapped[str | None] = mapped_column(Text)
    key_worker_id: Mapped[str | None] = mapped_column(String(128), index=True)
    allocated_at: Mapped[datetime | None]
    thrive_grouping_proposed: Mapped[str] = mapped_column(String(32))
    thrive_grouping: Mapped[str | None] = mapped_column(String(32))
    thrive_decided_by: Mapped[str | None] = mapped_column(String(128))
    thrive_decided_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(32))
    closed_at: Mapped[datetime | None]
    # Optimistic concurrency: every change bumps it; a stale write is refused.
    version: Mapped[int] = mapped_column(default=1)
    # The seq of the latest timeline event: appending an event bumps it in the same UPDATE as
    # the change it records (app.services.case_events), instead of asking for max(seq) first.
    last_event_seq: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    # The engine's urgency on the opening referral's decision (urgency_code starts as it):
    # triage agreement's "proposed". (The API's engine_urgency_code is another thing: the
    # most urgent code the engine gave any of the case's referrals.)
    opening_urgency_code: Mapped[str | None] = mapped_column(String(1))
    # As on the opening referral, copied when the case opens and never changed (the referral
    # is not): the case reports' age, locality and equity dimensions read them from the case.
    age_years: Mapped[int | None] = mapped_column(SmallInteger)
    locality_id: Mapped[str | None] = mapped_column(String(64))
    gender_code: Mapped[str | None] = mapped_column(String(2))
    ethnic_category_code: Mapped[str | None] = mapped_column(String(2))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __mapper_args__ = {
        # Every UPDATE also says "WHERE version = <the version read>": a write that lost a race
        # fails loudly instead of overwriting. The application bumps the version itself.
        "version_id_col": version,
        "version_id_generator": False,
        # Read the generated respond_by_sort_at back (RETURNING) rather than expiring it, so no
        # lazy load is ever needed on an async session.
        "eager_defaults": True,
    }


class CaseSupporter(Base):
    """A worker or specialist team pulled in to support a case; the key worker still owns it.

    Rows are never deleted: standing a supporter down sets ``removed_at``, so the history stays.
    """

    __tablename__ = "case_supporters"
    __table_args__ = (
        CheckConstraint(
            "kind IN (" + ", ".join(f"'{k}'" for k in SUPPORTER_KINDS) + ")", name="kind_known"
        ),
        CheckConstraint(
            "(kind = 'worker') = (worker_id IS NOT NULL) "
            "AND (kind = 'team') = (team_queue_id IS NOT NULL)",
            name="worker_or_team",
        ),
        CheckConstraint("(removed_at IS NULL) = (removed_by_id IS NULL)", name="removed_with_who"),
        # The same worker or team supports a case at most once at a time.
        Index(
            "uq_case_supporters_current_worker",
            "case_id",
            "worker_id",
            unique=True,
            postgresql_where=text("removed_at IS NULL AND kind = 'worker'"),
            sqlite_where=text("removed_at IS NULL AND kind = 'worker'"),
        ),
        Index(
            "uq_case_supporters_current_team",
            "case_id",
            "team_queue_id",
            unique=True,
            postgresql_where=text("removed_at IS NULL AND kind = 'team'"),
            sqlite_where=text("removed_at IS NULL AND kind = 'team'"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    worker_id: Mapped[str | None] = mapped_column(String(128), index=True)
    team_queue_id: Mapped[str | None] = mapped_column(ForeignKey("queues.id"))
    # What they bring, e.g. "family therapist", "eating disorders" (no patient data).
    role: Mapped[str | None] = mapped_column(String(100))
    added_by_id: Mapped[str] = mapped_column(String(128))
    added_at: Mapped[datetime]
    removed_by_id: Mapped[str | None] = mapped_column(String(128))
    removed_at: Mapped[datetime | None]


class CaseEvent(Base):
    """One entry in a case's timeline: who did what, when and why. Never updated or deleted."""

    __tablename__ = "case_events"
    __table_args__ = (UniqueConstraint("case_id", "seq"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id"))
    seq: Mapped[int]
    type: Mapped[str] = mapped_column(String(48))
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str | None] = mapped_column(String(128))
    actor_role: Mapped[str | None] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str | None] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]


class CaseContact(Base):
    """One contact with (or about) the young person: when, how, attended or not, with whom.

    Never updated or deleted. The first attended contact stops the case's waiting clock.
    """

    __tablename__ = "case_contacts"
    __table_args__ = (
        CheckConstraint(
            sql_in("mechanism", ContactMechanism, nullable=True), name="mechanism_known"
        ),
        CheckConstraint(sql_in("attendance", ContactAttendance), name="attendance_known"),
        CheckConstraint(sql_in("with_whom", ContactWith), name="with_known"),
        Index("ix_case_contacts_case_id_occurred_at", "case_id", "occurred_at"),
        # Reports: attended contacts in a date range (the CYP access measures).
        Index(
            "ix_case_contacts_attended_occurred_at",
            "occurred_at",
            "case_id",
            postgresql_where=text("attendance = 'attended'"),
            sqlite_where=text("attendance = 'attended'"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id"))
    occurred_at: Mapped[datetime]
    # NULL only for contacts recorded through the older first-contact action without a method.
    mechanism: Mapped[str | None] = mapped_column(String(16))
    attendance: Mapped[str] = mapped_column(String(24))
    with_whom: Mapped[str] = mapped_column(String(16))
    # advice | assessment | intervention, when the older first-contact action said so.
    contact_type: Mapped[str | None] = mapped_column(String(32))
    recorded_by_id: Mapped[str] = mapped_column(String(128))
    recorded_at: Mapped[datetime]


class CaseUrgencyChange(Base):
    """Every change of a case's urgency after the engine graded it: a clinician's re-grade or a
    further referral raising it. With ``engine_code`` beside each, engine-versus-clinician
    agreement can be reported. Never updated or deleted."""

    __tablename__ = "case_urgency_changes"
    __table_args__ = (
        CheckConstraint(sql_in("source", UrgencyChangeSource), name="source_known"),
        Index("ix_case_urgency_changes_case_id_changed_at", "case_id", "changed_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id"))
    source: Mapped[str] = mapped_column(String(16))
    engine_code: Mapped[str] = mapped_column(String(1))
    from_code: Mapped[str] = mapped_column(String(1))
    to_code: Mapped[str] = mapped_column(String(1))
    from_respond_by_at: Mapped[datetime | None]
    to_respond_by_at: Mapped[datetime | None]
    from_queue_id: Mapped[str] = mapped_column(String(64))
    to_queue_id: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(Text)
    changed_by_id: Mapped[str | None] = mapped_column(String(128))
    changed_by_role: Mapped[str | None] = mapped_column(String(32))
    changed_at: Mapped[datetime]
