"""FHIR R4 for referring clinical systems (docs/domain/fhir-and-codes.md).

Referrals come in as BaRS-pattern messages (``$process-message``), are mapped to the JSON
API's ``SystemReferralCreate`` (``app.fhir.mapping``) and go through the same
``submit_referral``. Status goes back as our ServiceRequest and its Task. Every error under
/fhir is an OperationOutcome (``app.fhir.outcome``, registered with ``app.errors``).
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.deps import ActorDep, ClockDep, RulesetDep, SessionDep, SettingsDep
from app.errors import FrontDoorError, IdempotencyKeyReused, render_problems_under
from app.fhir.mapping import MappedReferral, map_message, warm_up
from app.fhir.outcome import FhirError, issue, render_operation_outcome
from app.fhir.questionnaire import questionnaire_resource
from app.fhir.resources import (
    capability_statement,
    response_message,
    searchset,
    service_request_resource,
    task_resource,
)
from app.fhir.status import task_state
from app.fhir.systems import FHIR_BASE_PATH, FHIR_JSON, QUESTIONNAIRE_ID, REFERRAL_REFERENCE
from app.presenters import decision_output_for
from app.security import Actor
from app.services import referrals
from app.services.intake import submit_referral
from app.services.referrals import StoredReferral
from app.triage import Ruleset

# Described by its CapabilityStatement (GET /fhir/R4/metadata), not by /openapi.json: FHIR
# clients read the former, and the OpenAPI checks (problem JSON, schemathesis) are for /v1.
router = APIRouter(prefix=FHIR_BASE_PATH, tags=["fhir"], include_in_schema=False)
render_problems_under("/fhir/", render_operation_outcome)
# fhir.resources builds its validators lazily: build them with the app, not in a referral.
warm_up()

# The same pattern the request-id middleware accepts, so the X-Request-Id echoed back is the
# caller's own (app/middleware.py); a UUID fits.
REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
# FHIR retries share no key space with the JSON API's Idempotency-Key.
IDEMPOTENCY_SCOPE_PREFIX = "fhir:"
# When the capability statement's content last changed (its ``date``).
CAPABILITY_PUBLISHED_AT = datetime(2026, 12, 1, tzinfo=UTC)


def fhir_response(body: dict[str, Any], status_code: int = 200, **headers: str) -> Response:
    return Response(
        orjson.dumps(body), status_code=status_code, media_type=FHIR_JSON, headers=headers
    )


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


@router.get(
    "/metadata",
    response_class=Response,
    summary="FHIR CapabilityStatement: exactly what this FHIR API supports (public)",
)
async def metadata(request: Request) -> Response:
    return fhir_response(
        capability_statement(_base_url(request), published_at=CAPABILITY_PUBLISHED_AT)
    )


@router.get(
    "/Questionnaire/{questionnaire_id}",
    response_class=Response,
    summary="The Questionnaire a referral message may answer (public)",
)
async def read_questionnaire(questionnaire_id: str) -> Response:
    if questionnaire_id != QUESTIONNAIRE_ID:
        raise FhirError(
            404,
            f"There is no such Questionnaire; ours is {QUESTIONNAIRE_ID}.",
            code="not-found",
        )
    return fhir_response(questionnaire_resource())


@router.post(
    "/$process-message",
    response_class=Response,
    status_code=201,
    summary="Submit a referral as a FHIR message (referring systems)",
)
async def process_message(
    request: Request,
    session: SessionDep,
    actor: ActorDep,
    ruleset: RulesetDep,
    clock: ClockDep,
    settings: SettingsDep,
    request_id: Annotated[
        str | None,
        Header(
            alias="X-Request-Id",
            description="Required: 8-64 letters, digits, '.', '_' or '-' (a UUID fits). A retry "
            "with the same id and message returns the same referral; the same id with a "
            "different message is a 422.",
        ),
    ] = None,
) -> Response:
    if not actor.is_system:
        raise FhirError(
            403,
            "$process-message is for referring systems (X-API-Key); staff use POST /v1/referrals.",
            code="forbidden",
        )
    _require_fhir_json(request)
    if not request_id or not REQUEST_ID_RE.match(request_id):
        raise FhirError(
            400,
            "Send an X-Request-Id header of 8-64 letters, digits, '.', '_' or '-' (a UUID): "
            "it identifies this message, so a retry is safe.",
            code="required",
            location="http.X-Request-Id",
        )
    raw = _json_body(await request.body())
    mapped = map_message(raw)
    now = clock.now()
    try:
        result = await submit_referral(
            session,
            body=mapped.body,
            raw_payload=raw,
            actor=actor,
            ruleset=ruleset,
            now=now,
            idempotency_key=f"{IDEMPOTENCY_SCOPE_PREFIX}{request_id}",
            idempotency_ttl=timedelta(hours=settings.idempotency_key_ttl_hours),
        )
    except IdempotencyKeyReused:
        raise FhirError(
            422,
            "This X-Request-Id was used before with a different message. Use a new "
            "X-Request-Id for a new referral.",
            code="business-rule",
            location="http.X-Request-Id",
        ) from None
    except FrontDoorError as exc:
        raise _in_fhir_terms(exc, mapped) from None
    stored = StoredReferral(result.referral, result.decision, result.case, actor.ods_code)
    service_request, task = await _resources(session, actor, ruleset, stored)
    header_id = _message_header_id(raw)
    headers = {"Location": f"{FHIR_BASE_PATH}/ServiceRequest/{result.referral.id}"}
    if result.replayed:
        headers["Idempotent-Replayed"] = "true"
    return fhir_response(
        response_message(
            request_message_id=header_id,
            service_request=service_request,
            task=task,
            base_url=_base_url(request),
            now=now,
        ),
        201,
        **headers,
    )


@router.get(
    "/ServiceRequest/{referral_id}",
    response_class=Response,
    summary="Read a referral as a ServiceRequest (the submitting organisation and staff)",
)
async def read_service_request(
    referral_id: str,
    session: SessionDep,
    actor: ActorDep,
    ruleset: RulesetDep,
    clock: ClockDep,
) -> Response:
    stored = await _readable(session, actor, _referral_id(referral_id), clock.now())
    service_request, _ = await _resources(session, actor, ruleset, stored)
    return fhir_response(service_request)


@router.get(
    "/ServiceRequest",
    response_class=Response,
    summary="Find a referral by our reference (identifier=[system|]FD-XXXX-XXXX)",
)
async def search_service_requests(
    request: Request,
    session: SessionDep,
    actor: ActorDep,
    ruleset: RulesetDep,
    clock: ClockDep,
    identifier: Annotated[
        str | None, Query(max_length=300, description=f"{REFERRAL_REFERENCE}|FD-XXXX-XXXX")
    ] = None,
) -> Response:
    now = clock.now()
    if not identifier:
        raise FhirError(
            400,
            "Search ServiceRequest by identifier (our reference, e.g. FD-1A2B-3C4D).",
            code="required",
            location="http.identifier",
        )
    system, _, value = identifier.rpartition("|")
    found: list[dict[str, Any]] = []
    if system in ("", REFERRAL_REFERENCE):
        stored = await referrals.stored_by_reference(session, value)
        if stored is not None and await _may_read(session, actor, stored, now, by="identifier"):
            service_request, _ = await _resources(session, actor, ruleset, stored)
            found.append(service_request)
    return fhir_response(searchset(found, _base_url(request), now))


@router.get(
    "/Task",
    response_class=Response,
    summary="The Task that follows a referral (focus=ServiceRequest/{id})",
)
async def search_tasks(
    request: Request,
    session: SessionDep,
    actor: ActorDep,
    ruleset: RulesetDep,
    clock: ClockDep,
    focus: Annotated[str | None, Query(max_length=200, description="ServiceRequest/{id}")] = None,
) -> Response:
    now = clock.now()
    prefix = "ServiceRequest/"
    if not focus or not focus.startswith(prefix):
        raise FhirError(
            400,
            "Search Task by focus=ServiceRequest/{id} (the id from the Location header).",
            code="required",
            location="http.focus",
        )
    stored = await _readable(session, actor, _referral_id(focus.removeprefix(prefix)), now)
    _, task = await _resources(session, actor, ruleset, stored)
    return fhir_response(searchset([task], _base_url(request), now))


# Helpers --------------------------------------------------------------------------------------


def _require_fhir_json(request: Request) -> None:
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != FHIR_JSON:
        raise FhirError(
            415,
            "Send the message as application/fhir+json.",
            code="not-supported",
            location="http.Content-Type",
        )


def _json_body(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise FhirError(
            400, "The request body is not valid JSON.", code="structure", expression="Bundle"
        ) from None


def _message_header_id(raw: Any) -> str | None:
    """The request MessageHeader's id, answered in ``MessageHeader.response.identifier``."""
    try:
        header_id = raw["entry"][0]["resource"].get("id")
    except (KeyError, IndexError, TypeError, AttributeError):
        return None
    return header_id if isinstance(header_id, str) else None


def _in_fhir_terms(exc: FrontDoorError, mapped: MappedReferral) -> FhirError:
    """An intake error about a JSON field, naming the FHIR element that field came from."""
    issues = [
        issue(
            str(error.get("message") or exc.detail),
            code="business-rule" if exc.status_code == 422 else None,
            expression=mapped.expression_for(str(error.get("field", ""))),
        )
        for error in exc.errors or [{"field": "", "message": exc.detail}]
    ]
    return FhirError(exc.status_code, exc.detail, issues=issues, headers=exc.headers)


def _referral_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise FhirError(404, "No referral with this id.", code="not-found") from None


async def _may_read(
    session: AsyncSession, actor: Actor, stored: StoredReferral, now: datetime, *, by: str
) -> bool:
    """Whether the actor may read the referral, with the read (or the refusal) audited."""
    return await referrals.may_read(
        session, actor, stored, now=now, details={"by": by, "api": "fhir"}
    )


async def _readable(
    session: AsyncSession, actor: Actor, referral_id: uuid.UUID, now: datetime
) -> StoredReferral:
    """The referral, if the actor may read it; another organisation's is a 404 like a missing
    one."""
    stored = await referrals.get_stored(session, referral_id)
    if stored is None or not await _may_read(session, actor, stored, now, by="id"):
        raise FhirError(404, "No referral with this id.", code="not-found")
    return stored


async def _resources(
    session: AsyncSession, actor: Actor, ruleset: Ruleset, stored: StoredReferral
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The referral's ServiceRequest and Task as this reader may see them."""
    referral, decision, case = stored.referral, stored.decision, stored.case
    case_visible = case is None or (
        actor.is_staff
        or referral.disposition == "case_opened"
        or await referrals.case_opened_by_client(session, case.id, actor.client_id)
    )
    output = decision_output_for(decision, for_staff=actor.is_staff)
    queue = ruleset.queue(case.queue_id) if case is not None else None
    state = task_state(
        referral,
        decision,
        case,
        case_visible=case_visible,
        queue_name=queue.name if queue is not None else None,
        signposted_reasons=_signposted_reasons(referral, output),
    )
    urgency_code = case.urgency_code if case is not None and case_visible else decision.urgency_code
    last_modified = case.updated_at if case is not None and case_visible else referral.created_at
    service_request = service_request_resource(
        referral, urgency_code=urgency_code, codes=decision.output.get("codes"), state=state
    )
    return service_request, task_resource(referral, state, last_modified=last_modified)


def _signposted_reasons(referral: Any, output: dict[str, Any]) -> list[str]:
    """Why and where a signposted referral went: the decision's reasons and the services."""
    reasons = [str(reason["detail"]) for reason in output.get("eligibility", {}).get("reasons", [])]
    services = [
        str(service["name"])
        for service in getattr(referral, "signposting", None) or []
        if isinstance(service, dict) and service.get("name")
    ]
    if services:
        reasons.append("suggested: " + ", ".join(services))
    return reasons
