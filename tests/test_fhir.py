"""FHIR R4: referrals in as messages, status back as ServiceRequest and Task
(docs/domain/fhir-and-codes.md).

Every response is validated with fhir.resources (R4B reads R4). Error paths are a table: each
names the element at fault and leaves nothing stored.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from fhir.resources.R4B import get_fhir_model_class
from sqlalchemy import func, select

from app.fhir.systems import (
    BARS_MESSAGE_EVENTS,
    ERS_REFERRAL_STATE,
    NHS_NUMBER,
    ODS_ORGANIZATION_CODE,
    QUESTIONNAIRE_URL,
    REFERRAL_REFERENCE,
    REFERRAL_STATUS,
    SNOMED_CT,
    answer_system,
)
from app.models import AuditEvent, IdempotencyKey, Referral
from app.triage import RulesetError, load_ruleset, ruleset_from_content
from tests.case_factories import add_staff, if_match
from tests.factories import referral_body, valid_test_nhs_numbers, years_ago
from tests.test_authz_matrix import app_routes

FHIR_JSON = "application/fhir+json"
EXAMPLE = Path(__file__).parent.parent / "docs" / "examples" / "fhir-referral-bundle.json"
ODS = "A81001"
NHS = valid_test_nhs_numbers(12, start=15500)
NORWICH = "cb-norwich"


# Messages -----------------------------------------------------------------------------------


def message(
    *,
    nhs: str | None = NHS[0],
    age: int = 15,
    ods: str = ODS,
    answers: list[dict[str, Any]] | None = None,
    postcode: str = "NR1 3AB",
) -> dict[str, Any]:
    """A BaRS-pattern referral message: MessageHeader, ServiceRequest, Patient, Organization
    and, with ``answers``, a QuestionnaireResponse."""
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "id": "patient-1",
        "name": [{"use": "official", "given": ["Robin"], "family": "Fhirperson"}],
        "birthDate": years_ago(age, days=30).isoformat(),
        "address": [{"postalCode": postcode}],
        "telecom": [{"system": "phone", "value": "07700 900456"}],
    }
    if nhs is not None:
        patient["identifier"] = [{"system": NHS_NUMBER, "value": nhs}]
    entries: list[dict[str, Any]] = [
        {
            "fullUrl": "urn:uuid:6f1c2a1e-0000-4000-8000-000000000001",
            "resource": {
                "resourceType": "MessageHeader",
                "id": "6f1c2a1e-0000-4000-8000-000000000001",
                "eventCoding": {"system": BARS_MESSAGE_EVENTS, "code": "servicerequest-request"},
                "source": {"endpoint": "https://gp.example/fhir"},
                "focus": [{"reference": "urn:uuid:6f1c2a1e-0000-4000-8000-000000000002"}],
            },
        },
        {
            "fullUrl": "urn:uuid:6f1c2a1e-0000-4000-8000-000000000002",
            "resource": {
                "resourceType": "ServiceRequest",
                "status": "active",
                "intent": "order",
                "category": [{"coding": [{"system": SNOMED_CT, "code": "3457005"}]}],
                "subject": {"reference": "Patient/patient-1"},
                "requester": {"reference": "urn:uuid:6f1c2a1e-0000-4000-8000-000000000003"},
                "authoredOn": "2026-12-01T09:30:00+00:00",
                "reasonCode": [{"text": "Low mood and not sleeping"}],
                "note": [{"text": "Struggling at school since the spring."}],
            },
        },
        {"fullUrl": "https://gp.example/fhir/Patient/patient-1", "resource": patient},
        {
            "fullUrl": "urn:uuid:6f1c2a1e-0000-4000-8000-000000000003",
            "resource": {
                "resourceType": "Organization",
                "identifier": [{"system": ODS_ORGANIZATION_CODE, "value": ods}],
                "name": "Example Surgery",
                "telecom": [{"system": "phone", "value": "01603 000111"}],
            },
        },
    ]
    if answers is not None:
        entries.append(
            {
                "fullUrl": "urn:uuid:6f1c2a1e-0000-4000-8000-000000000004",
                "resource": {
                    "resourceType": "QuestionnaireResponse",
                    "questionnaire": QUESTIONNAIRE_URL,
                    "status": "completed",
                    "item": answers,
                },
            }
        )
    return {"resourceType": "Bundle", "type": "message", "entry": entries}


def boolean(link_id: str, value: bool) -> dict[str, Any]:
    return {"linkId": link_id, "answer": [{"valueBoolean": value}]}


def coded(link_id: str, code: str, *, system: bool = True) -> dict[str, Any]:
    coding = {"code": code, **({"system": answer_system(link_id)} if system else {})}
    return {"linkId": link_id, "answer": [{"valueCoding": coding}]}


FULL_ANSWERS = [
    boolean("risk.immediate_danger", False),
    coded("risk.suicidal", "intent"),
    coded("risk.self_harm", "recent"),
    coded("risk.harm_to_others", "none", system=False),
    boolean("risk.safeguarding_concern", False),
    boolean("risk.supported", True),
    coded("camhs.status", "never"),
    coded("request", "help"),
    {
        "linkId": "needs",
        "answer": [{"valueCoding": {"code": "low_mood"}}, {"valueString": "sleep"}],
    },
    boolean("person.send", True),
    boolean("person.looked_after", False),
    boolean("consent.to_referral", True),
    boolean("consent.to_share", True),
]


def validated(body: dict[str, Any]) -> Any:
    """The body parsed by fhir.resources as its resourceType (raises if it is not valid)."""
    return get_fhir_model_class(body["resourceType"]).model_validate(body)


async def post(
    client: Any,
    headers: dict[str, str],
    body: Any,
    *,
    request_id: str | None = "req-00000001",
    content_type: str = FHIR_JSON,
) -> Any:
    sent = {**headers, "Content-Type": content_type}
    if request_id is not None:
        sent["X-Request-Id"] = request_id
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return await client.post("/fhir/R4/$process-message", content=content, headers=sent)


def outcome(response: Any) -> dict[str, Any]:
    """An error response: FHIR JSON, a valid OperationOutcome; its one issue."""
    assert response.headers["content-type"].startswith(FHIR_JSON), response.headers
    body = response.json()
    assert body["resourceType"] == "OperationOutcome", body
    validated(body)
    issue: dict[str, Any] = body["issue"][0]
    assert issue["diagnostics"]
    return issue


async def referral_count(session: Any) -> int:
    return int(await session.scalar(select(func.count()).select_from(Referral)) or 0)


@pytest.fixture
async def gp(make_client: Any) -> dict[str, str]:
    _, headers = await make_client(ods=ODS)
    return headers


# Intake -------------------------------------------------------------------------------------


async def test_a_minimal_message_is_a_referral_like_its_json_twin(
    client, gp, session, staff_headers
):
    response = await post(client, gp, message())
    assert response.status_code == 201, response.text
    assert response.headers["content-type"].startswith(FHIR_JSON)
    reply = response.json()
    bundle = validated(reply)
    assert bundle.type == "message"
    header, service_request, task = (e.resource for e in bundle.entry)
    assert header.get_resource_type() == "MessageHeader"
    assert header.response.code == "ok"
    assert header.response.identifier == "6f1c2a1e-0000-4000-8000-000000000001"
    assert response.headers["location"] == f"/fhir/R4/ServiceRequest/{service_request.id}"
    assert response.headers["x-request-id"] == "req-00000001"
    assert task.focus.reference == f"ServiceRequest/{service_request.id}"
    assert service_request.priority == "routine"
    assert service_request.identifier[0].system == REFERRAL_REFERENCE

    referral = await session.get(Referral, uuid.UUID(service_request.id))
    assert referral is not None
    assert (referral.channel, referral.referrer_type) == ("system", "gp")
    assert referral.normalised["referrer"]["ods_code"] == ODS
    assert referral.normalised["person"]["nhs_number"] == NHS[0]
    assert referral.reason == "Low mood and not sleeping\n\nStruggling at school since the spring."
    assert referral.raw_payload["resourceType"] == "Bundle"

    # The same referral through the JSON API: the same person, the same decision.
    twin = referral_body(
        "system",
        age=15,
        nhs=NHS[0],
        referrer={"type": "gp", "organisation": "Example Surgery", "ods_code": ODS},
    )
    json_reply = await client.get(f"/v1/referrals/{service_request.id}", headers=gp)
    assert json_reply.status_code == 200
    fhir_decision = json_reply.json()["decision"]
    preview = await client.post("/v1/triage/evaluate", json=twin, headers=staff_headers())
    assert preview.status_code == 200, preview.text
    for key in ("eligibility", "thrive_grouping", "route"):
        assert fhir_decision[key] == preview.json()[key], key
    assert fhir_decision["urgency"]["code"] == preview.json()["urgency"]["code"]
    assert json_reply.json()["codes"] == {
        "source_of_referral": "A1",
        "clinical_response_priority_type": "3",
    }


async def test_a_full_message_with_answers_is_triaged_on_them(client, gp, session):
    response = await post(client, gp, message(nhs=NHS[1], answers=FULL_ANSWERS))
    assert response.status_code == 201, response.text
    _, service_request, task = (e.resource for e in validated(response.json()).entry)
    assert service_request.priority == "asap"  # suicidal intent: B
    codes = {e.url.rsplit("/", 1)[-1]: e.valueCoding.code for e in service_request.extension}
    assert codes == {"source-of-referral-mh": "A1", "clinical-response-priority-type": "4"}
    assert task.owner.display == "Crisis (county-wide, 24/7)"

    referral = await session.get(Referral, uuid.UUID(service_request.id))
    assert referral is not None
    person, risk = referral.normalised["person"], referral.normalised["risk"]
    assert (person["send"], person["looked_after"]) == (True, False)
    assert (risk["suicidal"], risk["self_harm"], risk["harm_to_others"]) == (
        "intent",
        "recent",
        "none",
    )
    assert referral.normalised["needs"] == ["low_mood", "sleep"]
    assert referral.normalised["consent"]["to_referral"] is True


async def test_the_documented_example_is_accepted(client, gp, session):
    """docs/examples/fhir-referral-bundle.json, as the README's curl example sends it: the
    requester is a PractitionerRole naming the GP and the practice."""
    example = orjson.loads(EXAMPLE.read_bytes())
    response = await post(client, gp, example, request_id="3b7a1f0e-5c2d-4e8a-9f61-0d2c4b6a8e10")
    assert response.status_code == 201, response.text
    service_request = validated(response.json()).entry[1].resource
    referral = await session.get(Referral, uuid.UUID(service_request.id))
    assert referral is not None
    referrer = referral.normalised["referrer"]
    assert (referrer["name"], referrer["organisation"], referrer["ods_code"]) == (
        "Dr Alex Example",
        "Example Surgery",
        ODS,
    )
    assert referral.normalised["risk"]["suicidal"] == "thoughts"
    assert service_request.priority == "urgent"  # suicidal thoughts: D


async def test_unanswered_questions_are_not_asked_never_no(client, gp, session):
    response = await post(client, gp, message(nhs=NHS[2]))
    assert response.status_code == 201, response.text
    referral_id = response.headers["location"].rsplit("/", 1)[-1]
    referral = await session.get(Referral, uuid.UUID(referral_id))
    assert referral is not None
    assert set(referral.normalised["risk"].values()) == {None}
    json_reply = await client.get(f"/v1/referrals/{referral_id}", headers=gp)
    assert "risk_not_assessed" in json_reply.json()["decision"]["urgency"]["flags"]


async def test_a_known_patient_joins_their_record_and_open_case(client, gp, staff_headers):
    known = await client.post(
        "/v1/referrals", json=referral_body(age=15, nhs=NHS[3]), headers=staff_headers()
    )
    assert known.status_code == 201, known.text
    response = await post(client, gp, message(nhs=NHS[3]))
    assert response.status_code == 201, response.text
    referral_id = response.headers["location"].rsplit("/", 1)[-1]
    staff_view = await client.get(f"/v1/referrals/{referral_id}", headers=staff_headers())
    assert staff_view.json()["person_id"] == known.json()["person_id"]
    assert staff_view.json()["case_id"] == known.json()["case_id"]
    # The GP did not open that case: its Task says only that the referral was received.
    tasks = await client.get(f"/fhir/R4/Task?focus=ServiceRequest/{referral_id}", headers=gp)
    task = validated(tasks.json()).entry[0].resource
    assert (task.status, task.businessStatus.coding[0].code) == ("received", "received")
    assert task.owner is None


async def test_a_retry_with_the_same_request_id_is_the_same_referral(client, gp, session):
    first = await post(client, gp, message(nhs=NHS[4]), request_id="retry-0001")
    again = await post(client, gp, message(nhs=NHS[4]), request_id="retry-0001")
    assert first.status_code == again.status_code == 201, again.text
    assert first.headers["location"] == again.headers["location"]
    assert again.headers["idempotent-replayed"] == "true"
    validated(again.json())
    assert await referral_count(session) == 1
    key = await session.scalar(select(IdempotencyKey))
    assert key is not None and key.key == "fhir:retry-0001"

    changed = message(nhs=NHS[4], answers=[boolean("risk.immediate_danger", True)])
    reused = await post(client, gp, changed, request_id="retry-0001")
    assert reused.status_code == 422
    issue = outcome(reused)
    assert (issue["code"], issue["location"]) == ("business-rule", ["http.X-Request-Id"])
    assert await referral_count(session) == 1


def _entry(index: int, change: Callable[[dict[str, Any]], None]) -> Callable[[dict], None]:
    def mutate(bundle: dict[str, Any]) -> None:
        change(bundle["entry"][index]["resource"])

    return mutate


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda resource: resource.__setitem__(key, value)


def _drop(key: str) -> Callable[[dict[str, Any]], None]:
    return lambda resource: resource.pop(key)


def _answers(*items: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    def mutate(bundle: dict[str, Any]) -> None:
        bundle["entry"].append(message(answers=list(items))["entry"][-1])

    return mutate


def _identifier_value(value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda patient: patient["identifier"][0].__setitem__("value", value)


# (id, mutation of a valid message, status, issue code, expression)
BAD_MESSAGES: list[tuple[str, Callable[[dict[str, Any]], None], int, str, str]] = [
    (
        "not a bundle",
        lambda b: b.__setitem__("resourceType", "Patient"),
        400,
        "structure",
        "Bundle",
    ),
    ("not a message", lambda b: b.__setitem__("type", "collection"), 400, "value", "Bundle.type"),
    ("no entries", lambda b: b.__setitem__("entry", []), 400, "required", "Bundle.entry"),
    (
        "resource without a type",
        _entry(2, _drop("resourceType")),
        400,
        "structure",
        "Bundle.entry[2].resource",
    ),
    (
        "unsupported resource",
        lambda b: b["entry"].append({"resource": {"resourceType": "Observation"}}),
        422,
        "not-supported",
        "Bundle.entry[4].resource",
    ),
    (
        "bad birthDate",
        _entry(2, _set("birthDate", "2010-13-45")),
        400,
        "value",
        "Patient.birthDate",
    ),
    (
        "NHS number not a string",
        _entry(2, _identifier_value(9990000018)),
        400,
        "value",
        "Patient.identifier[0].value",
    ),
    ("unknown element", _entry(2, _set("colour", "blue")), 400, "structure", "Patient.colour"),
    (
        "a number for a URL (the library's own error)",
        _entry(0, lambda h: h["source"].__setitem__("endpoint", 1.5)),
        400,
        "structure",
        "Bundle",
    ),
    (
        "NHS number check digit",
        _entry(2, _identifier_value("9990000019")),
        422,
        "value",
        "Patient.identifier[0].value",
    ),
    (
        "NHS identifier without a value",
        _entry(2, lambda p: p["identifier"][0].pop("value")),
        422,
        "required",
        "Patient.identifier[0].value",
    ),
    (
        "future birthDate",
        _entry(2, _set("birthDate", "2099-01-01")),
        422,
        "value",
        "Patient.birthDate",
    ),
    (
        "bad postcode",
        _entry(2, _set("address", [{"postalCode": "NOT A POSTCODE"}])),
        422,
        "value",
        "Patient.address[0].postalCode",
    ),
    (
        "unidentified patient",
        _entry(2, lambda p: [p.pop("identifier"), p.pop("name")]),
        422,
        "value",
        "Patient",
    ),
    (
        "header not first",
        lambda b: b["entry"].reverse(),
        422,
        "structure",
        "Bundle.entry[0]",
    ),
    (
        "another event",
        _entry(0, lambda h: h["eventCoding"].__setitem__("code", "booking-request")),
        422,
        "not-supported",
        "MessageHeader.eventCoding.code",
    ),
    (
        "another event system",
        _entry(0, lambda h: h["eventCoding"].__setitem__("system", "http://example.org/events")),
        422,
        "not-supported",
        "MessageHeader.eventCoding",
    ),
    ("no focus", _entry(0, _drop("focus")), 422, "required", "MessageHeader.focus"),
    (
        "focus not in the bundle",
        _entry(0, _set("focus", [{"reference": "urn:uuid:0000"}])),
        422,
        "not-found",
        "MessageHeader.focus[0].reference",
    ),
    (
        "focus on the patient",
        _entry(0, _set("focus", [{"reference": "Patient/patient-1"}])),
        422,
        "invalid",
        "MessageHeader.focus[0].reference",
    ),
    ("no subject", _entry(1, _drop("subject")), 400, "required", "ServiceRequest.subject"),
    ("draft request", _entry(1, _set("status", "draft")), 422, "value", "ServiceRequest.status"),
    ("not a referral", _entry(1, _drop("category")), 422, "value", "ServiceRequest.category"),
    ("no requester", _entry(1, _drop("requester")), 422, "required", "ServiceRequest.requester"),
    (
        "no ODS code",
        _entry(3, _drop("identifier")),
        422,
        "required",
        "Organization.identifier",
    ),
    (
        "another practice's ODS code",
        _entry(3, lambda o: o["identifier"][0].__setitem__("value", "B82002")),
        422,
        "business-rule",
        "Organization.identifier[0].value",
    ),
    (
        "reason too long",
        _entry(1, _set("note", [{"text": "x" * 20_000}])),
        422,
        "value",
        "ServiceRequest.reasonCode[0]",
    ),
    (
        "unknown linkId",
        _answers(
            boolean("risk.immediate_danger", False),
            coded("risk.suicidal", "none"),
            boolean("risk.colour", True),
        ),
        422,
        "value",
        "QuestionnaireResponse.item[2].linkId",
    ),
    (
        "code not in the options",
        _answers(boolean("risk.immediate_danger", False), coded("risk.suicidal", "maybe")),
        422,
        "value",
        "QuestionnaireResponse.item[1].answer[0].valueCoding.code",
    ),
    (
        "coding for a yes/no question",
        _answers(coded("risk.immediate_danger", "yes")),
        422,
        "value",
        "QuestionnaireResponse.item[0].answer[0]",
    ),
    (
        "answered twice",
        _answers(coded("request", "help"), coded("request", "advice")),
        422,
        "duplicate",
        "QuestionnaireResponse.item[1]",
    ),
    (
        "two answers to a one-answer question",
        _answers({"linkId": "risk.suicidal", "answer": [{"valueCoding": {"code": "none"}}] * 2}),
        422,
        "value",
        "QuestionnaireResponse.item[0].answer",
    ),
    (
        "another code system",
        _answers(
            {
                "linkId": "camhs.status",
                "answer": [{"valueCoding": {"system": "http://example.org", "code": "open"}}],
            }
        ),
        422,
        "value",
        "QuestionnaireResponse.item[0].answer[0].valueCoding.system",
    ),
    (
        "self as a system's referrer",
        _answers({"linkId": "referrer.type", "answer": [{"valueCoding": {"code": "self"}}]}),
        422,
        "value",
        "QuestionnaireResponse.item[0].answer[0].valueCoding.code",
    ),
    (
        "another questionnaire",
        lambda b: [
            _answers(coded("request", "help"))(b),
            b["entry"][-1]["resource"].__setitem__("questionnaire", "http://example.org/Q/1"),
        ],
        422,
        "value",
        "QuestionnaireResponse.questionnaire",
    ),
    (
        "unfinished answers",
        lambda b: [
            _answers(coded("request", "help"))(b),
            b["entry"][-1]["resource"].__setitem__("status", "in-progress"),
        ],
        422,
        "value",
        "QuestionnaireResponse.status",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "status", "code", "expression"),
    [pytest.param(*row[1:], id=row[0]) for row in BAD_MESSAGES],
)
async def test_a_bad_message_is_an_operation_outcome_naming_the_element(
    client, gp, session, mutate, status, code, expression
):
    bundle = message(nhs=NHS[5])
    mutate(bundle)
    response = await post(client, gp, bundle)
    assert response.status_code == status, response.text
    issue = outcome(response)
    assert issue["code"] == code, issue
    assert issue["expression"] == [expression], issue
    assert NHS[5] not in response.text  # submitted values are never echoed
    assert await referral_count(session) == 0


@pytest.mark.parametrize(
    ("send", "status", "code", "location"),
    [
        pytest.param(
            {"content_type": "application/json"},
            415,
            "not-supported",
            "http.Content-Type",
            id="json not fhir+json",
        ),
        pytest.param({"request_id": None}, 400, "required", "http.X-Request-Id", id="no id"),
        pytest.param(
            {"request_id": "short"}, 400, "required", "http.X-Request-Id", id="unusable id"
        ),
    ],
)
async def test_bad_headers_are_named(client, gp, session, send, status, code, location):
    response = await post(client, gp, message(), **send)
    assert response.status_code == status, response.text
    issue = outcome(response)
    assert (issue["code"], issue["location"]) == (code, [location])
    assert await referral_count(session) == 0


async def test_not_json_too_large_unauthenticated_and_staff(
    client, gp, session, staff_headers, settings
):
    broken = await post(client, gp, b"{not json")
    assert broken.status_code == 400
    assert outcome(broken)["code"] == "structure"

    too_large = await post(client, gp, b"{" + b" " * (settings.max_body_bytes + 10) + b"}")
    assert too_large.status_code == 413
    assert outcome(too_large)["code"] == "too-costly"

    anonymous = await post(client, {}, message())
    assert anonymous.status_code == 401
    assert outcome(anonymous)["code"] == "login"

    bad_key = await post(client, {"X-API-Key": "fdk_nope_nope"}, message())
    assert bad_key.status_code == 401
    outcome(bad_key)

    staff = await post(client, staff_headers(), message())
    assert staff.status_code == 403
    assert outcome(staff)["code"] == "forbidden"
    assert await referral_count(session) == 0


async def test_a_failed_commit_stores_nothing_and_is_not_a_201(
    client, gp, session, app, monkeypatch
):
    from app.services import intake

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionResetError("database went away")

    monkeypatch.setattr("app.routers.fhir.submit_referral", broken)
    assert intake.submit_referral is not broken
    response = await post(client, gp, message())
    assert response.status_code == 503
    issue = outcome(response)
    assert (issue["severity"], issue["code"]) == ("fatal", "transient")
    assert response.headers["retry-after"]
    assert await referral_count(session) == 0


# Status back --------------------------------------------------------------------------------


async def read_back(client: Any, headers: dict[str, str], referral_id: str) -> tuple[Any, Any]:
    sr = await client.get(f"/fhir/R4/ServiceRequest/{referral_id}", headers=headers)
    assert sr.status_code == 200, sr.text
    tasks = await client.get(f"/fhir/R4/Task?focus=ServiceRequest/{referral_id}", headers=headers)
    assert tasks.status_code == 200, tasks.text
    bundle = validated(tasks.json())
    assert (bundle.type, bundle.total) == ("searchset", 1)
    return validated(sr.json()), bundle.entry[0].resource


async def test_round_trip_the_task_follows_the_case(client, gp, staff_headers, session, clock):
    await add_staff(session, "worker-1", "practitioner", (NORWICH,), seen_at=clock.now())
    await session.commit()
    created = await post(client, gp, message(nhs=NHS[6]))
    assert created.status_code == 201, created.text
    referral_id = created.headers["location"].rsplit("/", 1)[-1]

    service_request, task = await read_back(client, gp, referral_id)
    assert (service_request.status, service_request.priority) == ("active", "routine")
    assert task.status == "accepted"
    assert (task.businessStatus.coding[0].system, task.businessStatus.coding[0].code) == (
        ERS_REFERRAL_STATE,
        "DEFER_TO_PROVIDER",
    )
    assert task.owner.display == "Norwich Community Base"

    me = staff_headers("practitioner", queues=[NORWICH], subject="worker-1")
    claim = await client.post(f"/v1/queues/{NORWICH}/claim", headers=me)
    assert claim.status_code == 200, claim.text
    case_id, version = claim.json()["id"], claim.json()["version"]
    _, task = await read_back(client, gp, referral_id)
    assert task.status == "accepted"  # allocated, not yet seen

    clock.set(clock.now() + timedelta(hours=3))
    contact = await client.post(
        f"/v1/cases/{case_id}/contact",
        json={"contact_type": "assessment", "method": "phone"},
        headers={**me, **if_match(version)},
    )
    assert contact.status_code == 200, contact.text
    _, task = await read_back(client, gp, referral_id)
    assert task.status == "in-progress"
    assert (task.businessStatus.coding[0].system, task.businessStatus.coding[0].code) == (
        REFERRAL_STATUS,
        "first-contact-made",
    )

    closed = await client.post(
        f"/v1/cases/{case_id}/close",
        json={"outcome": "returned_to_thriving"},
        headers={**me, **if_match(contact.json()["version"])},
    )
    assert closed.status_code == 200, closed.text
    service_request, task = await read_back(client, gp, referral_id)
    assert service_request.status == "completed"
    assert task.status == "completed"
    assert task.businessStatus.coding[0].code == "closed"
    assert task.businessStatus.text == "Closed: support finished"


async def test_clinical_review_and_signposting_read_back(client, gp):
    review = await post(
        client, gp, message(nhs=NHS[7], age=19), request_id="review-0001"
    )  # 19 and the adult threshold not said: a duty clinician reviews
    assert review.status_code == 201, review.text
    _, task = await read_back(client, gp, review.headers["location"].rsplit("/", 1)[-1])
    assert (task.status, task.businessStatus.coding[0].code) == ("received", "AWAITING_TRIAGE")
    assert task.businessStatus.text.startswith("Awaiting clinical review by Duty clinician")

    signposted = await post(client, gp, message(nhs=NHS[8], age=30), request_id="over-0001")
    assert signposted.status_code == 201, signposted.text
    service_request, task = await read_back(
        client, gp, signposted.headers["location"].rsplit("/", 1)[-1]
    )
    assert service_request.status == "completed"
    assert (task.status, task.businessStatus.coding[0].code) == ("completed", "TRIAGE_RESPONSE")
    assert task.businessStatus.text.startswith("Signposted: ")


LEAVER_ANSWERS = [coded("camhs.status", "discharged"), coded("amhs_threshold", "not_met")]


@pytest.mark.parametrize(
    ("review", "task_status", "code", "text"),
    [
        ({"outcome": "accept"}, "accepted", "DEFER_TO_PROVIDER", "Accepted by Norwich Community"),
        ({"outcome": "signpost"}, "completed", "TRIAGE_RESPONSE", "Closed: signposted"),
        ({"outcome": "adult_handover"}, "completed", "TRIAGE_RESPONSE", "Closed: handed over"),
    ],
)
async def test_a_clinical_review_moves_the_task(
    client, gp, staff_headers, review, task_status, code, text
):
    created = await post(client, gp, message(nhs=NHS[7], age=20, answers=LEAVER_ANSWERS))
    assert created.status_code == 201, created.text
    referral_id = created.headers["location"].rsplit("/", 1)[-1]
    _, task = await read_back(client, gp, referral_id)
    assert (task.status, task.businessStatus.coding[0].code) == ("received", "AWAITING_TRIAGE")
    assert task.owner.display == "Duty clinician (county-wide)"

    duty = staff_headers("duty_clinician", subject="duty-1")
    case_id = (await client.get(f"/v1/referrals/{referral_id}", headers=duty)).json()["case_id"]
    reviewed = await client.post(
        f"/v1/cases/{case_id}/review",
        json={**review, "reason": "seen with the young person"},
        headers={**duty, **if_match(1)},
    )
    assert reviewed.status_code == 200, reviewed.text
    _, task = await read_back(client, gp, referral_id)
    assert (task.status, task.businessStatus.coding[0].code) == (task_status, code)
    assert task.businessStatus.text.startswith(text), task.businessStatus.text


async def test_search_by_our_reference(client, gp, make_client, staff_headers):
    created = await post(client, gp, message(nhs=NHS[9]))
    service_request = validated(created.json()).entry[1].resource
    reference = service_request.identifier[0].value
    for identifier in (reference, f"{REFERRAL_REFERENCE}|{reference}", reference.lower()):
        found = await client.get(
            "/fhir/R4/ServiceRequest", params={"identifier": identifier}, headers=gp
        )
        assert found.status_code == 200, found.text
        bundle = validated(found.json())
        assert bundle.total == 1 and bundle.entry[0].resource.id == service_request.id
    for other in (f"http://example.org|{reference}", "FD-0000-0000"):
        empty = await client.get(
            "/fhir/R4/ServiceRequest", params={"identifier": other}, headers=gp
        )
        assert validated(empty.json()).total == 0
    _, other_org = await make_client(name="Another practice", ods="B82002")
    hidden = await client.get(
        "/fhir/R4/ServiceRequest", params={"identifier": reference}, headers=other_org
    )
    assert validated(hidden.json()).total == 0
    staff = await client.get(
        "/fhir/R4/ServiceRequest", params={"identifier": reference}, headers=staff_headers()
    )
    assert validated(staff.json()).total == 1
    missing = await client.get("/fhir/R4/ServiceRequest", headers=gp)
    assert missing.status_code == 400
    assert outcome(missing)["location"] == ["http.identifier"]


async def test_reads_are_audited(client, gp, session):
    created = await post(client, gp, message(nhs=NHS[10]))
    referral_id = uuid.UUID(created.headers["location"].rsplit("/", 1)[-1])
    await read_back(client, gp, str(referral_id))
    reads = (
        await session.scalars(
            select(AuditEvent).where(
                AuditEvent.resource_id == str(referral_id), AuditEvent.action == "read"
            )
        )
    ).all()
    assert len(reads) == 2


# Who may read what: the FHIR routes as every caller -----------------------------------------

STAFF_ROLES = ("call_handler", "practitioner", "duty_clinician", "team_lead", "admin")


@pytest.mark.parametrize(
    "caller",
    ["anonymous", "submitter", "same_org_new_key", "other_org", *STAFF_ROLES],
)
async def test_authorisation_matrix(client, make_client, staff_headers, caller):
    _, submitter = await make_client(ods=ODS)
    created = await post(client, submitter, message(nhs=NHS[11]))
    assert created.status_code == 201, created.text
    referral_id = created.headers["location"].rsplit("/", 1)[-1]
    reference = validated(created.json()).entry[1].resource.identifier[0].value

    if caller == "anonymous":
        headers: dict[str, str] = {}
    elif caller == "submitter":
        headers = submitter
    elif caller == "same_org_new_key":
        _, headers = await make_client(name="Rotated key", ods=ODS)
    elif caller == "other_org":
        _, headers = await make_client(name="Another practice", ods="B82002")
    else:
        headers = staff_headers(caller, queues=[NORWICH])
    admitted = caller not in ("anonymous", "other_org")

    public = [
        await client.get("/fhir/R4/metadata", headers=headers),
        await client.get("/fhir/R4/Questionnaire/frontdoor-referral", headers=headers),
    ]
    for response in public:
        assert response.status_code == 200, (caller, response.text)
        validated(response.json())

    reads = [
        await client.get(f"/fhir/R4/ServiceRequest/{referral_id}", headers=headers),
        await client.get(f"/fhir/R4/Task?focus=ServiceRequest/{referral_id}", headers=headers),
    ]
    search = await client.get(
        "/fhir/R4/ServiceRequest", params={"identifier": reference}, headers=headers
    )
    for response in reads:
        expected = 200 if admitted else (401 if caller == "anonymous" else 404)
        assert response.status_code == expected, (caller, response.text)
        body = validated(response.json())
        if expected != 200:
            assert body.get_resource_type() == "OperationOutcome"
            assert NHS[11] not in response.text and reference not in response.text
    if caller == "anonymous":
        assert search.status_code == 401
    else:
        assert search.status_code == 200
        assert validated(search.json()).total == (1 if admitted else 0)

    submit = await post(client, headers, message(nhs=NHS[11]), request_id="matrix-0001")
    expected_submit = {"anonymous": 401, "submitter": 201, "same_org_new_key": 201}.get(
        caller, 422 if caller == "other_org" else 403
    )
    assert submit.status_code == expected_submit, (caller, submit.text)
    validated(submit.json())


async def test_unknown_ids_and_resources_are_404(client, gp):
    for path in (
        f"/fhir/R4/ServiceRequest/{uuid.uuid4()}",
        "/fhir/R4/ServiceRequest/not-a-uuid",
        f"/fhir/R4/Task?focus=ServiceRequest/{uuid.uuid4()}",
        "/fhir/R4/Questionnaire/another",
        "/fhir/R4/Patient/1",
    ):
        response = await client.get(path, headers=gp)
        assert response.status_code == 404, path
        assert outcome(response)["code"] == "not-found"
    bad_focus = await client.get("/fhir/R4/Task?focus=Patient/1", headers=gp)
    assert bad_focus.status_code == 400
    assert outcome(bad_focus)["location"] == ["http.focus"]


# Metadata and the Questionnaire -------------------------------------------------------------


async def test_capability_statement_lists_exactly_what_is_served(client, app):
    response = await client.get("/fhir/R4/metadata")
    assert response.status_code == 200
    statement = validated(response.json())
    assert statement.fhirVersion == "4.0.1"
    rest = statement.rest[0]
    declared = {
        (resource.type, interaction.code)
        for resource in rest.resource
        for interaction in resource.interaction
    }
    assert declared == {
        ("ServiceRequest", "read"),
        ("ServiceRequest", "search-type"),
        ("Task", "search-type"),
        ("Questionnaire", "read"),
    }
    assert [op.name for op in rest.operation] == ["process-message"]
    served = {route for route in app_routes(app) if route[1].startswith("/fhir/")}
    assert served == {
        ("GET", "/fhir/R4/metadata"),
        ("GET", "/fhir/R4/Questionnaire/{questionnaire_id}"),
        ("POST", "/fhir/R4/$process-message"),
        ("GET", "/fhir/R4/ServiceRequest/{referral_id}"),
        ("GET", "/fhir/R4/ServiceRequest"),
        ("GET", "/fhir/R4/Task"),
    }


async def test_the_questionnaire_links_to_the_json_fields(client):
    response = await client.get("/fhir/R4/Questionnaire/frontdoor-referral")
    questionnaire = validated(response.json())
    assert questionnaire.url == QUESTIONNAIRE_URL
    link_ids = {item.linkId for item in questionnaire.item}
    assert {
        "risk.suicidal",
        "risk.immediate_danger",
        "camhs.status",
        "amhs_threshold",
        "request",
        "person.send",
        "person.looked_after",
        "consent.to_referral",
    } <= link_ids
    suicidal = next(item for item in questionnaire.item if item.linkId == "risk.suicidal")
    assert [option.valueCoding.code for option in suicidal.answerOption] == [
        "none",
        "thoughts",
        "plan",
        "intent",
    ]


# Codes --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("channel", "referrer", "expected"),
    [
        ("system", "gp", "A1"),
        ("phone", "self", "B1"),
        ("phone", "parent_carer", "B2"),
        ("phone", "social_care", "C1"),
        ("phone", "school", "C2"),
        ("system", "camhs", "H2"),
        ("phone", "other_professional", "M6"),
        ("drop_in", "parent_carer", "Q1"),
        ("drop_in", "gp", "Q1"),
    ],
)
def test_source_of_referral_defaults(channel, referrer, expected):
    codes = load_ruleset().codes
    assert (
        codes.source_of_referral_for(
            channel=channel, referrer_type=referrer, referrer_ods_code="X1234"
        )
        == expected
    )


def test_clinical_response_priority_type_and_an_internal_camhs_referrer():
    content = copy.deepcopy(load_ruleset().content)
    content["codes"]["source_of_referral"]["same_provider"]["ods_codes"] = ["RMY"]
    codes = ruleset_from_content(content).codes
    assert (
        codes.source_of_referral_for(
            channel="system", referrer_type="camhs", referrer_ods_code="RMY"
        )
        == "P1"
    )
    assert (
        codes.source_of_referral_for(
            channel="system", referrer_type="camhs", referrer_ods_code="RAB"
        )
        == "H2"
    )
    assert (
        codes.source_of_referral_for(channel="system", referrer_type="gp", referrer_ods_code="RMY")
        == "A1"
    )
    assert [codes.clinical_response_priority_type_for(c) for c in "ABCDEFG"] == list("1423333")


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("codes.source_of_referral.by_referrer_type.gp", "AA", "codes.source_of_referral"),
        ("codes.clinical_response_priority_type.A", "5", "codes.clinical_response_priority_type"),
        ("codes.source_of_referral.by_channel.fax", "Q1", "codes.source_of_referral.by_channel"),
    ],
)
def test_bad_codes_in_a_ruleset_are_named(path, value, message):
    content = copy.deepcopy(load_ruleset().content)
    *parents, leaf = path.split(".")
    target = content
    for parent in parents:
        target = target[parent]
    target[leaf] = value
    with pytest.raises(RulesetError, match=message):
        ruleset_from_content(content)


def test_a_ruleset_must_code_every_referrer_and_urgency():
    content = copy.deepcopy(load_ruleset().content)
    del content["codes"]["source_of_referral"]["by_referrer_type"]["school"]
    del content["codes"]["clinical_response_priority_type"]["G"]
    with pytest.raises(RulesetError) as raised:
        ruleset_from_content(content)
    assert "codes.source_of_referral.by_referrer_type.school: missing" in str(raised.value)
    assert "codes.clinical_response_priority_type.G: missing" in str(raised.value)


async def test_the_json_referral_shows_its_codes(client, staff_headers):
    phone = await client.post("/v1/referrals", json=referral_body(age=15), headers=staff_headers())
    assert phone.json()["codes"] == {
        "source_of_referral": "B2",  # the factory's referrer is a parent or carer
        "clinical_response_priority_type": "3",
    }
    urgent = await client.post(
        "/v1/referrals",
        json=referral_body("drop_in", age=16, risk={"suicidal": "plan"}),
        headers=staff_headers(),
    )
    assert urgent.json()["decision"]["urgency"]["code"] == "C"
    assert urgent.json()["codes"] == {
        "source_of_referral": "Q1",
        "clinical_response_priority_type": "2",
    }
