"""Intake from every channel: durable records with their decision, read back as submitted."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import event, select

from app.models import Case, CaseEvent, Person, Referral, TriageDecision
from tests.conftest import count_rows
from tests.factories import referral_body, self_referral_body, valid_test_nhs_numbers

NHS_A, NHS_B, NHS_C = valid_test_nhs_numbers(3, start=100)


async def test_phone_referral_is_stored_with_its_decision_and_case(client, staff_headers, session):
    response = await client.post(
        "/v1/referrals",
        json=referral_body(age=15, nhs=NHS_A),
        headers=staff_headers("call_handler"),
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["location"] == f"/v1/referrals/{body['id']}"
    assert body["channel"] == "phone"
    assert body["status"] == "waiting"
    assert body["reference"].startswith("FD-")
    decision = body["decision"]
    assert decision["eligibility"]["outcome"] == "eligible"
    assert decision["urgency"]["code"] == "E"
    assert decision["thrive_grouping"] == "getting_help"
    assert decision["route"] == {
        **decision["route"],
        "kind": "community_base",
        "queue_id": "cb-norwich",
    }
    assert decision["ruleset_version"]

    referral = await session.get(Referral, uuid.UUID(body["id"]))
    assert referral is not None
    assert referral.raw_payload["person"]["nhs_number"] == NHS_A
    assert referral.normalised["person"]["postcode"] == "NR1 3AB"
    stored = await session.scalar(
        select(TriageDecision).where(TriageDecision.referral_id == referral.id)
    )
    assert stored is not None and stored.urgency_code == "E"
    assert stored.input_snapshot["channel"] == "phone"
    case = await session.get(Case, uuid.UUID(body["case_id"]))
    assert case is not None and case.queue_id == "cb-norwich" and case.status == "waiting"
    assert case.respond_by_at is not None
    events = (await session.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id))).all()
    assert [e.type for e in events] == ["case_opened"]


async def test_drop_in_routes_to_the_site_walked_into(client, staff_headers):
    body = referral_body("drop_in", age=19, amhs_threshold="not_met", site_id="oss-cromer")
    response = await client.post("/v1/referrals", json=body, headers=staff_headers("practitioner"))
    assert response.status_code == 201, response.text
    assert response.json()["decision"]["route"]["queue_id"] == "oss-cromer"


async def test_drop_in_at_an_unknown_site_is_refused(client, staff_headers, session):
    body = referral_body("drop_in", site_id="nowhere")
    response = await client.post("/v1/referrals", json=body, headers=staff_headers())
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "site_id"
    assert await count_rows(session, "referrals") == 0


async def test_drop_in_needs_a_site(client, staff_headers):
    body = referral_body("drop_in")
    del body["site_id"]
    response = await client.post("/v1/referrals", json=body, headers=staff_headers())
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["site_id"]


async def test_system_referral_with_client_credentials(client, make_client):
    _, headers = await make_client()
    response = await client.post(
        "/v1/referrals",
        json=referral_body("system", nhs=NHS_B),
        headers={**headers, "Idempotency-Key": "gp-1"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["channel"] == "system"


async def test_system_must_send_an_idempotency_key(client, make_client):
    _, headers = await make_client()
    response = await client.post("/v1/referrals", json=referral_body("system"), headers=headers)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "header:Idempotency-Key"


async def test_channels_match_the_caller(client, make_client, staff_headers):
    _, headers = await make_client()
    as_system = await client.post(
        "/v1/referrals", json=referral_body("phone"), headers={**headers, "Idempotency-Key": "k"}
    )
    assert as_system.status_code == 403
    as_staff = await client.post(
        "/v1/referrals", json=referral_body("system"), headers=staff_headers()
    )
    assert as_staff.status_code == 403


async def test_referrals_need_authentication(client):
    response = await client.post("/v1/referrals", json=referral_body())
    assert response.status_code == 401
    assert response.json()["type"] == "unauthenticated"


async def test_ineligible_referral_is_signposted_without_a_case(client, staff_headers, session):
    response = await client.post(
        "/v1/referrals", json=referral_body(age=27), headers=staff_headers()
    )
    assert response.status_code == 201
    body = response.json()
    assert body["case_id"] is None
    assert body["status"] == "signposted"
    assert body["decision"]["route"]["kind"] == "signpost"
    assert body["decision"]["eligibility"]["reasons"][0]["rule"] == "AGE_OVER_25"
    assert await count_rows(session, "cases") == 0


async def test_urgent_referral_goes_to_crisis(client, staff_headers):
    body = referral_body(age=16, risk={"suicidal": "intent"})
    response = await client.post("/v1/referrals", json=body, headers=staff_headers())
    decision = response.json()["decision"]
    assert decision["urgency"]["code"] == "B"
    assert decision["route"]["kind"] == "crisis"
    assert "suicidal_intent" in decision["urgency"]["flags"]


async def test_read_back_by_staff_and_by_the_submitting_system_only(
    client, make_client, staff_headers
):
    _, gp = await make_client(name="GP one", ods="A81001")
    _, other = await make_client(name="GP two", ods="B82002")
    created = await client.post(
        "/v1/referrals", json=referral_body("system"), headers={**gp, "Idempotency-Key": "read-1"}
    )
    referral_id = created.json()["id"]
    own = await client.get(f"/v1/referrals/{referral_id}", headers=gp)
    assert own.status_code == 200
    assert own.json() == created.json()
    staff = await client.get(f"/v1/referrals/{referral_id}", headers=staff_headers())
    assert staff.status_code == 200
    foreign = await client.get(f"/v1/referrals/{referral_id}", headers=other)
    assert foreign.status_code == 404
    anonymous = await client.get(f"/v1/referrals/{referral_id}")
    assert anonymous.status_code == 401
    missing = await client.get(f"/v1/referrals/{uuid.uuid4()}", headers=staff_headers())
    assert missing.status_code == 404


async def test_triage_preview_stores_nothing(client, staff_headers, session):
    body = referral_body(age=15, risk={"self_harm": "recent", "supported": False})
    response = await client.post("/v1/triage/evaluate", json=body, headers=staff_headers())
    assert response.status_code == 200, response.text
    assert response.json()["urgency"]["code"] == "C"
    assert response.json()["rules_fired"]
    for table in ("referrals", "persons", "cases", "triage_decisions"):
        assert await count_rows(session, table) == 0


async def test_triage_preview_is_for_staff(client, make_client):
    _, headers = await make_client()
    response = await client.post("/v1/triage/evaluate", json=referral_body(), headers=headers)
    assert response.status_code == 403


async def test_self_referral_answers_reference_and_next_steps(client, session):
    response = await client.post("/v1/self-referrals", json=self_referral_body(age=17))
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {
        "reference",
        "received_at",
        "next_steps",
        "contact_route",
        "crisis",
        "signposting",
    }
    assert body["crisis"] is None and body["signposting"] is None
    assert body["reference"] in body["next_steps"]
    referral = await session.scalar(select(Referral))
    assert referral is not None and referral.channel == "web"
    assert referral.submitted_by_kind == "public"


async def test_urgent_self_referral_shows_crisis_contacts(client):
    body = self_referral_body(age=17, risk={"suicidal": "plan"})
    response = await client.post("/v1/self-referrals", json=body)
    assert response.status_code == 201
    crisis = response.json()["crisis"]
    assert crisis is not None
    hows = " ".join(c["how"] for c in crisis["contacts"])
    for number in ("999", "111", "85258", "116 123", "0800 1111", "0800 068 4141"):
        assert number in hows


async def test_self_referral_reveals_nothing_about_known_people(client, staff_headers):
    await client.post("/v1/referrals", json=referral_body(nhs=NHS_C), headers=staff_headers())
    known = await client.post("/v1/self-referrals", json=self_referral_body(nhs=NHS_C))
    unknown = await client.post(
        "/v1/self-referrals", json=self_referral_body(nhs=valid_test_nhs_numbers(1, 900)[0])
    )
    assert known.status_code == unknown.status_code == 201
    assert set(known.json()) == set(unknown.json())
    assert "person_id" not in known.text


async def test_self_referral_honeypot_is_refused(client, session):
    response = await client.post(
        "/v1/self-referrals", json={**self_referral_body(), "website": "http://spam"}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "website"
    assert await count_rows(session, "referrals") == 0


async def test_self_referral_from_under_16_without_parental_consent(client):
    body = self_referral_body(age=13, consent={"parent_carer_aware": False, "to_referral": True})
    response = await client.post("/v1/self-referrals", json=body)
    assert response.status_code == 201


async def test_gillick_judgement_is_recorded(client, staff_headers, session):
    gillick = {"assessed_by": "Nurse Example", "assessed_on": "2026-01-05", "outcome": "competent"}
    body = referral_body(age=14, consent={"gillick": gillick, "parent_carer_aware": False})
    response = await client.post("/v1/referrals", json=body, headers=staff_headers())
    assert response.status_code == 201
    referral = await session.get(Referral, uuid.UUID(response.json()["id"]))
    assert referral is not None
    assert referral.normalised["consent"]["gillick"]["outcome"] == "competent"


async def test_person_recorded_once_across_gp_and_phone_referral(
    client, make_client, staff_headers, session
):
    nhs = valid_test_nhs_numbers(1, start=500)[0]
    _, gp = await make_client()
    first = await client.post(
        "/v1/referrals",
        json=referral_body("system", nhs=nhs, age=16),
        headers={**gp, "Idempotency-Key": "once-1"},
    )
    await client.post(
        "/v1/referrals",
        json=referral_body(nhs=f"{nhs[:3]} {nhs[3:6]} {nhs[6:]}", age=16),
        headers=staff_headers(),
    )
    people = await session.scalars(select(Person).where(Person.nhs_number == nhs))
    assert len(people.all()) == 1
    referrals = (await session.scalars(select(Referral).order_by(Referral.received_at))).all()
    assert {r.person_id for r in referrals} == {uuid.UUID(first.json()["person_id"])}
    # The second referral joined the open case rather than opening another one.
    assert {r.case_id for r in referrals} == {uuid.UUID(first.json()["case_id"])}
    # Both were received at the test's frozen instant, so say which by channel, not by order.
    assert {r.channel: r.disposition for r in referrals} == {
        "system": "case_opened",
        "phone": "joined_case",
    }


async def test_same_name_dob_and_postcode_join_the_same_person(client, staff_headers):
    body = referral_body(age=15)
    first = await client.post("/v1/referrals", json=body, headers=staff_headers())
    again = referral_body(
        age=15, person={"given_name": " alex ", "family_name": "TESTPERSON", "postcode": "nr13ab"}
    )
    second = await client.post("/v1/referrals", json=again, headers=staff_headers())
    assert second.json()["person_id"] == first.json()["person_id"]


async def test_partial_match_is_not_merged(client, staff_headers):
    first = await client.post("/v1/referrals", json=referral_body(age=15), headers=staff_headers())
    moved = referral_body(age=15, person={"postcode": "NR2 4AA"})
    second = await client.post("/v1/referrals", json=moved, headers=staff_headers())
    assert second.json()["person_id"] != first.json()["person_id"]


async def test_joined_case_takes_the_higher_urgency(client, staff_headers, session):
    nhs = valid_test_nhs_numbers(1, start=700)[0]
    first = await client.post(
        "/v1/referrals", json=referral_body(nhs=nhs, age=15), headers=staff_headers()
    )
    assert first.json()["decision"]["urgency"]["code"] == "E"
    urgent = referral_body(nhs=nhs, age=15, risk={"suicidal": "plan"})
    second = await client.post("/v1/referrals", json=urgent, headers=staff_headers())
    assert second.json()["case_id"] == first.json()["case_id"]
    case = await session.get(Case, uuid.UUID(first.json()["case_id"]), populate_existing=True)
    assert case is not None and case.urgency_code == "C"
    assert (
        case.respond_by_at
        == (
            await session.get(
                TriageDecision,
                (
                    await session.scalar(
                        select(TriageDecision.id).where(
                            TriageDecision.referral_id == uuid.UUID(second.json()["id"])
                        )
                    )
                ),
            )
        ).respond_by_at
    )
    events = (
        await session.scalars(
            select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.seq)
        )
    ).all()
    assert [e.type for e in events] == ["case_opened", "referral_joined"]


def _statements_of(engine: Any) -> tuple[list[str], Any]:
    """Capture the SELECT/INSERT/UPDATE/DELETE statements the app sends, as ``VERB table``."""
    captured: list[str] = []

    def capture(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        words = statement.split()
        verb = words[0].upper() if words else ""
        if verb == "SELECT":
            table = words[words.index("FROM") + 1] if "FROM" in words else ""
            captured.append(
                f"SELECT {table}" + (" FOR UPDATE" if "FOR UPDATE" in statement else "")
            )
        elif verb == "INSERT":
            captured.append(f"INSERT {words[2]}")
        elif verb in ("UPDATE", "DELETE"):
            captured.append(f"{verb} {words[1] if verb == 'UPDATE' else words[2]}")

    return captured, capture


async def test_a_new_persons_referral_is_one_lookup_and_one_flush(client, staff_headers, engine):
    """Pinned round trips: a new person is looked up once, then recorded with ON CONFLICT DO
    NOTHING (no savepoint); their case needs no lookup (nobody else can have opened one), is
    inserted with its first event's seq set (no UPDATE), and the rest goes in one flush."""
    headers = staff_headers("call_handler")
    # The worker's first request records them as staff (once); pin the referral's own work.
    await client.get("/v1/queues", headers=headers)
    statements, capture = _statements_of(engine)
    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    try:
        response = await client.post(
            "/v1/referrals",
            json=referral_body(age=15, nhs=valid_test_nhs_numbers(1, start=9100)[0]),
            headers=headers,
        )
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", capture)
    assert response.status_code == 201, response.text
    assert sorted(statements) == [
        "INSERT audit_events",
        "INSERT case_events",
        "INSERT cases",
        # The team's breach warning, in the outbox with the rest (docs/domain/
        # signposting-and-messages.md).
        "INSERT notifications",
        "INSERT persons",
        "INSERT referrals",
        "INSERT triage_decisions",
        "SELECT persons",
    ], statements


async def test_an_idempotency_key_is_reserved_without_reading_it_first(client, make_client, engine):
    _, headers = await make_client()
    body = referral_body("system", nhs=valid_test_nhs_numbers(1, start=9200)[0])
    statements, capture = _statements_of(engine)
    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    try:
        response = await client.post(
            "/v1/referrals", json=body, headers={**headers, "Idempotency-Key": "pin-1"}
        )
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", capture)
    assert response.status_code == 201, response.text
    assert "INSERT idempotency_keys" in statements
    assert "SELECT idempotency_keys" not in statements
    assert not any(s.startswith("UPDATE") for s in statements), statements
