"""Health, readiness, the public directory, the active ruleset and person search."""

from __future__ import annotations

import uuid

import pytest
from pydantic import ValidationError

from app.config import Settings
from app.models import Referral
from tests.factories import referral_body, valid_test_nhs_numbers


async def test_healthz(client):
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_reports_database_and_migrations(client):
    response = await client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json()["migrations"] == "current"


async def test_readyz_when_migrations_are_behind(app, client):
    app.state.migration_head = "not-the-current-revision"
    response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["migrations"] == "behind"


async def test_services_directory_is_public(client):
    response = await client.get("/v1/services")
    assert response.status_code == 200
    body = response.json()
    by_name = {loc["name"]: loc for loc in body["localities"]}
    assert set(by_name) >= {"Norwich", "Waveney", "West Norfolk"}
    assert (
        by_name["Waveney"]["one_stop_shop"]["id"]
        == by_name["Great Yarmouth"]["one_stop_shop"]["id"]
    )
    assert "PE14" in by_name["West Norfolk"]["postcode_districts"]
    kinds = {q["kind"] for q in body["queues"]}
    assert {"crisis", "duty", "looked_after", "access_hub"} <= kinds


async def test_current_ruleset_is_for_staff(client, staff_headers):
    assert (await client.get("/v1/rulesets/current")).status_code == 401
    response = await client.get("/v1/rulesets/current", headers=staff_headers())
    assert response.status_code == 200
    body = response.json()
    assert body["version"].startswith(body["label"])
    assert body["content"]


async def test_openapi_documents_error_statuses(client):
    spec = (await client.get("/openapi.json")).json()
    post = spec["paths"]["/v1/referrals"]["post"]["responses"]
    assert {"201", "400", "401", "403", "413", "415", "422"} <= set(post)


async def test_person_search_by_nhs_number_and_by_name(client, staff_headers):
    nhs = valid_test_nhs_numbers(1, start=6000)[0]
    body = referral_body(age=15, nhs=nhs)
    created = (await client.post("/v1/referrals", json=body, headers=staff_headers())).json()
    by_nhs = await client.get("/v1/persons", params={"nhs_number": nhs}, headers=staff_headers())
    assert by_nhs.status_code == 200
    [match] = by_nhs.json()["matches"]
    assert match["id"] == created["person_id"]
    assert match["match"] == "exact"
    assert [r["id"] for r in match["referrals"]] == [created["id"]]

    dob = body["person"]["date_of_birth"]
    by_name = await client.get(
        "/v1/persons",
        params={"family_name": "testperson", "date_of_birth": dob, "postcode": "nr1 3ab"},
        headers=staff_headers(),
    )
    [match] = by_name.json()["matches"]
    assert match["match"] == "exact"
    assert set(match["matched_on"]) >= {"family_name", "date_of_birth", "postcode"}


async def test_person_search_offers_close_matches(client, staff_headers):
    body = referral_body(age=15, person={"family_name": "Smithson"})
    await client.post("/v1/referrals", json=body, headers=staff_headers())
    dob = body["person"]["date_of_birth"]
    response = await client.get(
        "/v1/persons",
        params={"family_name": "Smith", "date_of_birth": dob},
        headers=staff_headers(),
    )
    [match] = response.json()["matches"]
    assert match["match"] == "close"


async def test_person_search_needs_criteria(client, staff_headers):
    response = await client.get(
        "/v1/persons", params={"family_name": "Smith"}, headers=staff_headers()
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "query:date_of_birth"
    bad = await client.get(
        "/v1/persons", params={"nhs_number": "9990000019"}, headers=staff_headers()
    )
    assert bad.status_code == 422
    assert "9990000019" not in bad.text


async def test_person_search_is_for_staff(client, make_client):
    _, headers = await make_client()
    response = await client.get("/v1/persons", params={"nhs_number": "9990000018"}, headers=headers)
    assert response.status_code == 403


def test_production_refuses_insecure_defaults():
    with pytest.raises(ValidationError, match="FRONTDOOR_JWT_SECRET"):
        Settings(environment="production", database_url="postgresql://db/frontdoor")
    with pytest.raises(ValidationError, match="DATABASE_URL"):
        Settings(environment="production", jwt_secret="s" * 40)  # type: ignore[arg-type]
    ok = Settings(
        environment="production", database_url="postgresql://db/frontdoor", jwt_secret="s" * 40
    )  # type: ignore[arg-type]
    assert ok.database_url.startswith("postgresql+asyncpg://")


def test_invalid_ruleset_stops_the_service(tmp_path):
    from app.main import create_app
    from app.triage import RulesetError

    bad = tmp_path / "rules.yaml"
    bad.write_text("label: broken\n")
    with pytest.raises(RulesetError):
        create_app(Settings(environment="test", ruleset_path=bad))


def test_production_with_rs256_needs_a_web_signing_secret():
    base = {
        "environment": "production",
        "database_url": "postgresql://db/frontdoor",
        "jwt_algorithm": "RS256",
        "jwt_jwks_url": "https://idp.example/jwks.json",
    }
    with pytest.raises(ValidationError, match="FRONTDOOR_WEB_SECRET"):
        Settings(**base)  # type: ignore[arg-type]
    ok = Settings(**base, web_secret="w" * 40)  # type: ignore[arg-type]
    assert ok.signing_secret.get_secret_value() == "w" * 40


async def test_lower_case_ods_code_is_accepted_and_stored_upper_case(client, make_client, session):
    _, headers = await make_client()
    body = referral_body("system")
    body["referrer"]["ods_code"] = "a81001"
    response = await client.post(
        "/v1/referrals", json=body, headers={**headers, "Idempotency-Key": "ods-case"}
    )
    assert response.status_code == 201, response.text

    referral = await session.get(Referral, uuid.UUID(response.json()["id"]))
    assert referral is not None and referral.normalised["referrer"]["ods_code"] == "A81001"


async def test_front_page_leads_to_the_self_referral_form(client):
    response = await client.get("/", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/refer"
