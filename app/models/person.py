"""A young person, recorded once however many times they are referred."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, String, true
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, new_id


class Person(Base):
    __tablename__ = "persons"
    __table_args__ = (
        # Demographic match (telling the story once) and staff search by date of birth + name
        # (exact, and close matches sharing the date of birth).
        Index("ix_persons_dob_family_key", "date_of_birth", "family_name_key"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    # Unique when present: one record per NHS number.
    nhs_number: Mapped[str | None] = mapped_column(String(10), unique=True)
    given_name: Mapped[str | None] = mapped_column(String(100))
    family_name: Mapped[str | None] = mapped_column(String(100))
    # Normalised (case, accents, punctuation and spacing folded) for matching and search.
    given_name_key: Mapped[str | None] = mapped_column(String(100))
    family_name_key: Mapped[str | None] = mapped_column(String(100))
    date_of_birth: Mapped[date | None] = mapped_column(Date)
    postcode: Mapped[str | None] = mapped_column(String(8))
    postcode_district: Mapped[str | None] = mapped_column(String(4))
    phone: Mapped[str | None] = mapped_column(String(32))
    email: Mapped[str | None] = mapped_column(String(254))
    send: Mapped[bool] = mapped_column(default=False)
    looked_after: Mapped[bool] = mapped_column(default=False)
    # False for what a public self-referral said about someone (unverified): such a record is
    # never matched by staff or system intake, and never holds ``nhs_number`` (which would claim
    # the number's record); the number it was given is kept as ``claimed_nhs_number``.
    verified: Mapped[bool] = mapped_column(default=True, server_default=true())
    claimed_nhs_number: Mapped[str | None] = mapped_column(String(10), index=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class PersonChange(Base):
    """One change to a person's record: the field, old and new value, who and when.

    Append-only. Values are personal data: they live here, never in logs or the audit trail
    (which records only the field names).
    """

    __tablename__ = "person_changes"
    __table_args__ = (Index("ix_person_changes_person_changed", "person_id", "changed_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    person_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("persons.id"))
    referral_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("referrals.id", deferrable=True, initially="DEFERRED")
    )
    field: Mapped[str] = mapped_column(String(32))
    old_value: Mapped[str | None] = mapped_column(String(254))
    new_value: Mapped[str | None] = mapped_column(String(254))
    changed_by_kind: Mapped[str] = mapped_column(String(16))
    changed_by_id: Mapped[str | None] = mapped_column(String(128))
    changed_at: Mapped[datetime]
