"""What-if replay of a stored candidate ruleset over past referrals (admins).

Synchronous: the report is the response. Expect about 1-2 minutes per million referrals stored
(bench/RESULTS.md, "What-if replay"); docs/domain/rule-replay.md explains the report.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.deps import AdminDep, ClockDep, JsonBody, SessionDep
from app.errors import NotFound
from app.responses import errors_for
from app.schemas.replay import ReplayReport, ReplayRequest
from app.security import Actor
from app.services.replay import ReplayWindow, audited_replay
from app.services.rulesets import RulesetNotFound, active_ruleset, stored_ruleset
from app.triage import Ruleset

router = APIRouter(prefix="/v1", tags=["rulesets"])


async def candidate_ruleset(session: SessionDep, version: str) -> Ruleset:
    """The stored ruleset ``version``; 404 naming ``candidate_version`` when none is stored."""
    try:
        return await stored_ruleset(session, version)
    except RulesetNotFound as exc:
        raise NotFound(
            "No stored ruleset has this candidate_version.",
            errors=[{"field": "candidate_version", "message": "not stored", "type": "not_found"}],
        ) from exc


async def run_replay(
    session: SessionDep,
    actor: Actor,
    *,
    candidate_version: str,
    window: ReplayWindow,
    now: Any,
) -> dict[str, Any]:
    """Replay under the active ruleset and the candidate, audited with both versions and the
    window (ids and dates only); the report as the API returns it. Shared with the console."""
    candidate = await candidate_ruleset(session, candidate_version)
    active = await active_ruleset(session)
    report = await audited_replay(
        session, actor=actor, active=active, candidate=candidate, window=window, now=now
    )
    return report.to_dict()


@router.post(
    "/rulesets/replay",
    response_model=ReplayReport,
    response_model_by_alias=True,
    responses=errors_for(400, 401, 403, 404, 415, 422),
    dependencies=[JsonBody],
    summary="What-if: how a stored candidate ruleset would have decided past referrals "
    "(admins; synchronous, about 1-2 minutes per million referrals stored)",
)
async def replay_candidate(
    body: ReplayRequest, session: SessionDep, actor: AdminDep, clock: ClockDep
) -> dict[str, Any]:
    window = ReplayWindow(start=body.from_, end=body.to)
    return await run_replay(
        session,
        actor,
        candidate_version=body.candidate_version,
        window=window,
        now=clock.now(),
    )
