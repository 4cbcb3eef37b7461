"""Staff person search: find someone already known, with their referrals, audited.

One service for every way staff search (``GET /v1/persons`` and the console's "Find a person"):
the matches (exact and close, never merged automatically), each person's referrals newest first,
and one audit event per person shown, so each young person's record lists the search. Callers
present the result; the criteria's values are never audited, only which criteria were used.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Case, Person, Referral, TriageDecision
from app.security import Actor
from app.services import audit
from app.services.persons import name_key


@dataclass(frozen=True, slots=True)
class PersonQuery:
    """What staff search with: an NHS number, or a family name and date of birth (given name
    and postcode narrow an exact match)."""

    nhs_number: str | None = None
    family_name: str | None = None
    given_name: str | None = None
    date_of_birth: date | None = None
    postcode: str | None = None

    def criteria(self) -> list[str]:
        """The names of the criteria searched with (never their values), for the audit trail:
        enough to tell a lookup from a trawl."""
        return [f.name for f in fields(self) if getattr(self, f.name)]


@dataclass(frozen=True, slots=True)
class PersonMatch:
    person: Person
    match: str  # "exact" | "close"
    matched_on: tuple[str, ...]


SEARCH_MAX_RESULTS = 20
# Close matches share the date of birth and the first letters of the family name.
CLOSE_MATCH_PREFIX_CHARS = 3


def _starts_with(column: Any, prefix: str) -> Any:
    """``column`` starts with ``prefix``, written so the (date_of_birth, family_name_key) index
    bounds the scan: the LIKE decides, and a range ``[prefix, next prefix)`` lets the index skip
    everyone else born that day.

    A LIKE with a bound parameter is no index condition for a reused (generic) plan, so without
    the range PostgreSQL reads every person born that day (measured in bench/RESULTS.md).
    """
    condition = column.startswith(prefix, autoescape=True)
    upper = _prefix_upper_bound(prefix)
    if upper is not None:
        condition &= (column >= prefix) & (column < upper)
    return condition


_KEY_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


def _prefix_upper_bound(prefix: str) -> str | None:
    """The least string above every string starting with ``prefix``, for keys of ASCII digits
    and lower-case letters (their order is the same in every collation: C, libc, ICU, SQLite);
    None for other keys (accented or non-Latin letters), which then go by the LIKE alone.
    """
    if not prefix or any(ch not in _KEY_ALPHABET for ch in prefix):
        return None
    stem = prefix.rstrip("z")
    if not stem:
        return None
    return stem[:-1] + _KEY_ALPHABET[_KEY_ALPHABET.index(stem[-1]) + 1]


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
        # The number's (verified) holder, and any public self-referral that gave the number:
        # an unverified claim is only ever a close match for staff to confirm or reject.
        holders = await session.scalars(
            select(Person).where(
                or_(Person.nhs_number == nhs_number, Person.claimed_nhs_number == nhs_number)
            )
        )
        for person in holders:
            if person.nhs_number == nhs_number:
                matches[person.id] = PersonMatch(person, "exact", ("nhs_number",))
            else:
                matches[person.id] = PersonMatch(person, "close", ("claimed_nhs_number",))
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
                    & _starts_with(Person.family_name_key, family[:CLOSE_MATCH_PREFIX_CHARS]),
                )
            )
            .limit(SEARCH_MAX_RESULTS * 4)
        )
        for person in rows:
            if person.id in matches:
                continue
            matched_on = []
            exact = (
                person.verified
                and person.family_name_key == family
                and person.date_of_birth == date_of_birth
            )
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


# A person's referrals, as listed beside them ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReferralHeader:
    id: uuid.UUID
    person_id: uuid.UUID
    reference: str
    channel: str
    received_at: datetime
    case_id: uuid.UUID | None


@dataclass(frozen=True, slots=True)
class DecisionCodes:
    urgency_code: str
    route_kind: str


@dataclass(frozen=True, slots=True)
class CaseState:
    id: uuid.UUID
    status: str
    urgency_code: str
    queue_id: str


@dataclass(frozen=True, slots=True)
class ReferralSummary:
    """One referral in a person's list: its header, its decision's codes and the state of the
    case holding it (None when signposted). Codes and ids only: no payloads or free text."""

    referral: ReferralHeader
    decision: DecisionCodes
    case: CaseState | None

    @property
    def status(self) -> str:
        """What staff see: signposted, or the state of the case that holds the referral."""
        return self.case.status if self.case is not None else "signposted"


async def referrals_for(
    session: AsyncSession, person_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[ReferralSummary]]:
    """Each person's referrals, newest first.

    Only the columns a listing shows: whole rows would fetch and decode each referral's raw
    payload, normalised body and decision documents (kilobytes of JSON) to show a few codes.
    """
    by_person: dict[uuid.UUID, list[ReferralSummary]] = {pid: [] for pid in person_ids}
    if not person_ids:
        return by_person
    rows = await session.execute(
        select(
            Referral.id,
            Referral.person_id,
            Referral.reference,
            Referral.channel,
            Referral.received_at,
            Referral.case_id,
            TriageDecision.urgency_code,
            TriageDecision.route_kind,
            Case.status.label("case_status"),
            Case.urgency_code.label("case_urgency_code"),
            Case.queue_id.label("case_queue_id"),
        )
        .join(TriageDecision, TriageDecision.referral_id == Referral.id)
        .outerjoin(Case, Case.id == Referral.case_id)
        .where(Referral.person_id.in_(person_ids))
        .order_by(Referral.received_at.desc())
    )
    for row in rows:
        by_person[row.person_id].append(
            ReferralSummary(
                referral=ReferralHeader(
                    id=row.id,
                    person_id=row.person_id,
                    reference=row.reference,
                    channel=row.channel,
                    received_at=row.received_at,
                    case_id=row.case_id,
                ),
                decision=DecisionCodes(urgency_code=row.urgency_code, route_kind=row.route_kind),
                case=(
                    CaseState(
                        id=row.case_id,
                        status=row.case_status,
                        urgency_code=row.case_urgency_code,
                        queue_id=row.case_queue_id,
                    )
                    if row.case_id is not None
                    else None
                ),
            )
        )
    return by_person


async def open_cases_for(
    session: AsyncSession, person_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Case]:
    """Each person's open case (at most one each: episodic care joins it)."""
    if not person_ids:
        return {}
    cases = await session.scalars(
        select(Case).where(Case.person_id.in_(person_ids), Case.status != "closed")
    )
    return {case.person_id: case for case in cases}


# The search, with its referrals and audit -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PersonFound:
    """A match with the person's referrals, newest first."""

    person: Person
    match: str  # "exact" | "close"
    matched_on: tuple[str, ...]
    referrals: list[ReferralSummary]


async def find_people(
    session: AsyncSession,
    query: PersonQuery,
    *,
    actor: Actor,
    now: datetime,
    via: str | None = None,
) -> list[PersonFound]:
    """The people matching ``query``, best first, each with their referrals; audited.

    One audit event per person shown (with the ids of the referrals shown), or one event saying
    nothing matched; ``via`` names the screen when it is not the API (e.g. ``"console"``).
    """
    found = await search_persons(
        session,
        nhs_number=query.nhs_number,
        family_name=query.family_name,
        given_name=query.given_name,
        date_of_birth=query.date_of_birth,
        postcode=query.postcode,
    )
    referrals = await referrals_for(session, [m.person.id for m in found])
    criteria = query.criteria()
    screen = {"via": via} if via else {}
    if not found:
        audit.record(
            session,
            actor=actor,
            action="search",
            resource_type="person",
            resource_id=None,
            now=now,
            details={"criteria": criteria, "matches": 0, **screen},
        )
    for m in found:
        audit.record(
            session,
            actor=actor,
            action="search",
            resource_type="person",
            resource_id=m.person.id,
            person_id=m.person.id,
            now=now,
            details={
                "criteria": criteria,
                "match": m.match,
                "referral_ids": [r.referral.id for r in referrals[m.person.id]],
                **screen,
            },
        )
    return [PersonFound(m.person, m.match, m.matched_on, referrals[m.person.id]) for m in found]
