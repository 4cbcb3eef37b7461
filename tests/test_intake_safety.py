"""Intake safety (docs/domain/trust-and-safety.md; hazards H1-H7 in docs/hazard-log.md).

Each test pins a defect measured on main before the fix: a public self-referral rewrote a known
record and its case; omitted risk answers were stored as "none"; an empty self-referral was
promised a call; a referring system could send an unidentified person or another practice's
ODS code and read another organisation's case state; a known person's record was ignored by
triage; a reference could not be looked up.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from app.models import Case, Person, PersonChange, Referral, TriageDecision
from tests.factories import referral_body, self_referral_body, valid_test_nhs_numbers

NHS = valid_test_nhs_numbers(12, start=8800)


async def _known_person_with_open_case(client: Any, staff_headers: Any, nhs: str) -> dict[str, Any]:
    """A young person known from a phone referral: no phone or email of their own, not
    looked after, an open urgency E case in their Community Base queue."""
    body = referral_body(age=15, nhs=nhs)
    response = await client.post("/v1/referrals", json=body, headers=staff_headers())
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    assert data["decision"]["urgency"]["code"] == "E"
    return data


# H1: unverified input never rewrites a record --------------------------------------------


async def test_a_public_self_referral_never_changes_a_known_record_or_its_case(
    client, staff_headers, session
):
    known = await _known_person_with_open_case(client, staff_headers, NHS[0])
    attack = self_referral_body(
        age=15,
        nhs=NHS[0],
        person={"phone": "07700 900666", "email": "someone@example.org", "looked_after": True},
        risk={"immediate_danger": True},
    )
    response = await client.post("/v1/self-referrals", json=attack)
    assert response.status_code == 201, response.text

    person = await session.get(Person, uuid.UUID(known["person_id"]), populate_existing=True)
    assert person is not None
    assert (person.phone, person.email, person.looked_after) == (None, None, False)
    assert person.nhs_number == NHS[0]
    case = await session.get(Case, uuid.UUID(known["case_id"]), populate_existing=True)
    assert case is not None
    assert (case.urgency_code, case.queue_id) == ("E", known["decision"]["route"]["queue_id"])
    assert (
        await session.scalar(select(PersonChange).where(PersonChange.person_id == person.id))
        is None
    )

    # The self-referral is its own record, linked only as a proposal, and its urgent answers
    # are acted on at once: its own case in the crisis queue.
    web = await session.scalar(select(Referral).where(Referral.channel == "web"))
    assert web is not None
    assert web.person_id != person.id
    assert (web.proposed_person_id, web.person_link) == (person.id, "proposed")
    unverified = await session.get(Person, web.person_id)
    assert unverified is not None
    assert (unverified.verified, unverified.nhs_number, unverified.claimed_nhs_number) == (
        False,
        None,
        NHS[0],
    )
    own_case = await session.get(Case, web.case_id)
    assert own_case is not None
    assert (own_case.queue_id, own_case.urgency_code) == ("crisis", "A")


async def test_staff_confirm_or_reject_a_proposed_link(client, staff_headers, session):
    known = await _known_person_with_open_case(client, staff_headers, NHS[1])
    # The known person's case closes; then a self-referral proposes them.
    case = await session.get(Case, uuid.UUID(known["case_id"]))
    assert case is not None
    await client.post("/v1/self-referrals", json=self_referral_body(age=15, nhs=NHS[1]))
    web = await session.scalar(select(Referral).where(Referral.channel == "web"))
    assert web is not None
    staff = staff_headers()

    # Both have open cases: confirming would give one person two, so it is refused.
    refused = await client.post(
        f"/v1/referrals/{web.id}/person-link", json={"decision": "confirm"}, headers=staff
    )
    assert refused.status_code == 409, refused.text

    rejected = await client.post(
        f"/v1/referrals/{web.id}/person-link", json={"decision": "reject"}, headers=staff
    )
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["person_link"]["status"] == "rejected"
    again = await client.post(
        f"/v1/referrals/{web.id}/person-link", json={"decision": "confirm"}, headers=staff
    )
    assert again.status_code == 409


async def test_confirming_a_link_moves_the_referral_and_its_case(
    client, staff_headers, session, make_client
):
    _, gp = await make_client()
    signposted = referral_body("system", age=40, nhs=NHS[2])  # no case: signposted
    response = await client.post(
        "/v1/referrals", json=signposted, headers={**gp, "Idempotency-Key": "link-1"}
    )
    assert response.json()["case_id"] is None
    known_id = uuid.UUID(response.json()["person_id"])
    await client.post("/v1/self-referrals", json=self_referral_body(age=15, nhs=NHS[2]))
    web = await session.scalar(select(Referral).where(Referral.channel == "web"))
    assert web is not None and web.case_id is not None

    confirmed = await client.post(
        f"/v1/referrals/{web.id}/person-link",
        json={"decision": "confirm"},
        headers=staff_headers(),
    )
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["person_id"] == str(known_id)
    assert confirmed.json()["person_link"]["status"] == "confirmed"
    case = await session.get(Case, web.case_id, populate_existing=True)
    assert case is not None and case.person_id == known_id


async def test_staff_changes_to_a_person_are_recorded_old_to_new(client, staff_headers, session):
    known = await _known_person_with_open_case(client, staff_headers, NHS[3])
    body = referral_body(age=15, nhs=NHS[3], person={"phone": "07700 900222"})
    response = await client.post(
        "/v1/referrals", json=body, headers=staff_headers(subject="user-handler-2")
    )
    assert response.status_code == 201, response.text
    assert response.json()["joined"] == {"person": "existing", "case": "existing"}
    changes = (
        await session.scalars(
            select(PersonChange).where(PersonChange.person_id == uuid.UUID(known["person_id"]))
        )
    ).all()
    assert [(c.field, c.old_value, c.new_value) for c in changes] == [
        ("phone", None, "07700 900222")
    ]
    assert (changes[0].changed_by_kind, changes[0].changed_by_id) == ("staff", "user-handler-2")
    assert changes[0].referral_id == uuid.UUID(response.json()["id"])


async def test_joined_says_new_for_a_new_person(client, staff_headers):
    response = await client.post(
        "/v1/referrals", json=referral_body(nhs=NHS[4]), headers=staff_headers()
    )
    assert response.json()["joined"] == {"person": "new", "case": "new"}


# H2: unknown is not none ------------------------------------------------------------------


async def test_risk_answers_left_out_are_stored_as_not_asked(client, staff_headers, session):
    body = referral_body(nhs=NHS[5])
    body["risk"] = {"suicidal": "thoughts"}
    response = await client.post("/v1/referrals", json=body, headers=staff_headers())
    assert response.status_code == 201, response.text
    decision = response.json()["decision"]
    assert decision["risk_not_answered"] == [
        "immediate_danger",
        "self_harm",
        "harm_to_others",
        "safeguarding_concern",
    ]
    assert "risk_not_assessed" not in decision["urgency"]["flags"]
    row = await session.scalar(
        select(TriageDecision).where(TriageDecision.referral_id == uuid.UUID(response.json()["id"]))
    )
    assert row is not None
    assert row.input_snapshot["risk"]["self_harm"] is None
    assert row.input_snapshot["risk"]["suicidal"] == "thoughts"


async def test_no_risk_question_answered_raises_risk_not_assessed(client, staff_headers):
    body = referral_body(nhs=NHS[6])
    del body["risk"]
    response = await client.post("/v1/referrals", json=body, headers=staff_headers())
    assert response.status_code == 201
    assert "risk_not_assessed" in response.json()["decision"]["urgency"]["flags"]


# H4: never promise what cannot happen ----------------------------------------------------


async def test_an_empty_self_referral_is_told_we_cannot_contact_them(client, session):
    response = await client.post("/v1/self-referrals", json={})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["contact_route"] is False
    assert "no way to contact you" in body["next_steps"]
    assert "4 weeks" not in body["next_steps"]
    assert body["crisis"] is not None  # what to do now
    row = await session.scalar(select(TriageDecision))
    assert row is not None
    assert "no_contact_route" in row.output["urgency"]["flags"]
    assert "risk_not_assessed" in row.output["urgency"]["flags"]


async def test_a_referring_system_must_identify_the_person(client, make_client, session):
    _, gp = await make_client()
    for n, person in enumerate(
        [None, {"date_of_birth": "2010-01-01"}, {"given_name": "A", "family_name": "B"}]
    ):
        body = referral_body("system")
        if person is None:
            del body["person"]
        else:
            body["person"] = person
        response = await client.post(
            "/v1/referrals", json=body, headers={**gp, "Idempotency-Key": f"ident-{n}"}
        )
        assert response.status_code == 422, response.text
        assert [e["field"] for e in response.json()["errors"]] == ["person"]
    assert await session.scalar(select(Referral)) is None
    named = referral_body("system", person={"given_name": "Ana", "family_name": "Test"})
    ok = await client.post(
        "/v1/referrals", json=named, headers={**gp, "Idempotency-Key": "ident-ok"}
    )
    assert ok.status_code == 201, ok.text


# H5: triage reads what we know; a system learns nothing another organisation sent ---------


async def test_a_gp_post_with_only_an_nhs_number_uses_the_recorded_date_of_birth(
    client, staff_headers, make_client
):
    known = await _known_person_with_open_case(client, staff_headers, NHS[7])
    _, gp = await make_client(ods="B82002")
    body = referral_body("system")
    body["person"] = {"nhs_number": NHS[7]}
    response = await client.post(
        "/v1/referrals", json=body, headers={**gp, "Idempotency-Key": "known-1"}
    )
    assert response.status_code == 201, response.text
    seen = response.json()
    assert seen["decision"]["eligibility"]["reasons"][0]["rule"] == "AGE_IN_SCOPE"
    assert seen["decision"]["route"]["kind"] == "community_base"
    # The system does not learn the age or postcode on record, nor the case's state, nor who
    # else referred: the eligibility reason and inputs from the record are withheld.
    assert seen["status"] == "received"
    assert "joined" not in seen or seen["joined"] is None
    eligibility_rule = seen["decision"]["rules_fired"][0]
    assert eligibility_rule["sources"]["age_years"] == "record"
    assert "age_years" not in eligibility_rule["inputs"]
    assert "Aged" not in seen["decision"]["eligibility"]["reasons"][0]["detail"]
    # Staff see the same referral in full, sources included.
    staff_view = await client.get(f"/v1/referrals/{seen['id']}", headers=staff_headers())
    rule = staff_view.json()["decision"]["rules_fired"][0]
    assert rule["inputs"]["age_years"] == 15
    assert rule["sources"] == {"age_years": "record"}
    assert staff_view.json()["status"] == "waiting"
    assert known["case_id"] == staff_view.json()["case_id"]
    # Read back later by the system: still only "received".
    again = await client.get(f"/v1/referrals/{seen['id']}", headers=gp)
    assert again.json()["status"] == "received"


async def test_a_systems_own_case_shows_its_state(client, make_client):
    _, gp = await make_client()
    response = await client.post(
        "/v1/referrals",
        json=referral_body("system", nhs=NHS[8]),
        headers={**gp, "Idempotency-Key": "own-1"},
    )
    assert response.json()["status"] == "waiting"


# H6: a referring system is who its key says ----------------------------------------------


async def test_another_practices_ods_code_is_refused_and_the_credential_is_stored(
    client, make_client, session
):
    _, gp = await make_client(ods="A81001")
    body = referral_body("system", nhs=NHS[9], referrer={"ods_code": "Z99999"})
    refused = await client.post(
        "/v1/referrals", json=body, headers={**gp, "Idempotency-Key": "ods-1"}
    )
    assert refused.status_code == 422
    assert [e["field"] for e in refused.json()["errors"]] == ["referrer.ods_code"]
    assert await session.scalar(select(Referral)) is None

    own = referral_body("system", nhs=NHS[9], referrer={"ods_code": "a81001"})
    ok = await client.post("/v1/referrals", json=own, headers={**gp, "Idempotency-Key": "ods-2"})
    assert ok.status_code == 201, ok.text
    left_out = referral_body("system", nhs=NHS[10])
    ok2 = await client.post(
        "/v1/referrals", json=left_out, headers={**gp, "Idempotency-Key": "ods-3"}
    )
    stored = await session.get(Referral, uuid.UUID(ok2.json()["id"]))
    assert stored is not None and stored.normalised["referrer"]["ods_code"] == "A81001"


# Looking up a reference -------------------------------------------------------------------


async def test_staff_find_a_referral_by_its_reference(client, staff_headers, make_client):
    made = await client.post("/v1/self-referrals", json=self_referral_body(nhs=NHS[11]))
    reference = made.json()["reference"]
    typed = reference.lower().replace("-", " ")
    found = await client.get("/v1/referrals", params={"reference": typed}, headers=staff_headers())
    assert found.status_code == 200, found.text
    assert [item["reference"] for item in found.json()["items"]] == [reference]
    none = await client.get(
        "/v1/referrals", params={"reference": "FD-0000-0000"}, headers=staff_headers()
    )
    assert none.json() == {"items": []}
    _, gp = await make_client()
    refused = await client.get("/v1/referrals", params={"reference": reference}, headers=gp)
    assert refused.status_code == 403


async def test_search_by_nhs_number_shows_an_unverified_claim_as_close(client, staff_headers):
    nhs = valid_test_nhs_numbers(1, start=8900)[0]
    await _known_person_with_open_case(client, staff_headers, nhs)
    await client.post("/v1/self-referrals", json=self_referral_body(age=15, nhs=nhs))
    found = await client.get("/v1/persons", params={"nhs_number": nhs}, headers=staff_headers())
    assert found.status_code == 200, found.text
    matches = found.json()["matches"]
    assert [(m["match"], m["verified"], m["matched_on"]) for m in matches] == [
        ("exact", True, ["nhs_number"]),
        ("close", False, ["claimed_nhs_number"]),
    ]
    assert matches[1]["nhs_number"] is None
    assert matches[1]["claimed_nhs_number"] == nhs
