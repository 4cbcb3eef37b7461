"""Intake by staff and referring systems, the triage preview, and reading a referral back."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query, Request, Response

from app.deps import ActorDep, ClockDep, JsonBody, RulesetDep, SessionDep, SettingsDep, StaffDep
from app.errors import Forbidden, IdempotencyKeyReused, Unprocessable
from app.models import Case, Referral, TriageDecision
from app.presenters import referral_read
from app.responses import ERROR_RESPONSES, errors_for
from app.schemas.referral import (
    DecisionRead,
    PersonLinkDecision,
    ReferralCreate,
    ReferralListRead,
    ReferralRead,
)
from app.services import referrals
from app.services.intake import check_site, facts_from, has_contact_route, submit_referral
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
    try:
        result = await submit_referral(
            session,
            body=body,
            raw_payload=raw,
            actor=actor,
            ruleset=ruleset,
            now=clock.now(),
            idempotency_key=idempotency_key,
            idempotency_ttl=timedelta(hours=settings.idempotency_key_ttl_hours),
            signposting=request.app.state.signposting,
            messages=request.app.state.message_policy,
        )
    except IdempotencyKeyReused as exc:
        # The key came in the Idempotency-Key header: the client fixes it there.
        raise IdempotencyKeyReused(
            "This Idempotency-Key was used with a different request body. "
            "Use a new key for a new referral.",
            errors=[
                {
                    "field": "header:Idempotency-Key",
                    "message": "reused with a different body",
                    "type": "idempotency_key_reused",
                }
            ],
        ) from exc
    if result.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    response.headers["Location"] = f"/v1/referrals/{result.referral.id}"
    return await _present(
        session,
        actor,
        result.referral,
        result.decision,
        result.case,
        person_existed=result.person_existed,
    )


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
    facts = facts_from(body, clock.now(), contact_route=has_contact_route(body, actor))
    return DecisionRead.model_validate(evaluate(facts, ruleset).to_dict())


@router.get(
    "/referrals/{referral_id}",
    response_model=ReferralRead,
    responses=errors_for(401, 403, 404, 422),
    summary="Read a referral (a referring system: only its own)",
)
async def get_referral(
    referral_id: uuid.UUID, session: SessionDep, actor: ActorDep, clock: ClockDep
) -> ReferralRead:
    stored = await referrals.read_referral(session, actor, referral_id, now=clock.now())
    return await _present(session, actor, stored.referral, stored.decision, stored.case)


async def _present(
    session: SessionDep,
    actor: ActorDep,
    referral: Referral,
    decision: TriageDecision,
    case: Case | None,
    *,
    person_existed: bool | None = None,
) -> ReferralRead:
    """Staff see everything; a referring system sees what its own referral told us, and the
    case's state only when its own referral opened the case."""
    if actor.is_staff:
        return referral_read(
            referral, decision, case, for_staff=True, person_existed=person_existed
        )
    visible = await referrals.case_visible(session, actor, referral, case)
    return referral_read(referral, decision, case, for_staff=False, case_visible=visible)


@router.get(
    "/referrals",
    response_model=ReferralListRead,
    responses=errors_for(401, 403, 422),
    summary="Find a referral by its reference (staff)",
)
async def find_referrals(
    session: SessionDep,
    actor: StaffDep,
    clock: ClockDep,
    reference: Annotated[
        str,
        Query(
            min_length=1,
            max_length=32,
            description="the reference the young person or referrer was given, e.g. FD-1A2B-3C4D "
            "(any case; dashes optional)",
        ),
    ],
) -> ReferralListRead:
    stored = await referrals.read_by_reference(session, actor, reference, now=clock.now())
    if stored is None:
        return ReferralListRead(items=[])
    return ReferralListRead(
        items=[referral_read(stored.referral, stored.decision, stored.case, for_staff=True)]
    )


@router.post(
    "/referrals/{referral_id}/person-link",
    response_model=ReferralRead,
    dependencies=[JsonBody],
    responses=errors_for(400, 401, 403, 404, 409, 415, 422),
    summary="Confirm or reject a public self-referral's proposed match with a known person",
)
async def decide_person_link(
    referral_id: uuid.UUID,
    body: Annotated[PersonLinkDecision, Body()],
    session: SessionDep,
    actor: StaffDep,
    clock: ClockDep,
) -> ReferralRead:
    stored = await referrals.decide_person_link(
        session,
        referral_id=referral_id,
        confirm=body.decision == "confirm",
        actor=actor,
        now=clock.now(),
    )
    return referral_read(stored.referral, stored.decision, stored.case, for_staff=True)


__all__ = ["ERROR_RESPONSES", "router"]
