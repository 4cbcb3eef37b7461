"""Staff person search: find someone already known, with their referrals."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import select

from app.deps import ClockDep, SessionDep, StaffDep
from app.errors import Unprocessable
from app.models import Case, Referral, TriageDecision
from app.responses import errors_for
from app.schemas.common import Name, NhsNumber, Postcode
from app.schemas.person import PersonRead, PersonReferralSummary, PersonSearchRead
from app.services import audit
from app.services.persons import search_persons

router = APIRouter(prefix="/v1", tags=["persons"])


@router.get(
    "/persons",
    response_model=PersonSearchRead,
    responses=errors_for(401, 403, 422),
    summary="Find people by NHS number, or by family name and date of birth (+ postcode)",
)
async def find_persons(
    session: SessionDep,
    actor: StaffDep,
    clock: ClockDep,
    nhs_number: Annotated[NhsNumber | None, Query()] = None,
    family_name: Annotated[Name | None, Query()] = None,
    given_name: Annotated[Name | None, Query()] = None,
    date_of_birth: Annotated[date | None, Query()] = None,
    postcode: Annotated[Postcode | None, Query()] = None,
) -> PersonSearchRead:
    if not nhs_number and not (family_name and date_of_birth):
        missing = "family_name" if not family_name else "date_of_birth"
        raise Unprocessable(
            "Search by nhs_number, or by family_name and date_of_birth.", field=f"query:{missing}"
        )
    found = await search_persons(
        session,
        nhs_number=nhs_number,
        family_name=family_name,
        given_name=given_name,
        date_of_birth=date_of_birth,
        postcode=postcode,
    )
    # The criteria's names (never their values): enough to tell a lookup from a trawl.
    criteria = [
        name
        for name, value in (
            ("nhs_number", nhs_number),
            ("family_name", family_name),
            ("given_name", given_name),
            ("date_of_birth", date_of_birth),
            ("postcode", postcode),
        )
        if value
    ]
    if not found:
        audit.record(
            session,
            actor=actor,
            action="search",
            resource_type="person",
            resource_id=None,
            now=clock.now(),
            details={"criteria": criteria, "matches": 0},
        )
        return PersonSearchRead(matches=[])
    ids = [m.person.id for m in found]
    # Only the summary's columns: whole rows would fetch and decode each referral's raw
    # payload, normalised body and decision documents (kilobytes of JSON) to show a few codes.
    rows = (
        await session.execute(
            select(
                Referral.id,
                Referral.person_id,
                Referral.reference,
                Referral.channel,
                Referral.received_at,
                Referral.case_id,
                TriageDecision.urgency_code,
                TriageDecision.route_kind,
                Case.status,
                Case.queue_id,
            )
            .join(TriageDecision, TriageDecision.referral_id == Referral.id)
            .outerjoin(Case, Case.id == Referral.case_id)
            .where(Referral.person_id.in_(ids))
            .order_by(Referral.received_at.desc())
        )
    ).all()
    by_person: dict[object, list[PersonReferralSummary]] = {pid: [] for pid in ids}
    for row in rows:
        by_person[row.person_id].append(
            PersonReferralSummary(
                id=row.id,
                reference=row.reference,
                channel=row.channel,
                received_at=row.received_at,
                # As presenters.referral_status: signposted, or the holding case's status.
                status=row.status if row.case_id is not None else "signposted",
                urgency_code=row.urgency_code,
                route_kind=row.route_kind,
                queue_id=row.queue_id,
                case_id=row.case_id,
            )
        )
    # One event per person shown, so each young person's record lists this search.
    for m in found:
        audit.record(
            session,
            actor=actor,
            action="search",
            resource_type="person",
            resource_id=m.person.id,
            person_id=m.person.id,
            now=clock.now(),
            details={
                "criteria": criteria,
                "match": m.match,
                "referral_ids": [r.id for r in by_person[m.person.id]],
            },
        )
    return PersonSearchRead(
        matches=[
            PersonRead(
                id=m.person.id,
                nhs_number=m.person.nhs_number,
                given_name=m.person.given_name,
                family_name=m.person.family_name,
                date_of_birth=m.person.date_of_birth,
                postcode=m.person.postcode,
                send=m.person.send,
                looked_after=m.person.looked_after,
                match=m.match,
                matched_on=list(m.matched_on),
                referrals=by_person[m.person.id],
            )
            for m in found
        ]
    )
