"""Working a case after the door (docs/domain/after-the-door.md): clinical review, re-grading and
transfer, each rule as a table of cases and what should happen."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from app.models import AuditEvent, Case, CaseEvent, CaseUrgencyChange
from tests.case_factories import add_case, add_staff, if_match
from tests.factories import referral_body, valid_test_nhs_numbers

NORWICH = "cb-norwich"
OSS_NORWICH = "oss-norwich"
LOWESTOFT = "cb-lowestoft"
NHS = iter(valid_test_nhs_numbers(60, start=6100))

# A CAMHS leaver aged 20 (AMHS threshold not met): "case-by-case clinical decision".
CAMHS_LEAVER = {"age": 20, "camhs": {"status": "discharged"}, "amhs_threshold": "not_met"}


def _headers(staff_headers, who: str) -> dict[str, str]:
    """The callers the tables name."""
    role, queues, subject = {
        "duty_clinician": ("duty_clinician", [], "duty-1"),
        "duty_clinician_of_norwich": ("duty_clinician", [NORWICH], "duty-2"),
        "lead_of_duty": ("team_lead", ["duty"], "lead-duty"),
        "lead_of_norwich": ("team_lead", [NORWICH], "lead-norwich"),
        "lead_of_lowestoft": ("team_lead", [LOWESTOFT], "lead-lowestoft"),
        "key_worker": ("practitioner", [NORWICH], "worker-key"),
        "practitioner_in_team": ("practitioner", [NORWICH], "worker-other"),
        "practitioner_of_duty": ("practitioner", ["duty"], "worker-duty"),
        "call_handler": ("call_handler", [NORWICH], "handler-1"),
    }[who]
    return staff_headers(role, queues=queues, subject=subject)


async def _case(client, case_id: str, headers) -> dict[str, Any]:
    response = await client.get(f"/v1/cases/{case_id}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def _act(client, case_id, action: str, headers, body: dict[str, Any], version: int = 1):
    return await client.post(
        f"/v1/cases/{case_id}/{action}", json=body, headers={**headers, **if_match(version)}
    )


async def _leaver(client, staff_headers) -> dict[str, Any]:
    """A referral the engine sends for clinical review, waiting in the duty queue."""
    response = await client.post(
        "/v1/referrals",
        json=referral_body(nhs=next(NHS), **CAMHS_LEAVER),
        headers=staff_headers("call_handler"),
    )
    assert response.status_code == 201, response.text
    referral = response.json()
    assert referral["decision"]["eligibility"]["outcome"] == "clinical_review"
    assert referral["decision"]["route"]["queue_id"] == "duty"
    return referral


# Clinical review ---------------------------------------------------------------------------------

REVIEW_RULES = [
    # (who, body, status, case status, outcome, queue)
    ("duty_clinician", {"outcome": "accept"}, 200, "waiting", None, NORWICH),
    (
        "duty_clinician",
        {"outcome": "accept", "queue_id": OSS_NORWICH},
        200,
        "waiting",
        None,
        OSS_NORWICH,
    ),
    ("duty_clinician", {"outcome": "signpost"}, 200, "closed", "signposted", "duty"),
    ("duty_clinician", {"outcome": "adult_handover"}, 200, "closed", "adult_handover", "duty"),
    ("lead_of_duty", {"outcome": "accept"}, 200, "waiting", None, NORWICH),
    ("practitioner_of_duty", {"outcome": "accept"}, 403, "waiting", None, "duty"),
    ("lead_of_norwich", {"outcome": "accept"}, 404, "waiting", None, "duty"),
    ("call_handler", {"outcome": "accept"}, 404, "waiting", None, "duty"),
    (
        "duty_clinician",
        {"outcome": "accept", "queue_id": "no-such-queue"},
        422,
        "waiting",
        None,
        "duty",
    ),
    ("duty_clinician", {"outcome": "signpost", "queue_id": NORWICH}, 422, "waiting", None, "duty"),
    ("duty_clinician", {"outcome": "maybe"}, 422, "waiting", None, "duty"),
]


@pytest.mark.parametrize(("who", "body", "status", "case_status", "outcome", "queue"), REVIEW_RULES)
async def test_clinical_review_rules(
    client, staff_headers, who, body, status, case_status, outcome, queue
):
    referral = await _leaver(client, staff_headers)
    admin = staff_headers("admin", subject="admin-1")  # reads the case wherever it moves
    before = await _case(client, referral["case_id"], admin)
    assert before["eligibility"]["awaiting_review"] is True
    assert before["review_proposal"]["queue_id"] == NORWICH
    response = await _act(
        client,
        referral["case_id"],
        "review",
        _headers(staff_headers, who),
        {"reason": "Seen with the young person; needs are ours to meet", **body},
    )
    assert response.status_code == status, response.text
    after = await _case(client, referral["case_id"], admin)
    assert after["status"] == case_status
    assert after["outcome"] == outcome
    assert after["queue_id"] == queue
    if status == 422:
        assert response.json()["errors"][0]["field"] in ("queue_id", "outcome")
    if status == 200:
        reviewed = after["eligibility"]
        assert reviewed["review"] == body["outcome"]
        assert reviewed["outcome"] == ("eligible" if body["outcome"] == "accept" else "ineligible")
        assert reviewed["engine_outcome"] == "clinical_review"
        assert reviewed["reviewed_by"] == response.json()["eligibility"]["reviewed_by"]
        assert reviewed["reason"].startswith("Seen with")
        assert reviewed["awaiting_review"] is False
        assert after["review_proposal"] is None
        assert response.headers["etag"] == f'"{after["version"]}"'
    else:
        assert after["version"] == before["version"]


async def test_review_needs_a_reason(client, staff_headers):
    referral = await _leaver(client, staff_headers)
    response = await _act(
        client,
        referral["case_id"],
        "review",
        _headers(staff_headers, "duty_clinician"),
        {"outcome": "accept"},
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "reason"


async def test_review_is_only_for_a_case_awaiting_it(client, staff_headers):
    duty = _headers(staff_headers, "duty_clinician")
    referral = await _leaver(client, staff_headers)
    body = {"outcome": "accept", "reason": "Ours"}
    assert (await _act(client, referral["case_id"], "review", duty, body)).status_code == 200
    # Accepted into a Community Base: the duty clinician no longer sees it; an admin may try.
    admin = staff_headers("admin", subject="admin-1")
    again = await _act(client, referral["case_id"], "review", admin, body, version=2)
    assert again.status_code == 409
    assert again.json()["type"] == "not_awaiting_review"
    # An eligible referral's case was never sent for review.
    eligible = await client.post(
        "/v1/referrals",
        json=referral_body(nhs=next(NHS), risk={"suicidal": "plan"}),
        headers=staff_headers("call_handler"),
    )
    eligible_case = eligible.json()["case_id"]
    lead = _headers(staff_headers, "lead_of_norwich")
    refused = await _act(client, eligible_case, "review", lead, body)
    assert refused.status_code == 409
    assert refused.json()["type"] == "not_awaiting_review"


async def test_review_keeps_the_engine_decision_and_records_who_when_why(
    client, staff_headers, session, clock
):
    referral = await _leaver(client, staff_headers)
    duty = _headers(staff_headers, "duty_clinician")
    clock.set(clock.now() + timedelta(hours=2))
    response = await _act(
        client, referral["case_id"], "review", duty, {"outcome": "signpost", "reason": "Kooth"}
    )
    assert response.status_code == 200, response.text
    assert _at(response.json()["eligibility"]["reviewed_at"]) == clock.now()
    # The engine's decision is untouched.
    stored = await client.get(f"/v1/referrals/{referral['id']}", headers=duty)
    assert stored.json()["decision"]["eligibility"]["outcome"] == "clinical_review"
    events = (
        await session.scalars(
            select(CaseEvent)
            .where(CaseEvent.case_id == uuid.UUID(referral["case_id"]))
            .order_by(CaseEvent.seq)
        )
    ).all()
    assert [e.type for e in events] == ["case_opened", "clinical_review"]
    assert events[-1].actor_id == "duty-1" and events[-1].reason == "Kooth"
    assert events[-1].data["outcome"] == "signpost"
    audit_row = await session.scalar(
        select(AuditEvent).where(
            AuditEvent.resource_id == referral["case_id"], AuditEvent.action == "review_close"
        )
    )
    assert audit_row is not None and audit_row.details["review"] == "signpost"


@pytest.mark.parametrize(
    ("duty_queues", "released"),
    [([], True), ([NORWICH], False)],
    ids=["does-not-work-target", "works-target"],
)
async def test_accepting_releases_a_key_worker_who_does_not_work_the_team(
    client, staff_headers, duty_queues, released
):
    referral = await _leaver(client, staff_headers)
    me = staff_headers("duty_clinician", queues=duty_queues, subject="duty-claimer")
    claimed = await client.post("/v1/queues/duty/claim", headers=me)
    assert claimed.status_code == 200, claimed.text
    assert claimed.json()["id"] == referral["case_id"]
    response = await _act(
        client,
        referral["case_id"],
        "review",
        me,
        {"outcome": "accept", "reason": "Ours"},
        version=claimed.json()["version"],
    )
    assert response.status_code == 200, response.text
    case = response.json()
    assert case["queue_id"] == NORWICH
    if released:
        assert case["status"] == "waiting" and case["key_worker_id"] is None
    else:
        assert case["status"] == "allocated" and case["key_worker_id"] == "duty-claimer"


# Re-grading --------------------------------------------------------------------------------------

HOURS = {"A": 0, "B": 4, "C": 24, "D": 72, "E": 672, "G": 168}

REGRADE_RULES = [
    # (from, to, hours since receipt, expected respond-by in hours from receipt, queue)
    ("E", "D", 48, 48 + 72, NORWICH),  # upgrade: from now …
    ("D", "C", 70, 72, NORWICH),  # … never later than the old deadline
    ("D", "E", 10, 672, NORWICH),  # downgrade: from the referral's receipt
    ("E", "G", 10, 168, NORWICH),  # G is less urgent than E, with a shorter window
    ("E", "F", 10, None, NORWICH),  # F has no window
    ("E", "B", 48, 48 + 4, "crisis"),  # a crisis code moves the case to crisis
    ("E", "A", 48, 48, "crisis"),  # A: at once
]


@pytest.mark.parametrize(("old", "new", "after_hours", "respond_hours", "queue"), REGRADE_RULES)
async def test_regrade_rules(
    client, staff_headers, session, clock, old, new, after_hours, respond_hours, queue
):
    received = clock.now()
    case = await add_case(
        session, received_at=received, urgency=old, status="allocated", key_worker_id="worker-key"
    )
    await session.commit()
    clock.set(received + timedelta(hours=after_hours))
    response = await _act(
        client,
        case.id,
        "urgency",
        _headers(staff_headers, "key_worker"),
        {"code": new, "reason": "Assessed on the phone"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["urgency_code"] == new
    expected = None if respond_hours is None else received + timedelta(hours=respond_hours)
    assert _at(body["waiting_clock"]["respond_by_at"]) == expected
    assert body["queue_id"] == queue
    if queue == "crisis":  # the key worker (a Norwich practitioner) does not work crisis
        assert body["status"] == "waiting" and body["key_worker_id"] is None
    else:
        assert body["status"] == "allocated" and body["key_worker_id"] == "worker-key"
    change = await session.scalar(
        select(CaseUrgencyChange).where(CaseUrgencyChange.case_id == case.id)
    )
    assert change is not None
    assert (change.source, change.from_code, change.to_code) == ("regrade", old, new)
    assert change.reason == "Assessed on the phone" and change.changed_by_id == "worker-key"


def _at(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


REGRADE_ACCESS = [
    ("key_worker", 200),
    ("duty_clinician_of_norwich", 200),
    ("lead_of_norwich", 200),
    ("practitioner_in_team", 403),
    ("lead_of_lowestoft", 404),
    ("call_handler", 404),
]


@pytest.mark.parametrize(("who", "status"), REGRADE_ACCESS)
async def test_who_may_regrade(client, staff_headers, session, clock, who, status):
    case = await add_case(
        session, received_at=clock.now(), status="allocated", key_worker_id="worker-key"
    )
    await session.commit()
    response = await _act(
        client, case.id, "urgency", _headers(staff_headers, who), {"code": "D", "reason": "x"}
    )
    assert response.status_code == status, response.text


async def test_regrade_refusals(client, staff_headers, session, clock):
    me = _headers(staff_headers, "key_worker")
    case = await add_case(
        session, received_at=clock.now(), status="allocated", key_worker_id="worker-key"
    )
    closed = await add_case(session, received_at=clock.now(), status="closed")
    await session.commit()
    same = await _act(client, case.id, "urgency", me, {"code": "E", "reason": "x"})
    assert same.status_code == 409 and same.json()["type"] == "urgency_unchanged"
    for body, field in (({"code": "H", "reason": "x"}, "code"), ({"code": "D"}, "reason")):
        bad = await _act(client, case.id, "urgency", me, body)
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == field
    lead = _headers(staff_headers, "lead_of_norwich")
    gone = await _act(client, closed.id, "urgency", lead, {"code": "D", "reason": "x"})
    assert gone.status_code == 409 and gone.json()["type"] == "illegal_transition"


async def test_after_first_contact_a_regrade_keeps_the_deadline(
    client, staff_headers, session, clock
):
    case = await add_case(
        session, received_at=clock.now(), status="contacted", key_worker_id="worker-key"
    )
    await session.commit()
    deadline = case.respond_by_at
    response = await _act(
        client,
        case.id,
        "urgency",
        _headers(staff_headers, "key_worker"),
        {"code": "D", "reason": "x"},
    )
    assert response.status_code == 200, response.text
    assert _at(response.json()["waiting_clock"]["respond_by_at"]) == deadline


async def test_engine_code_and_every_regrade_are_kept(client, staff_headers, session, clock):
    referral = await client.post(
        "/v1/referrals", json=referral_body(nhs=next(NHS)), headers=staff_headers("call_handler")
    )
    case_id = referral.json()["case_id"]
    lead = _headers(staff_headers, "lead_of_norwich")
    for version, code in ((1, "D"), (2, "E"), (3, "C")):
        clock.set(clock.now() + timedelta(minutes=1))
        response = await _act(
            client, case_id, "urgency", lead, {"code": code, "reason": "x"}, version
        )
        assert response.status_code == 200, response.text
    body = response.json()
    assert (body["engine_urgency_code"], body["urgency_code"]) == ("E", "C")
    changes = (
        await session.scalars(
            select(CaseUrgencyChange)
            .where(CaseUrgencyChange.case_id == uuid.UUID(case_id))
            .order_by(CaseUrgencyChange.changed_at)
        )
    ).all()
    assert [(c.engine_code, c.from_code, c.to_code) for c in changes] == [
        ("E", "E", "D"),
        ("E", "D", "E"),
        ("E", "E", "C"),
    ]
    events = (
        await session.scalars(select(CaseEvent.type).where(CaseEvent.case_id == uuid.UUID(case_id)))
    ).all()
    assert sorted(events) == sorted(
        ["case_opened", "urgency_raised", "urgency_lowered", "urgency_raised"]
    )


# Transfer ----------------------------------------------------------------------------------------

TRANSFER_RULES = [
    # (who, target, status, queue after, key worker kept)
    ("lead_of_norwich", LOWESTOFT, 200, LOWESTOFT, False),
    ("duty_clinician_of_norwich", LOWESTOFT, 200, LOWESTOFT, False),
    ("lead_of_norwich", NORWICH, 409, NORWICH, True),
    ("lead_of_norwich", "no-such-queue", 422, NORWICH, True),
    ("key_worker", LOWESTOFT, 403, NORWICH, True),
    ("practitioner_in_team", LOWESTOFT, 403, NORWICH, True),
    ("lead_of_lowestoft", LOWESTOFT, 404, NORWICH, True),
]


@pytest.mark.parametrize(("who", "target", "status", "queue", "kept"), TRANSFER_RULES)
async def test_transfer_rules(
    client, staff_headers, session, clock, who, target, status, queue, kept
):
    received = clock.now() - timedelta(days=3)
    case = await add_case(
        session, received_at=received, status="allocated", key_worker_id="worker-key"
    )
    await add_staff(session, "worker-key", "practitioner", (NORWICH,), seen_at=clock.now())
    await session.commit()
    clock_before = (case.id, case.received_at, case.respond_by_at)
    response = await _act(
        client,
        case.id,
        "transfer",
        _headers(staff_headers, who),
        {"queue_id": target, "reason": "Moved to Lowestoft"},
    )
    assert response.status_code == status, response.text
    session.expire_all()
    stored = await session.get(Case, clock_before[0])
    assert stored is not None
    assert stored.queue_id == queue
    # The waiting clock keeps running: same start, same deadline.
    assert (stored.received_at, stored.respond_by_at) == clock_before[1:]
    assert (stored.key_worker_id == "worker-key") is kept
    if status == 200:
        assert stored.status == "waiting"
        types = (
            await session.scalars(
                select(CaseEvent.type).where(CaseEvent.case_id == stored.id).order_by(CaseEvent.seq)
            )
        ).all()
        assert list(types) == ["transferred", "key_worker_released"]


async def test_a_key_worker_who_works_the_target_queue_keeps_the_case(
    client, staff_headers, session, clock
):
    case = await add_case(
        session, received_at=clock.now(), status="active", key_worker_id="worker-both"
    )
    await add_staff(
        session, "worker-both", "practitioner", (NORWICH, LOWESTOFT), seen_at=clock.now()
    )
    await session.commit()
    response = await _act(
        client,
        case.id,
        "transfer",
        _headers(staff_headers, "lead_of_norwich"),
        {"queue_id": LOWESTOFT, "reason": "Closer to home"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["queue_id"], body["status"], body["key_worker_id"]) == (
        LOWESTOFT,
        "active",
        "worker-both",
    )


async def test_transfer_needs_a_reason(client, staff_headers, session, clock):
    case = await add_case(session, received_at=clock.now())
    await session.commit()
    response = await _act(
        client,
        case.id,
        "transfer",
        _headers(staff_headers, "lead_of_norwich"),
        {"queue_id": LOWESTOFT},
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "reason"


# The contract ------------------------------------------------------------------------------------

NEW_ROUTES = {
    ("post", "/v1/cases/{case_id}/review"): {
        "200",
        "400",
        "401",
        "403",
        "404",
        "409",
        "412",
        "413",
        "415",
        "422",
        "428",
        "503",
    },
    ("post", "/v1/cases/{case_id}/urgency"): {
        "200",
        "400",
        "401",
        "403",
        "404",
        "409",
        "412",
        "413",
        "415",
        "422",
        "428",
        "503",
    },
    ("post", "/v1/cases/{case_id}/transfer"): {
        "200",
        "400",
        "401",
        "403",
        "404",
        "409",
        "412",
        "413",
        "415",
        "422",
        "428",
        "503",
    },
    ("post", "/v1/cases/{case_id}/contacts"): {
        "201",
        "400",
        "401",
        "403",
        "404",
        "409",
        "412",
        "413",
        "415",
        "422",
        "428",
        "503",
    },
    ("get", "/v1/cases/{case_id}/contacts"): {"200", "401", "403", "404", "422", "503"},
    ("get", "/v1/me/cases"): {"200", "401", "403", "503"},
}


@pytest.mark.parametrize(("method", "path"), sorted(NEW_ROUTES))
async def test_openapi_lists_every_status_of_the_new_routes(client, method, path):
    document = (await client.get("/openapi.json")).json()
    operation = document["paths"][path][method]
    assert NEW_ROUTES[(method, path)] <= set(operation["responses"]), operation["responses"]
    if method == "post":
        names = {p["name"] for p in operation.get("parameters", [])}
        assert "If-Match" in names


# What a review owes people (docs/domain/signposting-and-messages.md) -----------------------


@pytest.mark.parametrize("outcome", ["signpost", "adult_handover", "accept"])
async def test_a_review_signposts_and_tells_the_referrer_again(
    client, staff_headers, session, outcome
):
    from sqlalchemy import select

    from app.models import Notification, Referral

    body = referral_body(
        nhs=next(NHS),
        referrer={"type": "gp", "name": "Dr Example", "email": "surgery@example.org"},
        **CAMHS_LEAVER,
    )
    made = await client.post("/v1/referrals", json=body, headers=staff_headers("call_handler"))
    assert made.status_code == 201, made.text
    referral_id, case_id = made.json()["id"], made.json()["case_id"]
    reviewed = await _act(
        client,
        case_id,
        "review",
        _headers(staff_headers, "duty_clinician"),
        {"outcome": outcome, "reason": "Spoke with them and their GP."},
    )
    assert reviewed.status_code == 200, reviewed.text

    stored = await session.get(Referral, uuid.UUID(referral_id), populate_existing=True)
    assert stored is not None
    if outcome == "accept":
        assert not stored.signposting
    else:
        assert stored.signposting, "a signposted or handed-over young person is given services"
        ages = [(s["min_age"], s["max_age"]) for s in stored.signposting]
        assert all((lo is None or lo <= 20) and (hi is None or hi >= 20) for lo, hi in ages)
    messages = (
        await session.scalars(
            select(Notification).where(
                Notification.referral_id == uuid.UUID(referral_id),
                Notification.kind == "referrer_outcome",
            )
        )
    ).all()
    # The first outcome at intake ("awaiting clinical review"), then the review's.
    assert len(messages) == 2
    review_message = next(m for m in messages if m.dedupe_key.startswith("referrer_outcome:review"))
    assert review_message.recipient == "surgery@example.org"
    assert stored.reference in review_message.personalisation["body"]
