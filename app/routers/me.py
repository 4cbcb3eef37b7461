"""The caller's own work: ``GET /v1/me/cases``, the cases they hold or support."""

from __future__ import annotations

from fastapi import APIRouter

from app.authz import can_list_own_cases
from app.case_presenters import listing_fields
from app.deps import ClockDep, SessionDep, StaffDep
from app.errors import Forbidden
from app.responses import errors_for
from app.schemas.case import MyCaseItem, MyCases
from app.services import audit
from app.services.case_reads import my_cases

router = APIRouter(prefix="/v1/me", tags=["cases"])


@router.get(
    "/cases",
    response_model=MyCases,
    responses=errors_for(401, 403, 503),
    summary="The open cases I hold (key worker) or support, most urgent first",
    description="Most urgent first (A before B …), then earliest respond_by_at. Roles that hold "
    "cases only (practitioners, duty clinicians, team leads, admins); a call handler or a "
    "referring system is 403. Every case listed is audited as seen.",
)
async def list_my_cases(session: SessionDep, actor: StaffDep, clock: ClockDep) -> MyCases:
    now = clock.now()
    if not can_list_own_cases(actor) or actor.id is None:
        await audit.record_refusal(
            session, actor=actor, action="list", resource_type="my_cases", resource_id=None, now=now
        )
        raise Forbidden("Your role does not hold cases.")
    rows = await my_cases(session, actor.id)
    await audit.record_listing(session, actor=actor, rows=rows, now=now, details={"view": "me"})
    return MyCases(
        as_of=now,
        items=[
            MyCaseItem.model_validate(
                {**listing_fields(row, now), "relationship": row.relationship}
            )
            for row in rows
        ],
    )
