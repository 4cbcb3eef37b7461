"""One record per person: find the person a referral is about, or record them once."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Person
from app.schemas.referral import PersonIn
from app.triage.postcodes import postcode_district


def name_key(name: str | None) -> str | None:
    """Fold case, accents, spaces and punctuation: "Zoë O'Brien-Smith" → "zoeobriensmith"."""
    if not name:
        return None
    decomposed = unicodedata.normalize("NFKD", name)
    key = "".join(ch for ch in decomposed if ch.isalnum()).casefold()
    return key or None


async def find_or_create_person(session: AsyncSession, data: PersonIn, now: datetime) -> Person:
    """The person this referral is about: by NHS number, else by exact demographics, else new.

    Partial matches are never merged here; staff see them through person search.
    """
    person = await _find_exact(session, data)
    if person is not None:
        _fill_blanks(person, data, now)
        return person
    person = Person(
        nhs_number=data.nhs_number,
        given_name=data.given_name,
        family_name=data.family_name,
        given_name_key=name_key(data.given_name),
        family_name_key=name_key(data.family_name),
        date_of_birth=data.date_of_birth,
        postcode=data.postcode,
        postcode_district=postcode_district(data.postcode) if data.postcode else None,
        phone=data.phone,
        email=data.email,
        send=data.send,
        looked_after=data.looked_after,
        created_at=now,
        updated_at=now,
    )
    if data.nhs_number is None:
        session.add(person)
        await session.flush()
        return person
    # Two referrals for a new NHS number may race: the unique index picks one winner and the
    # other joins it.
    try:
        async with session.begin_nested():
            session.add(person)
            await session.flush()
    except IntegrityError:
        existing = await session.scalar(select(Person).where(Person.nhs_number == data.nhs_number))
        if existing is None:
            raise
        _fill_blanks(existing, data, now)
        return existing
    return person


async def _find_exact(session: AsyncSession, data: PersonIn) -> Person | None:
    if data.nhs_number:
        found = await session.scalar(select(Person).where(Person.nhs_number == data.nhs_number))
        if found is not None:
            return found
    given, family = name_key(data.given_name), name_key(data.family_name)
    if not (given and family and data.date_of_birth and data.postcode):
        return None
    candidates = (
        await session.scalars(
            select(Person)
            .where(
                Person.family_name_key == family,
                Person.date_of_birth == data.date_of_birth,
                Person.given_name_key == given,
                Person.postcode == data.postcode,
                # Never join someone whose NHS number says they are a different person.
                or_(Person.nhs_number.is_(None), Person.nhs_number == data.nhs_number)
                if data.nhs_number
                else Person.id.is_not(None),
            )
            .order_by(Person.created_at)
            .limit(2)
        )
    ).all()
    # Two people who share every demographic detail are ambiguous: record a new person and let
    # staff decide, rather than merge silently.
    return candidates[0] if len(candidates) == 1 else None


def _fill_blanks(person: Person, data: PersonIn, now: datetime) -> None:
    """Add what the record lacks; never overwrite what it holds (the raw referral keeps both)."""
    changed = False
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
            changed = True
    if changed:
        person.given_name_key = name_key(person.given_name)
        person.family_name_key = name_key(person.family_name)
        person.postcode_district = postcode_district(person.postcode) if person.postcode else None
    for flag in ("send", "looked_after"):
        if getattr(data, flag) and not getattr(person, flag):
            setattr(person, flag, True)
            changed = True
    if changed:
        person.updated_at = now


@dataclass(frozen=True, slots=True)
class PersonMatch:
    person: Person
    match: str  # "exact" | "close"
    matched_on: tuple[str, ...]


SEARCH_MAX_RESULTS = 20


def _swapped_day_month(value: date) -> date | None:
    """The date with day and month exchanged (a common keying slip), if that is a real date."""
    if value.day > 12 or value.day == value.month:
        return None
    try:
        return value.replace(month=value.day, day=value.month)
    except ValueError:
        return None


async def search_persons(
    session: AsyncSession,
    *,
    nhs_number: str | None = None,
    family_name: str | None = None,
    given_name: str | None = None,
    date_of_birth: date | None = None,
    postcode: str | None = None,
) -> list[PersonMatch]:
    """Exact and close matches for staff to choose from (never merged automatically).

    Exact: the same NHS number; or the same family name and date of birth (and postcode and
    given name, when given). Close: the same date of birth and a family name starting alike, or
    the same family name with day and month of birth swapped.
    """
    matches: dict[object, PersonMatch] = {}
    if nhs_number:
        for person in await session.scalars(select(Person).where(Person.nhs_number == nhs_number)):
            matches[person.id] = PersonMatch(person, "exact", ("nhs_number",))
    family = name_key(family_name)
    if family and date_of_birth:
        given = name_key(given_name)
        dates = [date_of_birth]
        swapped = _swapped_day_month(date_of_birth)
        if swapped:
            dates.append(swapped)
        rows = await session.scalars(
            select(Person)
            .where(
                or_(
                    (Person.family_name_key == family) & Person.date_of_birth.in_(dates),
                    (Person.date_of_birth == date_of_birth)
                    & Person.family_name_key.startswith(family[:3], autoescape=True),
                )
            )
            .limit(SEARCH_MAX_RESULTS * 4)
        )
        for person in rows:
            if person.id in matches:
                continue
            matched_on = []
            exact = person.family_name_key == family and person.date_of_birth == date_of_birth
            if person.family_name_key == family:
                matched_on.append("family_name")
            if person.date_of_birth == date_of_birth:
                matched_on.append("date_of_birth")
            if postcode:
                if person.postcode == postcode:
                    matched_on.append("postcode")
                else:
                    exact = False
            if given:
                if person.given_name_key == given:
                    matched_on.append("given_name")
                else:
                    exact = False
            matches[person.id] = PersonMatch(
                person, "exact" if exact else "close", tuple(matched_on)
            )
    ordered = sorted(matches.values(), key=lambda m: (m.match != "exact", -len(m.matched_on)))
    return ordered[:SEARCH_MAX_RESULTS]
