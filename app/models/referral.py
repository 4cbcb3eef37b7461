"""Referrals as received, the triage decision made on each, and idempotency keys."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, SmallInteger, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.equity import ETHNIC_CATEGORY, GENDER_IDENTITY, sql_in
from app.models.base import Base, JSONType, new_id

CHANNELS = ("phone", "drop_in", "system", "web")
DISPOSITIONS = ("case_opened", "joined_case", "signposted")
PERSON_LINK_STATUSES = ("proposed", "confirmed", "rejected")


# The reports' index on referrals: the received date, then what the reports group and join by.
REFERRAL_REPORT_INDEX_COLUMNS = (
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
# What the case reports read of a case's opening referral (ix_referrals_opening).
OPENING_REFERRAL_INCLUDE_COLUMNS = (
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
# The reports' index on decisions: a referral's decision codes without reading its JSON.
DECISION_REPORT_INDEX_COLUMNS = (
    "referral_id",
    "eligibility_outcome",
    "urgency_code",
    "thrive_grouping",
    "route_kind",
    "queue_id",
)


class Referral(Base):
    """One contact with the front door. The raw payload is kept exactly as received."""

    __tablename__ = "referrals"
    __table_args__ = (
        CheckConstraint(
            "channel IN (" + ", ".join(f"'{c}'" for c in CHANNELS) + ")", name="channel_known"
        ),
        CheckConstraint(
            "disposition IN (" + ", ".join(f"'{d}'" for d in DISPOSITIONS) + ")",
            name="disposition_known",
        ),
        CheckConstraint(
            "(disposition = 'signposted') = (case_id IS NULL)", name="case_unless_signposted"
        ),
        CheckConstraint(
            "person_link IS NULL OR person_link IN ("
            + ", ".join(f"'{s}'" for s in PERSON_LINK_STATUSES)
            + ")",
            name="person_link_known",
        ),
        CheckConstraint(
            "(person_link IS NULL) = (proposed_person_id IS NULL)", name="person_link_has_person"
        ),
        CheckConstraint(
            "gender_code IS NULL OR gender_code IN " + sql_in(GENDER_IDENTITY),
            name="gender_code_known",
        ),
        CheckConstraint(
            "ethnic_category_code IS NULL OR ethnic_category_code IN " + sql_in(ETHNIC_CATEGORY),
            name="ethnic_category_code_known",
        ),
        Index("ix_referrals_person_received", "person_id", "received_at"),
        Index("ix_referrals_client_received", "submitted_by_client_id", "received_at"),
        # Reports: every report ranges over the received date; the columns they group by ride
        # in the index, so a report reads it alone (an index-only scan on PostgreSQL) and never
        # the wide rows (the payloads). See docs/domain/reporting.md.
        Index("ix_referrals_received_at", *REFERRAL_REPORT_INDEX_COLUMNS),
        # Case reports: a case's opening referral by case id, carrying what they read of it
        # (on PostgreSQL), so each case's look-up reads this index alone.
        Index(
            "ix_referrals_opening",
            "case_id",
            postgresql_where=text("disposition = 'case_opened'"),
            sqlite_where=text("disposition = 'case_opened'"),
            postgresql_include=list(OPENING_REFERRAL_INCLUDE_COLUMNS),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    reference: Mapped[str] = mapped_column(String(16), unique=True)
    person_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("persons.id"))
    case_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("cases.id"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    site_id: Mapped[str | None] = mapped_column(String(64))
    referrer_type: Mapped[str] = mapped_column(String(32))
    request: Mapped[str] = mapped_column(String(16))
    received_at: Mapped[datetime]
    disposition: Mapped[str] = mapped_column(String(16))
    # Who submitted it: a staff user, a referring system (client) or the public form.
    submitted_by_kind: Mapped[str] = mapped_column(String(16))
    submitted_by_id: Mapped[str | None] = mapped_column(String(128))
    submitted_by_client_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("api_clients.id"))
    # The request exactly as received, and the validated, normalised form of it.
    raw_payload: Mapped[dict[str, Any]]
    normalised: Mapped[dict[str, Any]]
    reason: Mapped[str | None] = mapped_column(Text)
    # Answers missing or invalid when an urgent web referral was stored anyway (field paths).
    incomplete_fields: Mapped[list[str]] = mapped_column(
        JSONType, default=list, server_default=text("'[]'")
    )
    # A public (unverified) referral's proposed match with a known person, for staff to confirm
    # or reject; it never changes that person's record by itself.
    proposed_person_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("persons.id"), index=True
    )
    person_link: Mapped[str | None] = mapped_column(String(16))
    person_link_decided_by: Mapped[str | None] = mapped_column(String(128))
    person_link_decided_at: Mapped[datetime | None]
    # Where an ineligible or advice-only person was pointed, as they were told at intake (the
    # services in the public shape) and the signposting directory's version: a later directory
    # change never rewrites what we told them. Null when the decision needed none.
    signposting: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONType)
    signposting_version: Mapped[str | None] = mapped_column(String(96))
    # Equity monitoring, as stated at this referral (docs/domain/equity-data.md): NHS Data
    # Dictionary GENDER IDENTITY CODE and ETHNIC CATEGORY. NULL is "not recorded", distinct from
    # the codes for "not stated". Kept per referral, never copied onto the person.
    gender_code: Mapped[str | None] = mapped_column(String(2))
    ethnic_category_code: Mapped[str | None] = mapped_column(String(2))
    # Reporting (docs/domain/reporting.md): copied from the triage decision at intake so the
    # reports group one table in the database. Age in whole years on the received date, the
    # locality the postcode is served by, the MHSDS source of referral code and the
    # eligibility rule that decided. NULL when the decision had none.
    age_years: Mapped[int | None] = mapped_column(SmallInteger)
    locality_id: Mapped[str | None] = mapped_column(String(64))
    source_of_referral_code: Mapped[str | None] = mapped_column(String(2))
    eligibility_rule: Mapped[str | None] = mapped_column(String(48))
    created_at: Mapped[datetime]


class TriageDecision(Base):
    """The decision made on a referral: inputs, ruleset version and outcome. Never updated."""

    __tablename__ = "triage_decisions"
    __table_args__ = (Index("ix_triage_decisions_report", *DECISION_REPORT_INDEX_COLUMNS),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    referral_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("referrals.id"), unique=True)
    ruleset_version: Mapped[str] = mapped_column(ForeignKey("rulesets.version"))
    input_snapshot: Mapped[dict[str, Any]]
    output: Mapped[dict[str, Any]]
    eligibility_outcome: Mapped[str] = mapped_column(String(16))
    urgency_code: Mapped[str] = mapped_column(String(1))
    thrive_grouping: Mapped[str] = mapped_column(String(32))
    route_kind: Mapped[str] = mapped_column(String(32))
    queue_id: Mapped[str | None] = mapped_column(ForeignKey("queues.id"))
    respond_by_at: Mapped[datetime | None]
    decided_at: Mapped[datetime]


class IdempotencyKey(Base):
    """A submitter's key for one referral, kept for ``idempotency_key_ttl_hours``."""

    __tablename__ = "idempotency_keys"

    # The submitter (client id or staff subject): keys are only unique per submitter.
    scope: Mapped[str] = mapped_column(String(160), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    # Deferred: the key is reserved before the referral row exists (same transaction).
    referral_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("referrals.id", deferrable=True, initially="DEFERRED")
    )
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)


class ApiClient(Base):
    """A referring system (GP practice, CAMHS, school). Only an argon2 hash of its key is kept."""

    __tablename__ = "api_clients"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    ods_code: Mapped[str] = mapped_column(String(16), index=True)
    # The key's public prefix, to find its row without trying every hash.
    key_prefix: Mapped[str] = mapped_column(String(32), unique=True)
    key_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
