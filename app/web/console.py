"""The call-handler console: sign in, find a person, record a phone referral, see the queues.

Staff sign in by pasting a bearer token from the identity provider (``frontdoor token`` locally);
it is checked with the same verifier as the API and kept in an HttpOnly, SameSite=Strict cookie
scoped to ``/console``. Every page calls the same services as the API (person search, triage,
intake) and records the same audit events for reads of person and referral data.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData

from app.authz import can_see_queue
from app.config import Settings
from app.content import URGENT_CODES
from app.deps import ClockDep, RulesetDep, SessionDep, SettingsDep, authenticate_staff
from app.equity import ethnic_category_display, gender_display
from app.errors import Forbidden, IdempotencyKeyReused, Unauthenticated, Unprocessable
from app.models import Person, Referral, TriageDecision
from app.models.base import is_uuid as _is_uuid  # the one shared helper
from app.presenters import referral_status
from app.schemas.referral import DecisionRead, PhoneReferralCreate
from app.security import Actor, Role
from app.services import audit
from app.services.intake import check_site, facts_from, submit_referral
from app.services.notifications import list_notifications, mask_recipient
from app.services.person_search import PersonQuery, find_people, open_cases_for
from app.services.queues import queue_overview
from app.services.referral_views import referral_view
from app.services.referrals import find_by_reference, normalise_reference
from app.services.staff import staff_names
from app.triage import Ruleset, evaluate
from app.triage.decision import UrgencyCode
from app.web.forms import (
    NEEDS,
    PHONE_REFERRAL_ORDER,
    STAFF_ETHNIC_OPTIONS,
    STAFF_GENDER_OPTIONS,
    ParsedForm,
    parse_person_search,
    parse_phone_referral,
)
from app.web.signing import (
    CSRF_FIELD,
    CSRF_HEADER,
    STAFF_COOKIE,
    STAFF_COOKIE_PATH,
    cookie_options,
    csrf_valid,
)
from app.web.templating import humanise, render, templates

router = APIRouter(prefix="/console", include_in_schema=False)

# A pasted token longer than this is not one of ours.
TOKEN_MAX_CHARS = 8192
# Generous for "fd 7k3m q9t2" and the like; anything longer is not a reference.
REFERENCE_MAX_CHARS = 40


class SignInRequired(Exception):
    """No usable staff sign-in: browsers are sent to the sign-in page, scripts get a 401."""

    def __init__(self, reason: str | None = None) -> None:
        super().__init__(reason or "sign in required")
        self.reason = reason


class ReportsOnly(Exception):
    """A commissioner on a console page other than the reports: sent to the reports (their
    sign-in kept), scripts get a 403. Nothing person-level is ever shown to them."""


async def console_actor(request: Request) -> Actor:
    """The signed-in member of staff, from the console's sign-in cookie."""
    token = request.cookies.get(STAFF_COOKIE)
    if not token:
        raise SignInRequired()
    try:
        # As the API does: verified, and recorded as staff the service has seen.
        actor = await authenticate_staff(request, token)
    except Forbidden as exc:
        if await _is_commissioner(request, token):
            raise ReportsOnly() from exc
        raise SignInRequired(exc.detail) from exc
    except Unauthenticated as exc:
        raise SignInRequired(exc.detail) from exc
    if not isinstance(actor, Actor) or not actor.is_staff:
        raise SignInRequired("Only Front Door staff can use the console.")
    request.state.actor = actor
    return actor


ConsoleActor = Annotated[Actor, Depends(console_actor)]


async def _is_commissioner(request: Request, token: str) -> bool:
    try:
        actor = await request.app.state.token_verifier.authenticate(token)
    except (Unauthenticated, Forbidden):
        return False
    return isinstance(actor, Actor) and actor.role == Role.COMMISSIONER


async def _reports_only(request: Request, exc: Exception) -> Response:
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse(
            {"type": "forbidden", "detail": "Commissioners see the reports only."},
            status_code=403,
        )
    return RedirectResponse("/console/reports", status_code=303)


async def _sign_in_required(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SignInRequired)
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse(
            {"type": "unauthenticated", "detail": "Sign in to the console again."},
            status_code=401,
        )
    response = RedirectResponse(
        "/console/sign-in" + ("?expired=1" if exc.reason else ""), status_code=303
    )
    if exc.reason:
        response.delete_cookie(STAFF_COOKIE, path=STAFF_COOKIE_PATH)
    return response


def install_handlers(app: FastAPI) -> None:
    """Register the console's sign-in redirect (the API's handlers stay JSON)."""
    app.add_exception_handler(SignInRequired, _sign_in_required)
    app.add_exception_handler(ReportsOnly, _reports_only)


def _page(
    request: Request,
    name: str,
    actor: Actor | None,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        name,
        {"actor": actor, "nav_items": nav_items(actor), **(context or {})},
        status_code=status_code,
    )


# Every member of staff: find a person, record a referral, see the queues.
NAV_ALL = (
    ("search", "/console", "Find a person"),
    ("new", "/console/referrals/new", "Record a phone referral"),
    ("queues", "/console/queues", "Queues"),
)
# Roles that hold or support cases (practitioners, duty clinicians, team leads) also see their
# own cases; team leads also the cases past or near respond-by across their queues.
NAV_MY_CASES = ("my-cases", "/console/my-cases", "My cases")
NAV_DUE = ("due", "/console/due", "Breaches and due soon")
# Team leads, admins and commissioners read the aggregate reports; commissioners nothing else.
NAV_REPORTS = ("reports", "/console/reports", "Reports")
# Admins: the stored rulesets and the what-if replay of a candidate (app/web/rules_console.py).
NAV_RULES = ("rules", "/console/rules", "Rules")


def nav_items(actor: Actor | None) -> tuple[tuple[str, str, str], ...]:
    """The console's menu for the signed-in member of staff (call handlers: the first three)."""
    if actor is None:
        return ()
    if actor.role == Role.COMMISSIONER:
        return (NAV_REPORTS,)
    items: tuple[tuple[str, str, str], ...] = NAV_ALL
    if actor.has_role(Role.PRACTITIONER, Role.DUTY_CLINICIAN, Role.TEAM_LEAD):
        items += (NAV_MY_CASES,)
    if actor.has_role(Role.TEAM_LEAD):
        items += (NAV_DUE,)
    if actor.has_role(Role.TEAM_LEAD, Role.ADMIN):
        items += (NAV_REPORTS,)
    if actor.has_role(Role.ADMIN):
        items += (NAV_RULES,)
    return items


def _forbidden_page(request: Request, actor: Actor | None = None) -> Response:
    return _page(
        request,
        "console/problem.html",
        actor,
        {
            "title": "Your form could not be sent safely",
            "message": "Go back, reload the page and try again.",
        },
        status_code=403,
    )


# Sign in and out -----------------------------------------------------------------------------


@router.get("/sign-in")
async def sign_in_page(request: Request, settings: SettingsDep, expired: str = "") -> Response:
    """Paste a staff token to sign in."""
    errors = {"token": "Your sign-in has ended. Sign in again."} if expired else {}
    return _sign_in(request, settings, errors)


def _sign_in(
    request: Request, settings: Settings, errors: dict[str, str], status_code: int = 200
) -> Response:
    summary = [{"href": "#token", "text": message} for message in errors.values()]
    return _page(
        request,
        "console/sign_in.html",
        None,
        {"errors": errors, "error_summary": summary, "local": not settings.is_production},
        status_code=status_code,
    )


@router.post("/sign-in")
async def sign_in(request: Request, settings: SettingsDep) -> Response:
    """Check the pasted token with the API's verifier and keep it in a console-only cookie."""
    form = await request.form()
    if not csrf_valid(request, str(form.get(CSRF_FIELD, ""))):
        return _sign_in(
            request,
            settings,
            {"token": "Your sign-in could not be sent safely. Try again."},
            status_code=403,
        )
    token = str(form.get("token", "")).strip()
    if token.lower().startswith("bearer "):
        token = token[len("bearer ") :].strip()
    if not token:
        return _sign_in(request, settings, {"token": "Paste your access token"}, 422)
    if len(token) > TOKEN_MAX_CHARS:
        return _sign_in(request, settings, {"token": "This is not a Front Door access token"}, 422)
    try:
        actor = await request.app.state.token_verifier.authenticate(token)
    except (Unauthenticated, Forbidden) as exc:
        return _sign_in(request, settings, {"token": exc.detail}, 422)
    if not isinstance(actor, Actor) or not actor.is_staff:
        return _sign_in(request, settings, {"token": "This token is not for staff"}, 422)
    home = "/console/reports" if actor.role == Role.COMMISSIONER else "/console"
    response = RedirectResponse(home, status_code=303)
    response.set_cookie(STAFF_COOKIE, token, **cookie_options(settings, path=STAFF_COOKIE_PATH))
    return response


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    """Forget the sign-in cookie."""
    form = await request.form()
    if not csrf_valid(request, str(form.get(CSRF_FIELD, ""))):
        return _forbidden_page(request)
    response = RedirectResponse("/console/sign-in", status_code=303)
    response.delete_cookie(STAFF_COOKIE, path=STAFF_COOKIE_PATH)
    return response


# Find a person -------------------------------------------------------------------------------


@router.get("")
async def home(request: Request, actor: ConsoleActor) -> Response:
    """Find a person: the console's start page."""
    return _page(
        request,
        "console/search.html",
        actor,
        {"nav": "search", "values": {}, "errors": {}, "error_summary": [], "results": None},
    )


@router.post("/search")
async def search(
    request: Request, actor: ConsoleActor, session: SessionDep, clock: ClockDep
) -> Response:
    """People matching an NHS number, or a last name and date of birth, with their referrals.

    A POST, so NHS numbers and names stay out of URLs, browser history and access logs.
    """
    form = await request.form()
    if not csrf_valid(request, str(form.get(CSRF_FIELD, ""))):
        return _forbidden_page(request, actor)
    typed_reference = _typed_reference(form)
    if typed_reference is not None:
        return await _find_reference(request, actor, session, clock.now(), typed_reference)
    query = parse_person_search(form)
    if query.errors:
        return _page(
            request,
            "console/search.html",
            actor,
            {
                "nav": "search",
                "values": query.values,
                "errors": query.errors,
                "error_summary": query.summary(),
                "results": None,
            },
            status_code=422,
        )
    # The same service, referrals and audit events as GET /v1/persons.
    found = await find_people(
        session,
        PersonQuery(
            nhs_number=query.nhs_number,
            family_name=query.family_name,
            given_name=query.given_name,
            date_of_birth=query.date_of_birth,
            postcode=query.postcode,
        ),
        actor=actor,
        now=clock.now(),
        via="console",
    )
    open_cases = await open_cases_for(session, [f.person.id for f in found])
    names = await staff_names(
        session, [c.key_worker_id for c in open_cases.values() if c.key_worker_id]
    )
    results = [
        {"match": f, "open_case": open_cases.get(f.person.id), "referrals": f.referrals}
        for f in found
    ]
    return _page(
        request,
        "console/search.html",
        actor,
        {
            "nav": "search",
            "values": query.values,
            "errors": {},
            "error_summary": [],
            "results": results,
            "open_urgent": _open_urgent,
            "staff_names": names,
        },
    )


def _typed_reference(form: FormData) -> str | None:
    """A referral reference typed in the search: in its own box, or in the NHS number box (a
    reference has letters, an NHS number never does)."""
    typed = str(form.get("reference", "")).strip()
    if typed:
        return typed[:REFERENCE_MAX_CHARS]
    nhs_box = str(form.get("nhs_number", "")).strip()
    if any(ch.isalpha() for ch in nhs_box) and normalise_reference(nhs_box) is not None:
        return nhs_box[:REFERENCE_MAX_CHARS]
    return None


async def _find_reference(
    request: Request,
    actor: Actor,
    session: AsyncSession,
    now: datetime,
    typed: str,
) -> Response:
    """Open the referral a reference names (any case, with or without dashes), or say why not."""
    values = {"reference": typed}
    reference = normalise_reference(typed)
    if reference is None:
        errors = {"reference": "Enter a reference like FD-7K3M-Q9T2: FD and 8 letters or numbers"}
        return _page(
            request,
            "console/search.html",
            actor,
            {
                "nav": "search",
                "values": values,
                "errors": errors,
                "error_summary": [{"href": "#reference", "text": errors["reference"]}],
                "results": None,
            },
            status_code=422,
        )
    referral = await find_by_reference(session, reference)
    audit.record(
        session,
        actor=actor,
        action="search",
        resource_type="referral",
        resource_id=referral.id if referral is not None else None,
        person_id=referral.person_id if referral is not None else None,
        now=now,
        details={"criteria": ["reference"], "matches": int(referral is not None), "via": "console"},
    )
    if referral is None:
        return _page(
            request,
            "console/search.html",
            actor,
            {
                "nav": "search",
                "values": {"reference": reference},
                "errors": {},
                "error_summary": [],
                "results": None,
                "reference_not_found": reference,
            },
        )
    return RedirectResponse(f"/console/referrals/{referral.id}", status_code=303)


# Record a phone referral ---------------------------------------------------------------------


def _referral_form(
    request: Request,
    actor: Actor,
    ruleset: Ruleset,
    *,
    values: dict[str, Any],
    errors: dict[str, str] | None = None,
    decision: DecisionRead | None = None,
    status_code: int = 200,
) -> Response:
    values = dict(values)
    if not _is_uuid(values.get("submission_id")):
        values["submission_id"] = str(uuid.uuid4())
    errors = errors or {}
    return _page(
        request,
        "console/referral_form.html",
        actor,
        {
            "nav": "new",
            "values": values,
            "errors": errors,
            "error_summary": ParsedForm(values=values, errors=errors).summary(PHONE_REFERRAL_ORDER),
            "needs": NEEDS,
            "gender_options": STAFF_GENDER_OPTIONS,
            "ethnic_options": STAFF_ETHNIC_OPTIONS,
            "decision": decision,
            "meanings": _meanings(ruleset),
        },
        status_code=status_code,
    )


def _meanings(ruleset: Ruleset) -> dict[str, str]:
    """What each urgency code means, from the ruleset in force (not restated here)."""
    return {code.value: str(meaning) for code, meaning in ruleset.urgency.meanings.items()}


def _preview(body: PhoneReferralCreate, ruleset: Ruleset, now: datetime) -> DecisionRead:
    """The decision ``POST /v1/triage/evaluate`` would give: the same engine, nothing stored."""
    check_site(body, ruleset)
    return DecisionRead.model_validate(evaluate(facts_from(body, now), ruleset).to_dict())


@router.get("/referrals/new")
async def new_referral(
    request: Request,
    actor: ConsoleActor,
    session: SessionDep,
    ruleset: RulesetDep,
    clock: ClockDep,
    person_id: str = "",
) -> Response:
    """A blank phone referral, or one started from a person found by search."""
    values: dict[str, Any] = {}
    if _is_uuid(person_id):
        person = await session.get(Person, uuid.UUID(person_id))
        if person is not None:
            audit.record(
                session,
                actor=actor,
                action="read",
                resource_type="person",
                resource_id=person.id,
                person_id=person.id,
                now=clock.now(),
                details={"via": "console_new_referral"},
            )
            values = _person_values(person)
    return _referral_form(request, actor, ruleset, values=values)


def _person_values(person: Person) -> dict[str, Any]:
    """Fill the form from the record, so the caller is not asked what we already know."""
    dob = person.date_of_birth
    return {
        "nhs_number": person.nhs_number or "",
        "given_name": person.given_name or "",
        "family_name": person.family_name or "",
        "dob_day": str(dob.day) if dob else "",
        "dob_month": str(dob.month) if dob else "",
        "dob_year": str(dob.year) if dob else "",
        "postcode": person.postcode or "",
        "phone": person.phone or "",
        "email": person.email or "",
        "person_flags": [
            flag
            for flag, on in (("send", person.send), ("looked_after", person.looked_after))
            if on
        ],
    }


@router.post("/referrals/new")
async def record_referral(
    request: Request,
    actor: ConsoleActor,
    session: SessionDep,
    ruleset: RulesetDep,
    clock: ClockDep,
) -> Response:
    """Preview the decision (the "Preview decision" button) or submit the referral."""
    form = await request.form()
    if not csrf_valid(request, str(form.get(CSRF_FIELD, ""))):
        return _forbidden_page(request, actor)
    submitting = form.get("action") == "submit"
    parsed = parse_phone_referral(form, required=submitting)
    if not parsed.ok or parsed.body is None:
        return _referral_form(
            request, actor, ruleset, values=parsed.values, errors=parsed.errors, status_code=422
        )
    if not submitting:
        return _referral_form(
            request,
            actor,
            ruleset,
            values=parsed.values,
            decision=_preview(parsed.body, ruleset, clock.now()),
        )
    submission_id = parsed.values.get("submission_id")
    try:
        result = await submit_referral(
            session,
            body=parsed.body,
            raw_payload=parsed.raw_payload(),
            actor=actor,
            ruleset=ruleset,
            now=clock.now(),
            idempotency_key=f"console:{submission_id}" if _is_uuid(submission_id) else None,
            signposting=request.app.state.signposting,
            messages=request.app.state.message_policy,
        )
    except IdempotencyKeyReused:
        # Nothing half-written is committed with the error page.
        await session.rollback()
        values = {**parsed.values, "submission_id": ""}
        return _referral_form(
            request,
            actor,
            ruleset,
            values=values,
            errors={
                "form": "This referral was already recorded with different answers. Check the "
                "answers and submit again to record a new referral."
            },
            status_code=409,
        )
    except Unprocessable as exc:
        await session.rollback()
        return _referral_form(
            request,
            actor,
            ruleset,
            values=parsed.values,
            errors={"form": exc.detail},
            status_code=422,
        )
    return RedirectResponse(f"/console/referrals/{result.referral.id}?recorded=1", status_code=303)


@router.post("/referrals/preview")
async def preview_referral(
    request: Request, actor: ConsoleActor, ruleset: RulesetDep, clock: ClockDep
) -> Response:
    """The live decision preview: the form as typed so far → the decision, as JSON and HTML.

    Called by the console's script with the CSRF token in the ``X-CSRF-Token`` header.
    """
    if not csrf_valid(request, request.headers.get(CSRF_HEADER)):
        return JSONResponse(
            {"type": "forbidden", "detail": "The CSRF token is missing or wrong."},
            status_code=403,
        )
    form = await request.form()
    parsed = parse_phone_referral(form, required=False)
    decision: DecisionRead | None = None
    errors = parsed.errors
    if parsed.body is not None and not errors:
        try:
            decision = _preview(parsed.body, ruleset, clock.now())
        except Unprocessable as exc:
            errors = {"form": exc.detail}
    summary = ParsedForm(values=parsed.values, errors=errors).summary(PHONE_REFERRAL_ORDER)
    html = templates.get_template("console/_decision.html").render(
        decision=decision, meanings=_meanings(ruleset), preview_errors=summary
    )
    return JSONResponse(
        {
            "decision": decision.model_dump(mode="json") if decision else None,
            "errors": summary,
            "html": html,
        }
    )


# A referral, and the queues ------------------------------------------------------------------

REFERRER_WORDS = {
    "self": "the young person",
    "parent_carer": "the parent or carer",
    "gp": "the GP",
    "camhs": "CAMHS",
    "school": "the school or college",
    "social_care": "social care",
    "other_professional": "the professional",
}
REFERRER_LABELS = {
    "self": "The young person",
    "parent_carer": "Parent or carer",
    "gp": "GP",
    "camhs": "CAMHS",
    "school": "School or college",
    "social_care": "Social care",
    "other_professional": "Another professional",
}
CHANNEL_WORDS = {
    "phone": "phone call",
    "drop_in": "drop-in",
    "system": "referring system",
    "web": "web self-referral form",
}
RISK_QUESTIONS = (
    ("immediate_danger", "In danger now"),
    ("suicidal", "Suicidal thoughts"),
    ("self_harm", "Self-harm"),
    ("harm_to_others", "Harm to others"),
    ("safeguarding_concern", "Safeguarding concern"),
    ("supported", "Capable support around them"),
)
# ``incomplete_fields`` (API field paths) as staff read them.
INCOMPLETE_WORDS = {
    "referrer.type": "Who filled in the form",
    "referrer.name": "Referrer's name",
    "referrer.phone": "Referrer's phone number",
    "referrer.email": "Referrer's email address",
    "person.given_name": "First name",
    "person.family_name": "Last name",
    "person.date_of_birth": "Date of birth",
    "person.postcode": "Postcode",
    "person.nhs_number": "NHS number",
    "person.phone": "Phone number",
    "person.email": "Email address",
    "person.send": "SEND",
    "person.looked_after": "Looked-after or adopted",
    "camhs.status": "Help from CAMHS before",
    "request": "Help or advice",
    "needs": "What they want support with",
    "reason": "What has been happening",
    "risk.immediate_danger": "In danger now",
    "risk.suicidal": "Suicidal thoughts",
    "risk.self_harm": "Self-harm",
    "risk.harm_to_others": "Harm to others",
    "risk.safeguarding_concern": "Safeguarding concern",
    "risk.supported": "Capable support around them",
    "preferences.setting": "Where they would like to be seen",
    "consent.to_referral": "Consent to the referral",
    "consent.to_share": "Consent to share",
    "consent.parent_carer_aware": "Parent or carer aware",
    "consent.gillick": "Gillick assessment",
}


def _yes_no(value: object, unknown: str = "Not known") -> str:
    if value is True:
        return "Yes"
    if value is False:
        return "No"
    return unknown


RISK_ANSWER_WORDS = {
    "suicidal": {
        "none": "No",
        "thoughts": "Thoughts of ending their life",
        "plan": "Thoughts, and a plan for how",
        "intent": "Intends to act on the thoughts soon",
    },
    "self_harm": {
        "none": "No",
        "past": "In the past, not in the last few months",
        "recent": "In the last few weeks",
        "current": "Hurting themselves now or today",
    },
    "harm_to_others": {
        "none": "No",
        "thoughts": "Thoughts of hurting someone",
        "threats": "Has threatened to",
        "imminent": "Might do it soon",
    },
}


def _risk_answer(question: str, value: object) -> str:
    """A stored risk answer in words; None is *not asked*, never "no"."""
    if value is None:
        return "Not known" if question == "supported" else "Not asked"
    if isinstance(value, bool):
        return _yes_no(value)
    return RISK_ANSWER_WORDS.get(question, {}).get(str(value)) or humanise(str(value))


class ReferralAndDecision(Protocol):
    """A referral with its decision (a referral page's view, or one referral of a case)."""

    @property
    def referral(self) -> Referral: ...

    @property
    def decision(self) -> TriageDecision: ...


def what_we_were_told(view: ReferralAndDecision) -> dict[str, Any]:
    """Everything the referral said, from its normalised body, in the words staff read."""
    told: dict[str, Any] = view.referral.normalised or {}
    person = told.get("person") or {}
    referrer = told.get("referrer") or {}
    consent = told.get("consent") or {}
    camhs = told.get("camhs") or {}
    snapshot_risk = (view.decision.input_snapshot or {}).get("risk")
    risk = snapshot_risk if isinstance(snapshot_risk, dict) else (told.get("risk") or {})
    not_answered = set((view.decision.output or {}).get("risk_not_answered") or [])
    referrer_type = str(referrer.get("type") or view.referral.referrer_type)
    gillick = consent.get("gillick") or None
    incomplete = list(view.referral.incomplete_fields or [])
    return {
        "channel": CHANNEL_WORDS.get(view.referral.channel, view.referral.channel),
        "referrer_type": referrer_type,
        "referrer_words": REFERRER_WORDS.get(referrer_type, humanise(referrer_type).lower()),
        "referrer_label": REFERRER_LABELS.get(referrer_type, humanise(referrer_type)),
        "referrer": referrer,
        "person": person,
        "reason": view.referral.reason,
        "needs": [NEEDS.get(need, humanise(need)) for need in told.get("needs") or []],
        "request": told.get("request"),
        "camhs": camhs,
        "setting": (told.get("preferences") or {}).get("setting"),
        "risk": [
            (
                label,
                "Not asked"
                if question in not_answered
                else _risk_answer(question, risk.get(question)),
            )
            for question, label in RISK_QUESTIONS
        ],
        "consent": [
            ("Consents to the referral", _yes_no(consent.get("to_referral"))),
            ("Agrees to share with other services", _yes_no(consent.get("to_share"), "Not asked")),
            ("Parent or carer aware", _yes_no(consent.get("parent_carer_aware"))),
        ],
        "share_with": consent.get("share_with") or [],
        "gillick": gillick,
        "incomplete": [INCOMPLETE_WORDS.get(path, humanise(path)) for path in incomplete],
        # Equity monitoring, from the referral's own columns (staff only; never a referrer).
        "equity": [
            ("Gender", gender_display(view.referral.gender_code) or "Not recorded"),
            (
                "Ethnic group",
                ethnic_category_display(view.referral.ethnic_category_code) or "Not recorded",
            ),
        ],
    }


def _open_urgent(case: Any) -> bool:
    """An open case at urgency A to C: it must stand out wherever it is listed."""
    return (
        case is not None
        and case.status != "closed"
        and case.urgency_code in {code.value for code in URGENT_CODES}
    )


@router.get("/referrals/{referral_id}")
async def referral_page(
    request: Request,
    referral_id: str,
    actor: ConsoleActor,
    session: SessionDep,
    ruleset: RulesetDep,
    clock: ClockDep,
    recorded: str = "",
) -> Response:
    """A referral with its decision: what to tell the caller before hanging up."""
    view = await referral_view(session, uuid.UUID(referral_id)) if _is_uuid(referral_id) else None
    if view is None:
        return _page(
            request,
            "console/problem.html",
            actor,
            {"title": "Referral not found", "message": "There is no referral with this id."},
            status_code=404,
        )
    now = clock.now()
    audit.record(
        session,
        actor=actor,
        action="read",
        resource_type="referral",
        resource_id=view.referral.id,
        person_id=view.referral.person_id,
        now=now,
        details={"via": "console"},
    )
    if view.proposed is not None:
        # The known person an unverified referral may be: showing them is a read of them.
        audit.record(
            session,
            actor=actor,
            action="read",
            resource_type="person",
            resource_id=view.proposed.person.id,
            person_id=view.proposed.person.id,
            now=now,
            details={"via": "console_proposed_link", "referral_id": str(view.referral.id)},
        )
    decision = DecisionRead.model_validate(view.decision.output)
    return _page(
        request,
        "console/referral.html",
        actor,
        {
            "nav": None,
            "view": view,
            "decision": decision,
            "told": what_we_were_told(view),
            "channel": view.referral.channel,
            "status": referral_status(view.referral, view.case),
            "meanings": _meanings(ruleset),
            "recorded": bool(recorded),
            "urgent": UrgencyCode(decision.urgency.code) in URGENT_CODES,
            "open_urgent": _open_urgent,
            "person_link": view.referral.person_link,
            "staff_names": view.staff_names,
            # Admins see every message about the referral ("what would have been sent").
            "messages": (
                await list_notifications(session, referral_id=view.referral.id, limit=50)
                if actor.role == Role.ADMIN
                else None
            ),
            "mask_recipient": mask_recipient,
        },
    )


@router.get("/queues")
async def queues_page(
    request: Request, actor: ConsoleActor, session: SessionDep, ruleset: RulesetDep, clock: ClockDep
) -> Response:
    """Every queue with its open and breached case counts (counts only, no personal data).

    The same overview as ``GET /v1/queues`` (open to every staff role), from the queues service.
    """
    now = clock.now()
    queues = await queue_overview(session, now=now)
    # The directory's own order, as GET /v1/queues gives it (crisis, duty, … then the sites);
    # retired queues last.
    order = {queue.id: index for index, queue in enumerate(ruleset.queues)}
    queues.sort(key=lambda c: (order.get(c.queue.id, len(order)), c.queue.name))
    return _page(
        request,
        "console/queues.html",
        actor,
        {
            "nav": "queues",
            "queues": queues,
            "now": now,
            # The queues whose worklists the caller may open (none for call handlers).
            "workable": {
                c.queue.id for c in queues if can_see_queue(actor, c.queue.id, c.queue.kind)
            },
        },
    )


__all__ = ["SignInRequired", "install_handlers", "router"]
