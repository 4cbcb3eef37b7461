"""The audit trail: every create, update and read of person, referral or case data, written in
the same transaction as the action, append-only, and readable by admins per young person."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.models import AuditEvent
from app.security import PUBLIC, Actor
from app.services import audit
from tests.conftest import count_rows
from tests.factories import referral_body, self_referral_body, valid_test_nhs_numbers

NHS_A, NHS_B, NHS_C = valid_test_nhs_numbers(3, start=700)


async def _events(session: AsyncSession, **where: Any) -> list[AuditEvent]:
    query = select(AuditEvent).order_by(AuditEvent.occurred_at, AuditEvent.action)
    for key, value in where.items():
        query = query.where(getattr(AuditEvent, key) == value)
    return list((await session.scalars(query)).all())


def _no_identifiers(events: list[AuditEvent], *values: str) -> None:
    dumped = orjson.dumps([e.details for e in events]).decode().lower()
    for value in values:
        assert value.lower() not in dumped, value


async def test_phone_referral_audits_person_referral_and_case(client, staff_headers, session):
    body = referral_body(age=15, nhs=NHS_A)
    response = await client.post("/v1/referrals", json=body, headers=staff_headers())
    assert response.status_code == 201
    created = response.json()
    events = await _events(session)
    kinds = sorted((e.action, e.resource_type) for e in events)
    assert kinds == [("create", "case"), ("create", "person"), ("create", "referral")]
    by_type = {e.resource_type: e for e in events}
    assert by_type["referral"].resource_id == created["id"]
    assert by_type["case"].resource_id == created["case_id"]
    assert by_type["person"].resource_id == created["person_id"]
    for event in events:
        assert str(event.person_id) == created["person_id"]
        assert event.actor_kind == "staff"
        assert event.actor_id == "user-call_handler"
        assert event.actor_role == "call_handler"
        assert event.outcome == "success"
        assert event.request_id == response.headers["x-request-id"]
    assert by_type["referral"].details["channel"] == "phone"
    _no_identifiers(
        events,
        NHS_A,
        body["person"]["given_name"],
        body["person"]["family_name"],
        body["person"]["postcode"],
        body["person"]["date_of_birth"],
        body["reason"],
    )


async def test_a_second_referral_updates_the_person_and_joins_the_case(
    client, staff_headers, session, clock
):
    first = await client.post(
        "/v1/referrals", json=referral_body(nhs=NHS_A), headers=staff_headers()
    )
    clock.set(clock.now() + timedelta(minutes=5))
    second_body = referral_body(nhs=NHS_A, person={"phone": "07700 900123"})
    second = await client.post("/v1/referrals", json=second_body, headers=staff_headers())
    assert second.status_code == 201
    events = await _events(session, occurred_at=clock.now())
    kinds = sorted((e.action, e.resource_type) for e in events)
    assert kinds == [("create", "referral"), ("update", "case"), ("update", "person")]
    person_update = next(e for e in events if e.resource_type == "person")
    assert person_update.details["fields"] == ["phone", "updated_at"]
    assert "07700" not in orjson.dumps(person_update.details).decode()
    case_update = next(e for e in events if e.resource_type == "case")
    assert case_update.resource_id == first.json()["case_id"]
    assert case_update.details["change"] == "referral_joined"
    # The same urgency later on: nothing on the case changed, and the audit says so.
    assert {
        key: case_update.details[key]
        for key in ("urgency_raised", "respond_by_brought_forward", "queue_moved")
    } == {"urgency_raised": False, "respond_by_brought_forward": False, "queue_moved": False}


async def test_a_joining_referral_says_what_it_changed_on_the_case(
    client, staff_headers, session, clock
):
    """Audit keys say what happened: an advice request (G, 7 days) joining a case at E (28
    days) brings the deadline forward without raising the urgency; a crisis raises both."""
    first = await client.post(
        "/v1/referrals", json=referral_body(nhs=NHS_C), headers=staff_headers()
    )
    assert first.json()["decision"]["urgency"]["code"] == "E"
    clock.set(clock.now() + timedelta(minutes=5))
    advice = await client.post(
        "/v1/referrals", json=referral_body(nhs=NHS_C, request="advice"), headers=staff_headers()
    )
    assert advice.json()["decision"]["urgency"]["code"] == "G"
    [update_event] = await _events(
        session, resource_type="case", action="update", occurred_at=clock.now()
    )
    assert update_event.details["urgency_raised"] is False
    assert update_event.details["respond_by_brought_forward"] is True
    assert update_event.details["queue_moved"] is False
    assert update_event.details["urgency_code"] == "E"

    clock.set(clock.now() + timedelta(minutes=5))
    crisis = referral_body(nhs=NHS_C, risk={"suicidal": "intent"})
    raised = await client.post("/v1/referrals", json=crisis, headers=staff_headers())
    assert raised.json()["decision"]["urgency"]["code"] in ("A", "B")
    [update_event] = await _events(
        session, resource_type="case", action="update", occurred_at=clock.now()
    )
    assert update_event.details["urgency_raised"] is True
    assert update_event.details["respond_by_brought_forward"] is True
    # Still waiting (unallocated): it moves to the crisis queue with the raised urgency.
    assert update_event.details["queue_moved"] is True
    assert update_event.details["queue_id"] != first.json()["decision"]["route"]["queue_id"]


async def test_system_referral_and_idempotent_replay_are_audited(client, make_client, session):
    client_id, headers = await make_client(ods="A81001")
    headers = {**headers, "Idempotency-Key": "audit-replay-1"}
    body = referral_body("system", nhs=NHS_B)
    first = await client.post("/v1/referrals", json=body, headers=headers)
    replay = await client.post("/v1/referrals", json=body, headers=headers)
    assert replay.headers.get("idempotent-replayed") == "true"
    events = await _events(session, resource_type="referral")
    assert [(e.action, e.details.get("idempotent_replay")) for e in events] == [
        ("create", None),
        ("read", True),
    ]
    for event in events:
        assert event.actor_kind == "system"
        assert event.actor_id == f"client:{client_id}"
        assert event.actor_organisation == "A81001"
        assert event.resource_id == first.json()["id"]


async def test_self_referral_is_audited_as_public(client, session):
    response = await client.post("/v1/self-referrals", json=self_referral_body(nhs=NHS_C))
    assert response.status_code == 201
    events = await _events(session)
    assert {e.actor_kind for e in events} == {"public"}
    assert {e.actor_id for e in events} == {None}
    assert ("create", "referral") in {(e.action, e.resource_type) for e in events}


async def test_reading_a_referral_is_audited(client, staff_headers, session):
    created = (
        await client.post("/v1/referrals", json=referral_body(), headers=staff_headers())
    ).json()
    response = await client.get(
        f"/v1/referrals/{created['id']}", headers=staff_headers("practitioner")
    )
    assert response.status_code == 200
    reads = await _events(session, action="read", resource_type="referral")
    assert len(reads) == 1
    assert reads[0].actor_role == "practitioner"
    assert str(reads[0].person_id) == created["person_id"]


async def test_a_refused_read_is_audited_even_though_the_request_fails(
    client, make_client, session
):
    _, own = await make_client(name="GP one", ods="A81001")
    _, other = await make_client(name="School", ods="EE1234")
    created = await client.post(
        "/v1/referrals",
        json=referral_body("system"),
        headers={**own, "Idempotency-Key": "refused-1"},
    )
    response = await client.get(f"/v1/referrals/{created.json()['id']}", headers=other)
    assert response.status_code == 404
    denied = await _events(session, outcome="denied")
    assert len(denied) == 1
    assert denied[0].actor_organisation == "EE1234"
    assert denied[0].resource_id == created.json()["id"]
    assert str(denied[0].person_id) == created.json()["person_id"]


async def test_a_refusal_is_written_after_the_rollback_not_mid_request(
    client, make_client, session, monkeypatch
):
    """Refused and missing take the same path: the handler raises the same 404 and commits
    nothing; the denied row is written only after the request's rollback."""
    _, own = await make_client(name="GP one", ods="A81001")
    _, other = await make_client(name="School", ods="EE1234")
    created = await client.post(
        "/v1/referrals",
        json=referral_body("system"),
        headers={**own, "Idempotency-Key": "refused-2"},
    )
    assert created.status_code == 201
    trace: list[str] = []
    real_commit, real_rollback = AsyncSession.commit, AsyncSession.rollback

    async def commit(self: AsyncSession) -> None:
        trace.append("commit")
        await real_commit(self)

    async def rollback(self: AsyncSession) -> None:
        trace.append("rollback")
        await real_rollback(self)

    monkeypatch.setattr(AsyncSession, "commit", commit)
    monkeypatch.setattr(AsyncSession, "rollback", rollback)

    refused = await client.get(f"/v1/referrals/{created.json()['id']}", headers=other)
    refused_trace, trace[:] = list(trace), []
    missing = await client.get(f"/v1/referrals/{uuid.uuid4()}", headers=other)
    missing_trace = list(trace)
    monkeypatch.undo()

    assert refused.status_code == missing.status_code == 404
    assert refused.json()["detail"] == missing.json()["detail"]
    assert refused.json()["type"] == missing.json()["type"]
    # Nothing is committed before the request fails; the refusal follows its rollback.
    assert refused_trace == ["rollback", "commit"]
    assert missing_trace == ["rollback"]
    denied = await _events(session, outcome="denied")
    assert [(e.resource_type, e.resource_id) for e in denied] == [
        ("referral", created.json()["id"])
    ]
    assert denied[0].request_id == refused.headers["x-request-id"]


async def test_a_refusal_queued_on_a_successful_request_is_written_with_its_commit(
    session_factory: async_sessionmaker[AsyncSession], session, clock
):
    """``record_refusal`` never writes by itself; the request session's end does, either way."""
    from starlette.requests import Request

    from app.db import get_session

    class _State:
        pass

    state = _State()
    state.session_factory = session_factory  # type: ignore[attr-defined]
    request = Request({"type": "http", "app": type("App", (), {"state": state})()})
    sessions = get_session(request)
    request_session = await anext(sessions)
    actor = Actor(kind="staff", id="user-x", role="practitioner")
    await audit.record_refusal(
        request_session,
        actor=actor,
        action="read",
        resource_type="case",
        resource_id="c-1",
        now=clock.now(),
    )
    assert not request_session.new  # queued, not added: a flush writes nothing
    with pytest.raises(StopAsyncIteration):
        await anext(sessions)
    denied = await _events(session, outcome="denied", resource_id="c-1")
    assert len(denied) == 1 and denied[0].actor_id == "user-x"


async def test_person_search_audits_one_event_per_person_shown(client, staff_headers, session):
    for nhs, given in ((NHS_A, "Robin"), (NHS_B, "Sam")):
        body = referral_body(nhs=nhs, person={"given_name": given, "family_name": "Auditson"})
        assert (
            await client.post("/v1/referrals", json=body, headers=staff_headers())
        ).status_code == 201
    dob = referral_body()["person"]["date_of_birth"]
    response = await client.get(
        "/v1/persons",
        params={"family_name": "Auditson", "date_of_birth": dob},
        headers=staff_headers("call_handler"),
    )
    matches = response.json()["matches"]
    assert len(matches) == 2
    searches = await _events(session, action="search")
    assert sorted(str(e.person_id) for e in searches) == sorted(m["id"] for m in matches)
    for event in searches:
        assert event.resource_type == "person"
        assert event.details["criteria"] == ["family_name", "date_of_birth"]
        assert len(event.details["referral_ids"]) == 1
    _no_identifiers(searches, "Auditson", dob, NHS_A, NHS_B)


async def test_a_search_that_finds_nobody_is_still_audited(client, staff_headers, session):
    response = await client.get(
        "/v1/persons", params={"nhs_number": NHS_C}, headers=staff_headers()
    )
    assert response.json() == {"matches": []}
    [event] = await _events(session, action="search")
    assert event.person_id is None
    assert event.details == {"criteria": ["nhs_number"], "matches": 0}


# GET /v1/audit -----------------------------------------------------------------------------------


async def _person_with_history(client, staff_headers) -> str:
    created = (
        await client.post("/v1/referrals", json=referral_body(nhs=NHS_A), headers=staff_headers())
    ).json()
    await client.get(f"/v1/referrals/{created['id']}", headers=staff_headers("practitioner"))
    await client.get("/v1/persons", params={"nhs_number": NHS_A}, headers=staff_headers())
    return str(created["person_id"])


async def test_admin_sees_who_looked_at_a_record_newest_first(client, staff_headers, clock):
    person_id = await _person_with_history(client, staff_headers)
    # A moment later, so this read sorts before everything it lists when read back.
    clock.set(clock.now() + timedelta(seconds=1))
    response = await client.get(
        "/v1/audit", params={"person_id": person_id}, headers=staff_headers("admin")
    )
    assert response.status_code == 200, response.text
    events = response.json()["events"]
    assert {(e["action"], e["resource_type"]) for e in events} == {
        ("create", "person"),
        ("create", "referral"),
        ("create", "case"),
        ("read", "referral"),
        ("search", "person"),
    }
    assert all(e["person_id"] == person_id for e in events)
    keys = [(e["occurred_at"], e["id"]) for e in events]
    assert keys == sorted(keys, reverse=True)
    assert response.json()["next_cursor"] is None
    # The admin's read is itself on the record.
    again = await client.get(
        "/v1/audit", params={"person_id": person_id}, headers=staff_headers("admin")
    )
    newest = again.json()["events"][0]
    assert (newest["action"], newest["resource_type"], newest["actor_role"]) == (
        "read",
        "audit",
        "admin",
    )


async def test_audit_pages_with_a_cursor(client, staff_headers, clock):
    person_id = await _person_with_history(client, staff_headers)
    for _ in range(3):
        clock.set(clock.now() + timedelta(seconds=1))
        await client.get("/v1/persons", params={"nhs_number": NHS_A}, headers=staff_headers())
    admin = staff_headers("admin")
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"person_id": person_id, "limit": "3", **({"before": cursor} if cursor else {})}
        page = (await client.get("/v1/audit", params=params, headers=admin)).json()
        pages += 1
        # Each page's own read is recorded after its query, so later pages never include it.
        seen += [e["id"] for e in page["events"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert len(seen) == len(set(seen)) == 8
    by_actor = await client.get("/v1/audit", params={"actor_id": "user-admin"}, headers=admin)
    assert {e["resource_type"] for e in by_actor.json()["events"]} == {"audit"}


@pytest.mark.parametrize("role", ["call_handler", "practitioner", "duty_clinician", "team_lead"])
async def test_only_admins_read_the_audit(client, staff_headers, role):
    response = await client.get(
        "/v1/audit", params={"person_id": str(uuid.uuid4())}, headers=staff_headers(role)
    )
    assert response.status_code == 403


async def test_audit_needs_credentials_and_a_filter(client, staff_headers):
    assert (await client.get("/v1/audit", params={"person_id": str(uuid.uuid4())})).status_code == (
        401
    )
    admin = staff_headers("admin")
    assert (await client.get("/v1/audit", headers=admin)).status_code == 422
    bad_cursor = await client.get(
        "/v1/audit", params={"person_id": str(uuid.uuid4()), "before": "nonsense!"}, headers=admin
    )
    assert bad_cursor.status_code == 422
    assert bad_cursor.json()["errors"][0]["field"] == "query:before"


# Append-only, same transaction, no identifiers -------------------------------------------------


def _event(**overrides: Any) -> dict[str, Any]:
    return {
        "actor": Actor(kind="staff", id="user-x", role="admin"),
        "action": "read",
        "resource_type": "referral",
        "resource_id": uuid.uuid4(),
        **overrides,
    }


async def test_audit_rows_cannot_be_updated_or_deleted(session, clock):
    event = audit.record(session, now=clock.now(), **_event())
    await session.flush()
    statements = [
        update(AuditEvent).where(AuditEvent.id == event.id).values(outcome="success-ish"),
        delete(AuditEvent).where(AuditEvent.id == event.id),
        text("UPDATE audit_events SET actor_id = 'someone-else'"),
        text("DELETE FROM audit_events"),
    ]
    for statement in statements:
        with pytest.raises(DBAPIError, match=r"append-only|not allowed|forbid|cannot"):
            async with session.begin_nested():
                await session.execute(statement)
    # And through the ORM.
    with pytest.raises(DBAPIError):
        async with session.begin_nested():
            event.outcome = "tampered"
            await session.flush()
    session.expire_all()
    assert await count_rows(session, "audit_events") == 1


class _CommitFails(AsyncSession):
    async def commit(self) -> None:
        from sqlalchemy.exc import OperationalError

        raise OperationalError("COMMIT", {}, Exception("simulated: disk full"))


async def test_no_audit_row_survives_a_failed_commit(app, client, connection, session):
    app.state.session_factory = async_sessionmaker(
        bind=connection,
        class_=_CommitFails,
        expire_on_commit=False,
        join_transaction_mode="create_savepoint",
    )
    response = await client.post("/v1/self-referrals", json=self_referral_body())
    assert response.status_code >= 500
    assert await count_rows(session, "audit_events") == 0
    assert await count_rows(session, "referrals") == 0


async def test_audit_rows_roll_back_with_the_action(app, session, clock):
    """The service writes its audit rows into the caller's transaction: a rollback takes them."""
    from pydantic import TypeAdapter

    from app.schemas.referral import SelfReferralCreate
    from app.services.intake import submit_referral

    body = TypeAdapter(SelfReferralCreate).validate_python(self_referral_body())
    nested = await session.begin_nested()
    await submit_referral(
        session,
        body=body,
        raw_payload={},
        actor=PUBLIC,
        ruleset=app.state.ruleset,
        now=clock.now(),
    )
    await session.flush()
    assert await count_rows(session, "audit_events") == 3
    await nested.rollback()
    assert await count_rows(session, "audit_events") == 0


def test_details_keep_ids_and_codes_only(caplog):
    person = uuid.uuid4()
    cleaned = audit.clean_details(
        {
            "reason": "worried about her at home",
            "family_name": "Smith",
            "note": "code-ok",
            "queue_id": "cb-norwich",
            "case_id": person,
            "nested": {"postcode": "NR1 3AB", "urgency_code": "B"},
            "free": "two words",
            "nhs_hidden": "ref-9990000018",
            "ids": [str(person), "ok_code"],
            "count": 3,
            "flag": True,
        }
    )
    assert cleaned == {
        "reason": "[redacted]",
        "family_name": "[redacted]",
        "note": "[redacted]",
        "queue_id": "cb-norwich",
        "case_id": str(person),
        "nested": {"postcode": "[redacted]", "urgency_code": "B"},
        "free": "[redacted]",
        "nhs_hidden": "[redacted]",
        "ids": [str(person), "ok_code"],
        "count": 3,
        "flag": True,
    }
