"""Public signposting: the services that fit an age, a postcode and needs (no login)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from app.deps import RulesetDep
from app.errors import Unprocessable
from app.responses import errors_for
from app.schemas.common import NEED_MAX_CHARS, NEEDS_MAX_ITEMS
from app.schemas.signposting import SignpostingRead, SignpostServiceRead
from app.signposting import SignpostingDirectory, SignpostQuery, signposting_for
from app.signposting.directory import MAX_AGE_YEARS_ALLOWED
from app.triage.postcodes import postcode_district

router = APIRouter(prefix="/v1", tags=["signposting"])


def _needs(raw: list[str]) -> frozenset[str]:
    """``needs=anxiety,low_mood`` or ``needs=anxiety&needs=low_mood``: lower-case words."""
    needs = [n.strip().lower() for value in raw for n in value.split(",") if n.strip()]
    if len(needs) > NEEDS_MAX_ITEMS:
        raise Unprocessable(f"Give at most {NEEDS_MAX_ITEMS} needs.", field="needs")
    for need in needs:
        if len(need) > NEED_MAX_CHARS or not all(c.isalnum() or c in "_ -" for c in need):
            raise Unprocessable(
                "Each need is a short word such as anxiety or low_mood.", field="needs"
            )
    return frozenset(needs)


@router.get(
    "/signposting",
    response_model=SignpostingRead,
    responses=errors_for(422),
    summary="Services that fit an age, postcode and needs: local first, national last (public)",
)
async def find_signposting(
    request: Request,
    ruleset: RulesetDep,
    age: Annotated[
        int | None,
        Query(
            ge=0, le=MAX_AGE_YEARS_ALLOWED, description="age in whole years; leave out if unknown"
        ),
    ] = None,
    postcode: Annotated[
        str | None,
        Query(max_length=10, description="a full postcode or its district (NR1)"),
    ] = None,
    needs: Annotated[
        list[str] | None,
        Query(max_length=NEEDS_MAX_ITEMS, description="needs, comma-separated or repeated"),
    ] = None,
) -> SignpostingRead:
    directory: SignpostingDirectory = request.app.state.signposting
    district = None
    if postcode is not None and postcode.strip():
        district = postcode_district(postcode)
        if district is None:
            raise Unprocessable(
                "postcode is not a UK postcode or postcode district (such as NR1 3AB or NR1).",
                field="postcode",
            )
    query = SignpostQuery(
        age_years=age,
        postcode_district=district,
        in_area=district is None or ruleset.locality_for_district(district) is not None,
        needs=_needs(needs or []),
    )
    return SignpostingRead(
        directory_version=directory.version,
        services=[SignpostServiceRead(**s) for s in signposting_for(directory, query)],
    )
