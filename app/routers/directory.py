"""The public service directory and the active ruleset (staff)."""

from __future__ import annotations

from fastapi import APIRouter

from app.deps import RulesetDep, StaffDep
from app.presenters import ruleset_read, services_read
from app.responses import errors_for
from app.schemas.directory import RulesetRead, ServicesRead

router = APIRouter(prefix="/v1", tags=["directory"])


@router.get("/services", response_model=ServicesRead, summary="Sites, localities and districts")
async def list_services(ruleset: RulesetDep) -> ServicesRead:
    return services_read(ruleset)


@router.get(
    "/rulesets/current",
    response_model=RulesetRead,
    responses=errors_for(401, 403),
    summary="The active ruleset: version and content",
)
async def current_ruleset(ruleset: RulesetDep, actor: StaffDep) -> RulesetRead:
    return ruleset_read(ruleset)
