"""Staff person search: find someone already known, with their referrals."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query

from app.deps import ClockDep, SessionDep, StaffDep
from app.errors import Unprocessable
from app.presenters import person_search_read
from app.responses import errors_for
from app.schemas.common import Name, NhsNumber, Postcode
from app.schemas.person import PersonSearchRead
from app.services.person_search import PersonQuery, find_people

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
    query = PersonQuery(
        nhs_number=nhs_number,
        family_name=family_name,
        given_name=given_name,
        date_of_birth=date_of_birth,
        postcode=postcode,
    )
    found = await find_people(session, query, actor=actor, now=clock.now())
    return person_search_read(found)
