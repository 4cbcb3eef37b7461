"""The public service directory and the active ruleset (staff)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from app.deps import RulesetDep, StaffDep
from app.responses import errors_for

router = APIRouter(prefix="/v1", tags=["directory"])


class QueueSummary(BaseModel):
    id: str
    name: str
    kind: str
    locality_id: str | None
    open_24_7: bool


class LocalityRead(BaseModel):
    id: str
    name: str
    postcode_districts: list[str]
    community_base: QueueSummary
    one_stop_shop: QueueSummary


class ServicesRead(BaseModel):
    ruleset_version: str
    localities: list[LocalityRead]
    queues: list[QueueSummary]


class RulesetRead(BaseModel):
    version: str
    label: str
    content: dict[str, Any]


@router.get("/services", response_model=ServicesRead, summary="Sites, localities and districts")
async def list_services(ruleset: RulesetDep) -> ServicesRead:
    queues = {
        q.id: QueueSummary(
            id=q.id, name=q.name, kind=q.kind, locality_id=q.locality_id, open_24_7=q.open_24_7
        )
        for q in ruleset.queues
    }
    return ServicesRead(
        ruleset_version=ruleset.version,
        localities=[
            LocalityRead(
                id=loc.id,
                name=loc.name,
                postcode_districts=list(loc.postcode_districts),
                community_base=queues[loc.community_base_queue_id],
                one_stop_shop=queues[loc.one_stop_shop_queue_id],
            )
            for loc in ruleset.localities
        ],
        queues=list(queues.values()),
    )


@router.get(
    "/rulesets/current",
    response_model=RulesetRead,
    responses=errors_for(401, 403),
    summary="The active ruleset: version and content",
)
async def current_ruleset(ruleset: RulesetDep, actor: StaffDep) -> RulesetRead:
    return RulesetRead(version=ruleset.version, label=ruleset.label, content=ruleset.content)
