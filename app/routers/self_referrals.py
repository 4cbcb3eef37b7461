"""The public self-referral: no login, a reference and what happens next, crisis help at once."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request

from app.content import URGENT_CODES, crisis_block, next_steps
from app.deps import ClockDep, JsonBody, RulesetDep, SessionDep
from app.errors import Unprocessable
from app.ratelimit import SelfReferralRateLimit
from app.responses import errors_for
from app.schemas.referral import SelfReferralCreate, SelfReferralRead
from app.security import PUBLIC
from app.services.intake import submit_referral
from app.triage.decision import RouteKind, UrgencyCode
from app.triage.urgency import NO_CONTACT_ROUTE

router = APIRouter(prefix="/v1", tags=["self-referral"])


@router.post(
    "/self-referrals",
    status_code=201,
    response_model=SelfReferralRead,
    # The rate limit runs before validation, so invalid attempts use up the allowance too.
    dependencies=[SelfReferralRateLimit, JsonBody],
    responses=errors_for(400, 413, 415, 422, 429),
    summary="A young person or parent/carer refers themselves (public, no login)",
)
async def create_self_referral(
    request: Request,
    body: Annotated[SelfReferralCreate, Body()],
    session: SessionDep,
    ruleset: RulesetDep,
    clock: ClockDep,
) -> SelfReferralRead:
    # Honeypot: hidden from people, filled in by bots. Refused openly rather than faked: a person
    # whose browser autofilled it must not be told they were referred when they were not.
    if body.website:
        raise Unprocessable("Leave this field empty.", field="website")
    raw: dict[str, Any] = await request.json()
    result = await submit_referral(
        session,
        body=body,
        raw_payload=raw,
        actor=PUBLIC,
        ruleset=ruleset,
        now=clock.now(),
        signposting=request.app.state.signposting,
        messages=request.app.state.message_policy,
    )
    decision = result.decision
    code = UrgencyCode(decision.urgency_code)
    contact_route = NO_CONTACT_ROUTE not in decision.output["urgency"]["flags"]
    # The reply says nothing about whether this person was already known (no oracle). With no
    # way to contact anyone it says so, and gives the crisis contacts whatever the urgency.
    return SelfReferralRead(
        reference=result.referral.reference,
        received_at=result.referral.received_at,
        next_steps=next_steps(
            code,
            RouteKind(decision.route_kind),
            result.referral.reference,
            contact_route=contact_route,
        ),
        contact_route=contact_route,
        crisis=(
            crisis_block(urgent=code in URGENT_CODES)
            if code in URGENT_CODES or not contact_route
            else None
        ),
        signposting=result.referral.signposting,
    )
