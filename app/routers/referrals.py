"""Intake by staff and referring systems, the triage preview, and reading a referral back."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Request, Response
from sqlalchemy import select

from app.authz import can_read_referral
from app.deps import ActorDep, ClockDep, JsonBody, RulesetDep, SessionDep, SettingsDep, StaffDep
from app.errors import Forbidden, NotFound, Unprocessable
from app.models import ApiClient, Case, Referral, TriageDecision
from app.presenters import referral_read
from app.responses import ERROR_RESPONSES, errors_for
from app.schemas.referral import DecisionRead, ReferralCreate, ReferralRead
from app.services import audit
from app.services.intake import check_site, facts_from, submit_referral
from app.triage import evaluate

router = APIRouter(prefix="/v1", tags=["referrals"])

IDEMPOTENCY_KEY_MAX_CHARS = 255


@router.post(
    "/referrals",
    status_code=201,
    response_model=ReferralRead,
    dependencies=[JsonBody],
    responses=errors_for(400, 401, 403, 413, 415, 422),
    summary="Submit a referral (staff: phone, drop-in; referring systems: system)",
)
async def create_referral(
    request: Request,
    response: Response,
    body: Annotated[ReferralCreate, Body()],
    session: SessionDep,
    actor: ActorDep,
    ruleset: RulesetDep,
    clock: ClockDep,
    settings: SettingsDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            max_length=IDEMPOTENCY_KEY_MAX_CHARS,
            description="Required for referring systems; a retry with the same key and body "
            "returns the same referral. Keys are kept for FRONTDOOR_IDEMPOTENCY_KEY_TTL_HOURS "
            "(default 72 hours).",
        ),
    ] = None,
) -> ReferralRead:
    if actor.is_system:
        if body.channel != "system":
            raise Forbidden("Referring systems submit with channel 'system'.")
        if not idempotency_key:
            raise Unprocessable(
                "Referring systems must send an Idempotency-Key header.",
                field="header:Idempotency-Key",
            )
    elif body.channel == "system":
        raise Forbidden("Channel 'system' is for referring systems (client credentials).")
    raw: dict[str, Any] = await request.json()
    result = await submit_referral(
        session,
        body=body,
        raw_payload=raw,
        actor=actor,
        ruleset=ruleset,
        now=clock.now(),
        idempotency_key=idempotency_key,
        idempotency_ttl=timedelta(hours=settings.idempotency_key_ttl_hours),
    )
    if result.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    response.headers["Location"] = f"/v1/referrals/{result.referral.id}"
    return referral_read(result.referral, result.decision, result.case)


@router.post(
    "/triage/evaluate",
    response_model=DecisionRead,
    dependencies=[JsonBody],
    responses=errors_for(400, 401, 403, 413, 415, 422),
    summary="Preview the triage decision for a referral body; stores nothing",
)
async def evaluate_referral(
    body: Annotated[ReferralCreate, Body()],
    actor: StaffDep,
    ruleset: RulesetDep,
    clock: ClockDep,
) -> DecisionRead:
    check_site(body, ruleset)
    decision = evaluate(facts_from(body, clock.now()), ruleset)
    return DecisionRead.model_validate(decision.to_dict())


@router.get(
    "/referrals/{referral_id}",
    response_model=ReferralRead,
    responses=errors_for(401, 403, 404, 422),
    summary="Read a referral (a referring system: only its own)",
)
async def get_referral(
    referral_id: uuid.UUID, session: SessionDep, actor: ActorDep, clock: ClockDep
) -> ReferralRead:
    row = (
        await session.execute(
            select(Referral, TriageDecision, Case, ApiClient.ods_code)
            .join(TriageDecision, TriageDecision.referral_id == Referral.id)
            .outerjoin(Case, Case.id == Referral.case_id)
            .outerjoin(ApiClient, ApiClient.id == Referral.submitted_by_client_id)
            .where(Referral.id == referral_id)
        )
    ).one_or_none()
    if row is None:
        raise NotFound("No referral with this id.")
    referral, decision, case, submitted_by_ods_code = row
    if not can_read_referral(
        actor,
        submitted_by_client_id=referral.submitted_by_client_id,
        submitted_by_ods_code=submitted_by_ods_code,
    ):
        await audit.record_refusal(
            session,
            actor=actor,
            action="read",
            resource_type="referral",
            resource_id=referral.id,
            person_id=referral.person_id,
            now=clock.now(),
        )
        # Another organisation's referral is indistinguishable from one that does not exist.
        raise NotFound("No referral with this id.")
    audit.record(
        session,
        actor=actor,
        action="read",
        resource_type="referral",
        resource_id=referral.id,
        person_id=referral.person_id,
        now=clock.now(),
    )
    return referral_read(referral, decision, case)


__all__ = ["ERROR_RESPONSES", "router"]
