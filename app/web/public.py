"""The public pages: the self-referral form, its confirmation, and where to get help now.

The form posts to ``/refer``, which submits through the same intake service as
``POST /v1/self-referrals`` and then redirects (post/redirect/get) to the confirmation, so a
refresh never sends the referral twice. The confirmation's contents travel in a signed cookie,
not the URL, so the reference is not left in browser history or server logs.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.content import URGENT_CODES, crisis_block, next_steps
from app.deps import ClockDep, RulesetDep, SessionDep, SettingsDep
from app.errors import (
    IdempotencyKeyReused,
    TooManyRequests,
    Unprocessable,
    problem_json,
    render_problems_under,
)
from app.models.base import is_uuid
from app.ratelimit import limit_self_referrals
from app.schemas.referral import SelfReferralCreate
from app.security import PUBLIC
from app.services.intake import IntakeResult, facts_from, submit_referral
from app.signposting import SignpostingDirectory, service_public
from app.triage import Ruleset, evaluate
from app.triage.decision import RouteKind, UrgencyCode
from app.triage.urgency import NO_CONTACT_ROUTE
from app.web.forms import (
    ETHNIC_OPTIONS,
    GENDER_OPTIONS,
    MISSING_LABELS,
    NEEDS,
    SELF_REFERRAL_ORDER,
    ParsedForm,
    parse_self_referral,
)
from app.web.signing import (
    CONFIRMATION_COOKIE,
    CSRF_FIELD,
    confirmation_cookie,
    cookie_options,
    csrf_valid,
    unsign,
)
from app.web.templating import render

router = APIRouter(include_in_schema=False)
log = structlog.get_logger(__name__)

# How long the confirmation page can be reopened (it shows the reference and, when urgent, the
# crisis contacts); after that it is gone from a shared device.
CONFIRMATION_MAX_AGE_SECONDS = 2 * 60 * 60
FORM_TEMPLATE = "refer/form.html"


def _form_page(
    request: Request,
    *,
    values: dict[str, Any] | None = None,
    parsed: ParsedForm[Any] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    values = dict(values if values is not None else (parsed.values if parsed else {}))
    # A new id per form shown: sending the same form twice (a double tap) makes one referral.
    if not is_uuid(values.get("submission_id")):
        values["submission_id"] = str(uuid.uuid4())
    errors = errors if errors is not None else (parsed.errors if parsed else {})
    summary = ParsedForm(values=values, errors=errors).summary(SELF_REFERRAL_ORDER)
    return render(
        request,
        FORM_TEMPLATE,
        {
            "values": values,
            "errors": errors,
            "error_summary": summary,
            "needs": NEEDS,
            "gender_options": GENDER_OPTIONS,
            "ethnic_options": ETHNIC_OPTIONS,
        },
        status_code=status_code,
    )


@router.get("/")
async def home() -> RedirectResponse:
    """The front door's front page is the self-referral form (it links to urgent help)."""
    return RedirectResponse("/refer", status_code=303)


@router.get("/refer")
async def refer_form(request: Request) -> Response:
    """The self-referral form."""
    return _form_page(request)


@router.post("/refer")
async def refer_submit(
    request: Request,
    session: SessionDep,
    ruleset: RulesetDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> Response:
    """Check the answers, submit them through intake, then show the confirmation."""
    form = await request.form()
    try:
        # The same allowance as POST /v1/self-referrals, so the form is no way round it; spent
        # by every attempt, valid or not, as the API's is.
        await limit_self_referrals(request)
    except TooManyRequests as exc:
        # Nothing is written yet; rolled back all the same, as every page does on a domain error.
        await session.rollback()
        response = _form_page(
            request,
            values=parse_self_referral(form).values,
            errors={"form": exc.detail},
            status_code=429,
        )
        response.headers.update(exc.headers or {})
        return response
    if not csrf_valid(request, str(form.get(CSRF_FIELD, ""))):
        parsed = parse_self_referral(form)
        return _form_page(
            request,
            values=parsed.values,
            errors={
                "form": "Your answers could not be sent safely. Check them and select "
                "'Send my referral' again. If this keeps happening, make sure cookies are "
                "turned on."
            },
            status_code=403,
        )
    if form.get("website"):
        # The honeypot: hidden from people, filled in by bots. Nothing is stored.
        parsed = parse_self_referral(form)
        return _form_page(
            request,
            values=parsed.values,
            errors={"form": "Your answers could not be sent. Check them and try again."},
            status_code=422,
        )
    parsed = parse_self_referral(form)
    body = parsed.body if parsed.ok else None
    missing: list[str] = []
    incomplete: list[str] = []
    if body is None:
        # Urgent answers are never lost: at urgency C or above what is valid is stored now,
        # marked incomplete, instead of sending the young person back to the form.
        body = urgent_partial(parsed, ruleset, clock.now())
        if body is None:
            return _form_page(request, parsed=parsed, status_code=422)
        missing = parsed.missing(SELF_REFERRAL_ORDER)
        incomplete = parsed.incomplete_fields()

    submission_id = parsed.values.get("submission_id")
    key = f"web-form:{submission_id}" if is_uuid(submission_id) else None
    try:
        try:
            result = await _submit(
                request, session, parsed, body, incomplete, ruleset, clock.now(), key
            )
        except IdempotencyKeyReused:
            # The same form sent again with changed answers (back button): a new referral.
            await session.rollback()
            result = await _submit(
                request, session, parsed, body, incomplete, ruleset, clock.now(), None
            )
    except Unprocessable as exc:
        # Nothing half-written is committed with the error page.
        await session.rollback()
        return _form_page(request, parsed=parsed, errors={"form": exc.detail}, status_code=422)

    if incomplete:
        # Field names only, never what was typed.
        log.info(
            "web_referral_stored_incomplete",
            referral_id=str(result.referral.id),
            incomplete_fields=incomplete,
        )
    flags = result.decision.output.get("urgency", {}).get("flags", [])
    response = RedirectResponse("/refer/confirmation", status_code=303)
    response.set_cookie(
        CONFIRMATION_COOKIE,
        confirmation_cookie(
            settings,
            reference=result.referral.reference,
            urgency=result.decision.urgency_code,
            route=result.decision.route_kind,
            now=clock.now(),
            missing=missing,
            contact_route=NO_CONTACT_ROUTE not in flags,
            signposting=[service["id"] for service in result.referral.signposting or []],
        ),
        **cookie_options(settings, path="/refer"),
    )
    return response


def urgent_partial(
    parsed: ParsedForm[SelfReferralCreate], ruleset: Ruleset, now: datetime
) -> SelfReferralCreate | None:
    """The body made of the valid answers alone, when they reach urgency C or above."""
    if parsed.partial is None:
        return None
    decision = evaluate(facts_from(parsed.partial, now), ruleset)
    return parsed.partial if decision.urgency.code in URGENT_CODES else None


async def _submit(
    request: Request,
    session: AsyncSession,
    parsed: ParsedForm[SelfReferralCreate],
    body: SelfReferralCreate,
    incomplete: Sequence[str],
    ruleset: Ruleset,
    now: datetime,
    key: str | None,
) -> IntakeResult:
    return await submit_referral(
        session,
        body=body,
        raw_payload=parsed.raw_payload(),
        actor=PUBLIC,
        ruleset=ruleset,
        now=now,
        idempotency_key=key,
        incomplete_fields=incomplete,
        signposting=request.app.state.signposting,
        messages=request.app.state.message_policy,
    )


@router.get("/refer/confirmation")
async def refer_confirmation(request: Request, settings: SettingsDep, clock: ClockDep) -> Response:
    """The reference and what happens next; crisis contacts first when the need is urgent."""
    payload = unsign(settings, "confirmation", request.cookies.get(CONFIRMATION_COOKIE))
    issued_at = payload.get("at") if payload is not None else None
    fresh = (
        isinstance(issued_at, int)
        and 0 <= clock.now().timestamp() - issued_at < CONFIRMATION_MAX_AGE_SECONDS
    )
    if payload is None or not fresh:
        return RedirectResponse("/refer", status_code=303)
    try:
        code = UrgencyCode(payload["urgency"])
        route = RouteKind(payload["route"])
        reference = str(payload["reference"])
    except (KeyError, ValueError):
        return RedirectResponse("/refer", status_code=303)
    urgent = code in URGENT_CODES
    missing = payload.get("missing") or []
    contact_route = payload.get("contact_route", True) is not False
    # The services the referral was pointed to, by id (the cookie is too small for the stored
    # snapshot; the page lives minutes, within one directory version).
    directory: SignpostingDirectory = request.app.state.signposting
    signposted_ids = payload.get("signposting") or []
    signposting = [
        service_public(directory, directory.service_by_id[service_id])
        for service_id in signposted_ids
        if isinstance(service_id, str) and service_id in directory.service_by_id
    ]
    return render(
        request,
        "refer/confirmation.html",
        {
            "reference": reference,
            "code": code.value,
            "urgent": urgent,
            "in_danger": code is UrgencyCode.A,
            "crisis": crisis_block() if urgent else None,
            "next_steps": next_steps(code, route, reference, contact_route=contact_route),
            "signposted": route is RouteKind.SIGNPOST,
            "contact_route": contact_route,
            "signposting": signposting,
            # What was not answered or could not be used, as the form's questions (no values).
            "missing": [MISSING_LABELS[key] for key in missing if key in MISSING_LABELS],
        },
    )


@router.get("/urgent-help")
async def urgent_help(request: Request) -> Response:
    """Where to get help now: every page links here."""
    return render(request, "urgent_help.html")


def render_fault_page(
    request: Request,
    *,
    status: int,
    type_: str,
    title: str,
    detail: str,
    errors: list[dict[str, Any]] | None,
    headers: dict[str, str] | None,
) -> Response:
    """A fault on a public page is a page, not JSON: crisis contacts first, then that nothing
    was saved and to try again (a young person in crisis must never meet a bare error).
    Anything else keeps the problem JSON the pages' own handling never lets through."""
    if status < 500 and status != 413:
        return problem_json(
            request,
            status=status,
            type_=type_,
            title=title,
            detail=detail,
            errors=errors,
            headers=headers,
        )
    response = render(
        request,
        "fault.html",
        {"retry": status >= 500, "detail": detail},
        status_code=status,
    )
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


for _prefix in ("/refer", "/urgent-help"):
    render_problems_under(_prefix, render_fault_page)
