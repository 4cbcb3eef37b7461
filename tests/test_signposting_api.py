"""Signposting over HTTP: GET /v1/signposting, the ORUK feed, and the services stored with and
shown for ineligible and advice-only referrals (docs/domain/signposting-and-messages.md)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from app.models import Referral
from app.signposting import directory_from_content, load_signposting
from tests.factories import referral_body, self_referral_body, valid_test_nhs_numbers
from tests.test_web_forms import self_form, submit_self

NHS_OLD, NHS_SYSTEM = valid_test_nhs_numbers(2, start=1400)
DIRECTORY = load_signposting()
REPLACEMENT = {
    "label": "replacement",
    "organizations": [{"id": "o", "name": "O", "description": "D"}],
    "services": [
        {"id": "only", "organization_id": "o", "name": "Only", "description": "D",
         "url": "https://only.example", "areas": ["national"]},
    ],
}  # fmt: skip


def _ids(services: list[dict[str, Any]]) -> list[str]:
    return [s["id"] for s in services]


def _national_last(services: list[dict[str, Any]]) -> bool:
    national = [s["areas"] == ["national"] for s in services]
    return national == sorted(national)


# GET /v1/signposting -------------------------------------------------------------------------


async def test_signposting_is_public_and_puts_local_services_first(client: httpx.AsyncClient):
    response = await client.get("/v1/signposting", params={"age": 27, "postcode": "NR1 3AB"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["directory_version"] == DIRECTORY.version
    services = body["services"]
    assert _ids(services)[0] == "adult-mh-access-line"
    assert "samaritans" in _ids(services) and "childline" not in _ids(services)
    assert _national_last(services)
    samaritans = next(s for s in services if s["id"] == "samaritans")
    assert set(samaritans) >= {
        "id", "name", "organisation", "description", "phone", "text", "url", "email",
        "min_age", "max_age", "areas",
    }  # fmt: skip
    assert samaritans["phone"] == "116 123" and samaritans["organisation"] == "Samaritans"


@pytest.mark.parametrize(
    ("params", "first", "absent"),
    [
        (
            {"age": 15, "postcode": "CB1 1AA"},
            "cyp-cambridgeshire-peterborough",
            "kooth-norfolk-waveney",
        ),
        ({"age": 15, "postcode": "nr30"}, "counselling-great-yarmouth", "cyp-suffolk"),
        ({"age": 15}, "nhs-111-mental-health", "counselling-norwich"),
        ({"postcode": "IP24 1AA"}, "adult-mh-access-line", "cyp-suffolk"),
    ],
)
async def test_signposting_by_age_and_postcode(client, params, first, absent):
    services = (await client.get("/v1/signposting", params=params)).json()["services"]
    assert _ids(services)[0] == first
    assert absent not in _ids(services)


async def test_needs_may_be_comma_separated_or_repeated(client):
    one = await client.get("/v1/signposting?age=15&postcode=NR1&needs=anxiety,low_mood")
    two = await client.get("/v1/signposting?age=15&postcode=NR1&needs=anxiety&needs=low_mood")
    assert one.status_code == two.status_code == 200
    assert one.json() == two.json()


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("age=-1", "age"),
        ("age=151", "age"),
        ("age=twelve", "age"),
        ("postcode=NOT+A+POSTCODE", "postcode"),
        ("postcode=NR1+0", "postcode"),
        ("needs=%3Cscript%3E", "needs"),
    ],
)
async def test_bad_queries_are_a_422_naming_the_field(client, query, field):
    response = await client.get(f"/v1/signposting?{query}")
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in response.json()["errors"]] == [field]


# ORUK ----------------------------------------------------------------------------------------


async def test_oruk_root_is_open_and_says_what_it_is(client):
    response = await client.get("/oruk/")
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    body = response.json()
    assert body["version"] == "3.0"
    assert body["openapi_url"].endswith("/openapi.json")
    assert body["profile"].startswith("https://")


async def test_oruk_services_are_paginated_as_the_oruk_api(client):
    response = await client.get("/oruk/services", params={"page": 2, "per_page": 5})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    body = response.json()
    total = len(DIRECTORY.services)
    assert {k: body[k] for k in body if k != "contents"} == {
        "total_items": total,
        "total_pages": -(-total // 5),
        "page_number": 2,
        "size": 5,
        "first_page": False,
        "last_page": False,
        "empty": False,
    }
    assert [s["id"] for s in body["contents"]] == [s.oruk_id for s in DIRECTORY.services[5:10]]
    default = (await client.get("/oruk/services")).json()
    assert default["page_number"] == 1 and default["size"] == total and default["last_page"]


async def test_oruk_one_service_by_its_id(client):
    childline = DIRECTORY.service_by_id["childline"]
    response = await client.get(f"/oruk/services/{childline.oruk_id}")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == childline.oruk_id and body["maximum_age"] == 18
    assert body["phones"][0]["number"] == "0800 1111"
    assert body["organization"]["name"] == "NSPCC"
    assert None not in body.values()
    assert (await client.get("/oruk/services/childline")).json()["id"] == childline.oruk_id


async def test_oruk_errors_are_open_too(client):
    missing = await client.get(f"/oruk/services/{uuid.uuid4()}")
    assert missing.status_code == 404
    assert missing.headers["access-control-allow-origin"] == "*"
    bad = await client.get("/oruk/services", params={"per_page": 0})
    assert bad.status_code == 422
    assert bad.headers["access-control-allow-origin"] == "*"
    assert [e["field"] for e in bad.json()["errors"]] == ["per_page"]
    # Only the ORUK feed is open to any origin.
    assert "access-control-allow-origin" not in (await client.get("/v1/signposting")).headers


# Stored with the referral --------------------------------------------------------------------


async def test_an_ineligible_referral_carries_and_stores_its_signposting(
    client, staff_headers, session, app
):
    response = await client.post(
        "/v1/referrals", json=referral_body(age=27, nhs=NHS_OLD), headers=staff_headers()
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["decision"]["eligibility"]["outcome"] == "ineligible"
    services = body["signposting"]
    assert services and _ids(services)[0] == "adult-mh-access-line"
    assert all(s["min_age"] is None or s["min_age"] <= 27 for s in services)
    assert all(s["max_age"] is None or s["max_age"] >= 27 for s in services)
    assert _national_last(services)

    referral = await session.get(Referral, uuid.UUID(body["id"]))
    assert referral is not None
    assert referral.signposting == services
    assert referral.signposting_version == DIRECTORY.version

    # A later directory change does not rewrite what they were told.
    app.state.signposting = directory_from_content(REPLACEMENT)
    again = await client.get(f"/v1/referrals/{body['id']}", headers=staff_headers())
    assert again.json()["signposting"] == services


async def test_advice_only_is_signposted_and_help_is_not(client, staff_headers):
    advice = await client.post(
        "/v1/referrals", json=referral_body(age=15, request="advice"), headers=staff_headers()
    )
    assert advice.json()["decision"]["urgency"]["code"] == "G"
    assert "counselling-norwich" in _ids(advice.json()["signposting"])
    assert "childline" in _ids(advice.json()["signposting"])
    helped = await client.post("/v1/referrals", json=referral_body(age=15), headers=staff_headers())
    assert helped.json()["decision"]["urgency"]["code"] == "E"
    assert helped.json()["signposting"] is None


async def test_out_of_area_is_pointed_to_the_home_area(client, staff_headers):
    response = await client.post(
        "/v1/referrals",
        json=referral_body(age=12, person={"postcode": "PE1 1AA"}),
        headers=staff_headers(),
    )
    body = response.json()
    assert body["decision"]["eligibility"]["reasons"][0]["rule"] == "OUT_OF_AREA"
    assert _ids(body["signposting"])[0] == "cyp-cambridgeshire-peterborough"


async def test_a_referring_system_reads_the_signposting_of_its_referral(client, make_client):
    _, headers = await make_client(ods="A81001")
    response = await client.post(
        "/v1/referrals",
        json=referral_body("system", age=30, nhs=NHS_SYSTEM),
        headers={**headers, "Idempotency-Key": "signpost-1"},
    )
    assert response.status_code == 201, response.text
    assert "adult-mh-access-line" in _ids(response.json()["signposting"])


async def test_the_self_referral_answer_carries_signposting(client):
    response = await client.post("/v1/self-referrals", json=self_referral_body(age=30))
    assert response.status_code == 201
    body = response.json()
    assert "adult-mh-access-line" in _ids(body["signposting"])
    assert "services listed here can help" in body["next_steps"]
    eligible = await client.post("/v1/self-referrals", json=self_referral_body(age=17))
    assert eligible.json()["signposting"] is None


async def test_the_confirmation_page_lists_the_services(client):
    dob_year = str(int(self_form()["dob_year"]) - 14)  # 30 years old: ineligible
    response = await submit_self(client, self_form(dob_year=dob_year))
    assert response.status_code == 303
    page = (await client.get("/refer/confirmation")).text
    assert 'id="signposting"' in page
    assert "Services that can help you" in page
    assert 'href="tel:116123"' in page
    assert "Adult mental health services access line (illustrative)" in page
    assert page.index("Adult mental health") < page.index("Samaritans")
    # An eligible young person's confirmation has no signposting list.
    response = await submit_self(client, self_form())
    page = (await client.get("/refer/confirmation")).text
    assert 'id="signposting"' not in page


def test_a_bad_directory_stops_start_up_naming_the_key(settings, tmp_path):
    from app.main import create_app
    from app.signposting import SignpostingError

    path = tmp_path / "signposting.yaml"
    path.write_text(
        "label: broken\norganizations: [{id: o, name: O, description: D}]\n"
        "services: [{id: s, organization_id: o, name: S, description: D, areas: [national],"
        " url: 'https://s.example', maximum_age: nineteen}]\n",
        encoding="utf-8",
    )
    with pytest.raises(SignpostingError, match=r"services\.0\.maximum_age"):
        create_app(settings.model_copy(update={"signposting_path": path}))
