"""A young person, recorded once however many times they are referred."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import Date, Index, String
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
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
