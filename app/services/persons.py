"""One record per person: find the person a referral is about, or record them once."""

from __future__ import annotations

import unicodedata
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import case, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import insert_on_conflict
from app.models import Person, PersonChange
from app.models.base import new_id
from app.schemas.referral import PersonIn
from app.triage.postcodes import postcode_district


def name_key(name: str | None) -> str | None:
    """Fold case, accents, spaces and punctuation: "Zoë O'Brien-Smith" → "zoeobriensmith"."""
    if not name:
        return None
    decomposed = unicodedata.normalize("NFKD", name)
    key = "".join(ch for ch in decomposed if ch.isalnum()).casefold()
    return key or None


@dataclass(frozen=True, slots=True)
class ResolvedPerson:
    person: Person
    # True when this call recorded the person (False: matched, or a concurrent request won).
    created: bool


@dataclass(frozen=True, slots=True)
class ChangeAuthor:
    """Who a change to a person's record is recorded against, and the referral that made it."""

    kind: str
    id: str | None
    referral_id: uuid.UUID | None = None


async def resolve_person(
    session: AsyncSession, data: PersonIn, now: datetime, *, author: ChangeAuthor
) -> ResolvedPerson:
    """The person a staff or system referral is about: by NHS number, else by exact
    demographics, else new. Only verified records are matched (never a public self-referral's).

    What the referral adds to a known record is recorded field by field (old → new, who,
    when) in ``person_changes``. Partial matches are never merged here; staff see them through
    person search. Two round trips for a new person (one lookup, one insert), no savepoint: a
    new NHS number is inserted with ``ON CONFLICT DO NOTHING``, so a concurrent request that
    recorded the same number first is joined instead.
    """
    person = await _find_exact(session, data)
    if person is not None:
        _fill_blanks(session, person, data, now, author)
        return ResolvedPerson(person, created=False)
    values = _new_person_values(data, now)
    if data.nhs_number is None:
        person = Person(**values)
        session.add(person)
        await session.flush()
        return ResolvedPerson(person, created=True)
    inserted = (
        await session.scalars(
            insert_on_conflict(session, Person)
            .values(**values)
            .on_conflict_do_nothing(index_elements=[Person.nhs_number])
            .returning(Person)
        )
    ).one_or_none()
    if inserted is not None:
        return ResolvedPerson(inserted, created=True)
    existing = await _by_nhs_number(session, data.nhs_number)
    if existing is None:  # the conflicting row is gone again: give up rather than loop
        raise RuntimeError("person insert conflicted but no person holds the NHS number")
    _fill_blanks(session, existing, data, now, author)
    return ResolvedPerson(existing, created=False)


async def record_unverified_person(
    session: AsyncSession, data: PersonIn, now: datetime
) -> tuple[Person, uuid.UUID | None]:
    """Record what a public self-referral said as its own, unverified person; and the known
    person it appears to be about, as a proposal for staff to confirm.

    Nothing a member of the public sends changes a known record: not its identifiers, contact
    details or flags (docs/domain/trust-and-safety.md, "Who said it matters"). The NHS number
    given is kept as ``claimed_nhs_number``, so it can neither claim nor block the number's
    real record.
    """
    values = _new_person_values(data, now)
    values["nhs_number"] = None
    values["claimed_nhs_number"] = data.nhs_number
    values["verified"] = False
    match = await _find_exact(session, data)
    person = Person(**values)
    session.add(person)
    # Flushed now: the case and referral rows that follow refer to it.
    await session.flush()
    return person, match.id if match is not None else None


def _new_person_values(data: PersonIn, now: datetime) -> dict[str, Any]:
    return {
        "id": new_id(),
        "nhs_number": data.nhs_number,
        "given_name": data.given_name,
        "family_name": data.family_name,
        "given_name_key": name_key(data.given_name),
        "family_name_key": name_key(data.family_name),
        "date_of_birth": data.date_of_birth,
        "postcode": data.postcode,
        "postcode_district": postcode_district(data.postcode) if data.postcode else None,
        "phone": data.phone,
        "email": data.email,
        "send": bool(data.send),
        "looked_after": bool(data.looked_after),
        "created_at": now,
        "updated_at": now,
    }


async def _by_nhs_number(session: AsyncSession, nhs_number: str) -> Person | None:
    # Only verified records hold nhs_number (an unverified one keeps claimed_nhs_number).
    return await session.scalar(select(Person).where(Person.nhs_number == nhs_number))


async def _find_exact(session: AsyncSession, data: PersonIn) -> Person | None:
    """The NHS number's holder, else the one verified person with exactly these demographics.

    One query for both (a round trip saved on every new person): rows holding the NHS number
    sort first; the demographic candidates follow, oldest first. Unverified records (what a
    public self-referral said) are never matched.
    """
    given, family = name_key(data.given_name), name_key(data.family_name)
    demographics = bool(given and family and data.date_of_birth and data.postcode)
    if not data.nhs_number and not demographics:
        return None
    conditions = []
    if data.nhs_number:
        conditions.append(Person.nhs_number == data.nhs_number)
    if demographics:
        conditions.append(
            (Person.family_name_key == family)
            & (Person.date_of_birth == data.date_of_birth)
            & (Person.given_name_key == given)
            & (Person.postcode == data.postcode)
            & Person.verified.is_(True)
            # Never join someone whose NHS number says they are a different person.
            & (
                or_(Person.nhs_number.is_(None), Person.nhs_number == data.nhs_number)
                if data.nhs_number
                else Person.id.is_not(None)
            )
        )
    query = select(Person).where(or_(*conditions))
    if data.nhs_number:
        by_number = case((Person.nhs_number == data.nhs_number, 0), else_=1)
        query = query.order_by(by_number, Person.created_at)
    else:
        query = query.order_by(Person.created_at)
    # At most one NHS-number holder (unique) and two demographic candidates are needed.
    rows = (await session.scalars(query.limit(3))).all()
    if data.nhs_number and rows and rows[0].nhs_number == data.nhs_number:
        return rows[0]
    # Two people who share every demographic detail are ambiguous: record a new person and let
    # staff decide, rather than merge silently.
    return rows[0] if len(rows) == 1 else None


def _fill_blanks(
    session: AsyncSession, person: Person, data: PersonIn, now: datetime, author: ChangeAuthor
) -> None:
    """Add what the record lacks; never overwrite what it holds (the raw referral keeps both).

    Each change is recorded in ``person_changes`` with its old and new value, who and when.
    """
    changes: list[tuple[str, object, object]] = []
    simple: list[tuple[str, str | date | None]] = [
        ("nhs_number", data.nhs_number),
        ("given_name", data.given_name),
        ("family_name", data.family_name),
        ("date_of_birth", data.date_of_birth),
        ("postcode", data.postcode),
        ("phone", data.phone),
        ("email", data.email),
    ]
    for attr, value in simple:
        if value is not None and getattr(person, attr) is None:
            setattr(person, attr, value)
            changes.append((attr, None, value))
    if changes:
        person.given_name_key = name_key(person.given_name)
        person.family_name_key = name_key(person.family_name)
        person.postcode_district = postcode_district(person.postcode) if person.postcode else None
    for flag in ("send", "looked_after"):
        if getattr(data, flag) and not getattr(person, flag):
            setattr(person, flag, True)
            changes.append((flag, False, True))
    if not changes:
        return
    person.updated_at = now
    session.add_all(
        PersonChange(
            id=new_id(),
            person_id=person.id,
            referral_id=author.referral_id,
            field=attr,
            old_value=_as_text(old),
            new_value=_as_text(new),
            changed_by_kind=author.kind,
            changed_by_id=author.id,
            changed_at=now,
        )
        for attr, old, new in changes
    )


def _as_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)
