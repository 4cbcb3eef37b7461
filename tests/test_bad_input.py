"""Bad input is a clear 4xx naming the field, never a 5xx, and nothing partial is stored."""

from __future__ import annotations

import json

import pytest

from tests.conftest import count_rows
from tests.factories import referral_body, years_ago

TABLES = ("referrals", "persons", "cases", "triage_decisions", "idempotency_keys")


async def _nothing_stored(session) -> None:
    for table in TABLES:
        assert await count_rows(session, table) == 0, table


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"person": {"nhs_number": "9990000019"}}, "person.nhs_number"),  # wrong check digit
        ({"person": {"nhs_number": "12345"}}, "person.nhs_number"),
        ({"person": {"date_of_birth": "2999-01-01"}}, "person.date_of_birth"),
        ({"person": {"date_of_birth": "31/01/2010"}}, "person.date_of_birth"),
        ({"person": {"postcode": "NOT A POSTCODE"}}, "person.postcode"),
        ({"person": {"email": "not-an-email"}}, "person.email"),
        ({"person": {"given_name": "x" * 101}}, "person.given_name"),
        ({"risk": {"suicidal": "sometimes"}}, "risk.suicidal"),
        ({"risk": {"immediate_danger": "maybe"}}, "risk.immediate_danger"),
        ({"camhs": {"status": "closed"}}, "camhs.status"),
        ({"amhs_threshold": "probably"}, "amhs_threshold"),
        ({"request": "everything"}, "request"),
        ({"reason": "x" * 4001}, "reason"),
        ({"needs": ["anxiety"] * 21}, "needs"),
        ({"referrer": {"type": "neighbour"}}, "referrer.type"),
        ({"status": "closed"}, "status"),  # server-owned fields cannot be set
        ({"urgency": "A"}, "urgency"),
        ({"channel": "fax"}, "channel"),
    ],
)
async def test_invalid_field_is_named(client, staff_headers, session, override, field):
    body = referral_body(age=15)
    for key, value in override.items():
        if isinstance(value, dict):
            body[key] = {**body[key], **value}
        else:
            body[key] = value
    response = await client.post("/v1/referrals", json=body, headers=staff_headers())
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["type"] == "validation_error"
    assert field in [e["field"] for e in problem["errors"]]
    assert response.headers["content-type"].startswith("application/problem+json")
    await _nothing_stored(session)


async def test_errors_never_echo_submitted_values(client, staff_headers):
    body = referral_body(age=15)
    body["person"]["nhs_number"] = "9990000019"
    body["person"]["postcode"] = "ZZ99 9QQQ"
    response = await client.post("/v1/referrals", json=body, headers=staff_headers())
    assert "9990000019" not in response.text
    assert "ZZ99" not in response.text


async def test_missing_required_fields(client, staff_headers, session):
    response = await client.post(
        "/v1/referrals", json={"channel": "phone"}, headers=staff_headers()
    )
    assert response.status_code == 422
    assert "referrer" in [e["field"] for e in response.json()["errors"]]
    await _nothing_stored(session)


async def test_malformed_json(client, staff_headers, session):
    response = await client.post(
        "/v1/referrals",
        content=b'{"channel": "phone",',
        headers={**staff_headers(), "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["type"] == "malformed_json"
    assert response.json()["errors"][0]["field"] == "body"
    await _nothing_stored(session)


async def test_wrong_content_type(client, staff_headers, session):
    response = await client.post(
        "/v1/referrals",
        content=b"channel=phone",
        headers={**staff_headers(), "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 415
    await _nothing_stored(session)


async def test_body_too_large(client, staff_headers, session):
    body = referral_body()
    body["reason"] = "x" * (70 * 1024)
    response = await client.post("/v1/referrals", json=body, headers=staff_headers())
    assert response.status_code == 413
    assert response.json()["type"] == "payload_too_large"
    await _nothing_stored(session)


async def test_json_that_is_not_an_object(client, staff_headers):
    response = await client.post("/v1/referrals", json=[1, 2, 3], headers=staff_headers())
    assert response.status_code == 422


async def test_date_of_birth_today_is_accepted(client, staff_headers):
    body = referral_body()
    body["person"]["date_of_birth"] = years_ago(0).isoformat()
    response = await client.post("/v1/referrals", json=body, headers=staff_headers())
    assert response.status_code == 201, response.text


async def test_bad_token_is_401_not_500(client):
    response = await client.post(
        "/v1/referrals", json=referral_body(), headers={"Authorization": "Bearer not-a-jwt"}
    )
    assert response.status_code == 401


async def test_bad_api_key_is_401(client):
    for key in ("nonsense", "fdk_000000000000_wrong", "fdk_a_b_c"):
        response = await client.post(
            "/v1/referrals",
            json=referral_body("system"),
            headers={"X-API-Key": key, "Idempotency-Key": "x"},
        )
        assert response.status_code == 401, key


async def test_unknown_path_is_problem_json(client):
    response = await client.get("/v1/nothing-here")
    assert response.status_code == 404
    assert response.json()["type"] == "not_found"


async def test_bad_uuid_in_path(client, staff_headers):
    response = await client.get("/v1/referrals/not-a-uuid", headers=staff_headers())
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "referral_id"


@pytest.mark.parametrize(
    ("section", "field", "value"),
    [
        ("person", "given_name", "Al\x00ex"),
        ("person", "family_name", "Smith\udaa2"),
        ("person", "email", "a\x00@example.org"),
        ("referrer", "name", "Dr\x07 Bell"),
        (None, "reason", "a hard week\x00"),
    ],
)
async def test_text_the_database_cannot_store_is_refused(
    client, staff_headers, session, section, field, value
):
    body = referral_body(age=15)
    if section:
        body[section][field] = value
    else:
        body[field] = value
    # ensure_ascii: a lone surrogate travels as a JSON escape, as a hostile client would send it.
    response = await client.post(
        "/v1/referrals",
        content=json.dumps(body, ensure_ascii=True),
        headers={**staff_headers(), "Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    expected = f"{section}.{field}" if section else field
    assert expected in [e["field"] for e in response.json()["errors"]]
    await _nothing_stored(session)


async def test_free_text_keeps_line_breaks(client, staff_headers):
    body = referral_body(age=15, reason="First line.\nSecond line.\tTabbed.")
    response = await client.post("/v1/referrals", json=body, headers=staff_headers())
    assert response.status_code == 201


async def test_control_characters_in_paths_and_queries_are_not_5xx(client, staff_headers):
    lead = staff_headers("admin")
    for url in (
        "/v1/queues/%00/cases",
        "/v1/queues/cb-norwich/cases?key_worker_id=%00",
        "/v1/audit?actor_id=%00",
    ):
        response = await client.get(url, headers=lead)
        # SQLite stores NUL, so an empty page is a fair answer there; never a 5xx.
        assert response.status_code < 500, (url, response.text)


# "" in an optional field means the field was left out ---------------------------------------

BLANK_OPTIONAL_FIELDS = {
    "person": {
        "nhs_number": "",
        "given_name": " ",
        "date_of_birth": "",
        "postcode": "",
        "phone": "",
        "email": "",
    },
    "referrer": {"type": "self", "name": "", "organisation": "", "ods_code": "", "email": ""},
    "camhs": {"status": ""},
    "amhs_threshold": "",
    "request": "",
    "reason": "",
    "preferences": {"setting": ""},
    "consent": {"gillick": ""},
}


async def test_blank_optional_fields_are_absent_not_422(client, staff_headers, session):
    body = {"channel": "phone", **BLANK_OPTIONAL_FIELDS}
    body["person"] = {**body["person"], "given_name": "Sam", "family_name": "Blank"}
    response = await client.post("/v1/referrals", json=body, headers=staff_headers())
    assert response.status_code == 201, response.text


async def test_blank_optional_fields_in_a_self_referral(client):
    body = {
        **{k: v for k, v in BLANK_OPTIONAL_FIELDS.items() if k != "referrer"},
        "referrer": {"type": "self", "name": "", "phone": "07700 900111", "email": ""},
        "website": "",
    }
    response = await client.post("/v1/self-referrals", json=body)
    assert response.status_code == 201, response.text


def test_blank_is_the_default_for_every_optional_request_field():
    from app.schemas.case import AllocateRequest, CloseRequest, ContactRequest, SupporterCreate
    from app.schemas.referral import PhoneReferralCreate

    body = PhoneReferralCreate.model_validate({"channel": "phone", **BLANK_OPTIONAL_FIELDS})
    assert body.person.date_of_birth is None and body.person.nhs_number is None
    assert body.person.given_name is None and body.reason is None
    assert body.referrer.ods_code is None and body.preferences.setting is None
    assert (
        body.camhs.status
        == PhoneReferralCreate.model_validate(
            {"channel": "phone", "referrer": {"type": "self"}}
        ).camhs.status
    )
    contact = ContactRequest.model_validate(
        {"contact_type": "advice", "method": "", "contacted_at": "", "reason": "  "}
    )
    assert (contact.method, contact.contacted_at, contact.reason) == (None, None, None)
    assert AllocateRequest.model_validate({"key_worker_id": "w-1", "reason": ""}).reason is None
    assert CloseRequest.model_validate({"outcome": "declined", "reason": ""}).reason is None
    supporter = SupporterCreate.model_validate(
        {"kind": "worker", "worker_id": "w-2", "team_queue_id": "", "role": ""}
    )
    assert (supporter.team_queue_id, supporter.role) == (None, None)


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/referrals", {"channel": "phone", "referrer": {"type": ""}}, "referrer.type"),
        ("/v1/referrals", {"channel": "", "referrer": {"type": "self"}}, "channel"),
    ],
)
async def test_a_blank_required_field_is_still_named(client, staff_headers, path, body, field):
    response = await client.post(path, json=body, headers=staff_headers())
    assert response.status_code == 422
    assert field in [e["field"] for e in response.json()["errors"]]
