"""Cases: the state machine, optimistic concurrency, the waiting clock, THRIVE decisions,
allocation, supporters, episodic care, access and audit."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.models import AuditEvent, Case
from app.models.case import OPEN_CASE_STATUSES
from app.services.cases import TRANSITIONS, CaseAction, Status
from tests.case_factories import add_case, add_staff, if_match
from tests.factories import referral_body, valid_test_nhs_numbers

NORWICH = "cb-norwich"
NHS = valid_test_nhs_numbers(6, start=4000)


def worker(staff_headers, subject: str = "worker-1", queues=(NORWICH,)):
    return staff_headers("practitioner", queues=list(queues), subject=subject)


def lead(staff_headers, queues=(NORWICH,)):
    return staff_headers("team_lead", queues=list(queues), subject="lead-1")


@pytest.fixture
async def known_staff(session, clock) -> None:
    """Workers the tests allocate to or add as supporters, as the service has seen them."""
    for staff_id in ("worker-1", "worker-2", "worker-9", "helper-1"):
        await add_staff(session, staff_id, "practitioner", (NORWICH,), seen_at=clock.now())


async def post(client, case_id, action: str, headers, version: int | None, body=None):
    extra = if_match(version) if version is not None else {}
    return await client.post(
        f"/v1/cases/{case_id}/{action}", json=body or {}, headers={**headers, **extra}
    )


async def refer(client, staff_headers, **overrides) -> dict:
    response = await client.post(
        "/v1/referrals", json=referral_body(**overrides), headers=staff_headers("call_handler")
    )
    assert response.status_code == 201, response.text
    return response.json()


# The lifecycle ---------------------------------------------------------------------------------


async def test_a_case_from_referral_to_closure_with_its_timeline(client, staff_headers, clock):
    referral = await refer(client, staff_headers, nhs=NHS[0])
    case_id = referral["case_id"]
    me = worker(staff_headers)
    start = clock.now()

    claim = await client.post(f"/v1/queues/{NORWICH}/claim", headers=me)
    assert claim.status_code == 200 and claim.json()["id"] == case_id
    assert claim.json()["referrals"][0]["reference"] == referral["reference"]

    clock.set(start + timedelta(hours=2))
    steps = [
        ("contact", {"contact_type": "assessment", "method": "phone"}, "contacted"),
        ("thrive", {"thrive_grouping": "getting_more_help", "reason": "agreed"}, "contacted"),
        ("start", {}, "active"),
        ("hold", {"reason": "exams; agreed to pause"}, "on_hold"),
        ("resume", {}, "active"),
        ("close", {"outcome": "returned_to_thriving"}, "closed"),
    ]
    version = claim.json()["version"]
    for action, body, status in steps:
        response = await post(client, case_id, action, me, version, body)
        assert response.status_code == 200, (action, response.text)
        assert response.json()["status"] == status
        assert response.json()["version"] == version + 1
        assert response.headers["etag"] == f'"{version + 1}"'
        version += 1

    case = response.json()
    assert case["outcome"] == "returned_to_thriving"
    assert case["closed_at"] is not None
    assert case["waiting_clock"]["stopped_at"] is not None
    assert case["waiting_clock"]["within_target"] is True
    assert case["first_contact_type"] == "assessment"

    timeline = await client.get(f"/v1/cases/{case_id}/events", headers=me)
    assert timeline.status_code == 200
    events = timeline.json()["events"]
    assert [e["type"] for e in events] == [
        "case_opened",
        "claimed",
        "first_contact",
        "thrive_changed",
        "intervention_started",
        "put_on_hold",
        "resumed",
        "closed",
    ]
    assert [e["seq"] for e in events] == list(range(1, 9))
    hold = events[5]
    assert hold["actor"] == {"kind": "staff", "id": "worker-1", "role": "practitioner"}
    assert (hold["from_status"], hold["to_status"]) == ("active", "on_hold")
    assert hold["reason"] == "exams; agreed to pause"
    assert events[2]["data"]["contact_type"] == "assessment"
    assert events[2]["data"]["method"] == "phone"
    assert events[-1]["data"]["outcome"] == "returned_to_thriving"

    # A closed case is off the worklist.
    listing = await client.get(f"/v1/queues/{NORWICH}/cases", headers=me)
    assert case_id not in {item["id"] for item in listing.json()["items"]}


# The state machine: every action from every status ----------------------------------------------

ACTION_REQUESTS = {
    CaseAction.ALLOCATE: ("allocate", {"key_worker_id": "worker-9"}),
    CaseAction.RECORD_CONTACT: ("contact", {"contact_type": "advice"}),
    CaseAction.START: ("start", {}),
    CaseAction.HOLD: ("hold", {"reason": "paused"}),
    CaseAction.RESUME: ("resume", {}),
    CaseAction.CLOSE: ("close", {"outcome": "declined"}),
    CaseAction.DECIDE_THRIVE: ("thrive", {"thrive_grouping": "getting_help"}),
    CaseAction.ADD_SUPPORTER: ("supporters", {"kind": "worker", "worker_id": "helper-1"}),
}


def _legal(action: CaseAction, status: Status) -> Status | None:
    if action is CaseAction.ALLOCATE and status is not Status.WAITING:
        action = CaseAction.REALLOCATE  # the same endpoint reallocates a held case
    return TRANSITIONS[action].get(status)


@pytest.mark.parametrize("status", list(Status))
@pytest.mark.parametrize("action", list(ACTION_REQUESTS))
async def test_every_action_from_every_status(
    client, staff_headers, session, clock, action, status, known_staff
):
    case = await add_case(session, received_at=clock.now(), status=status.value)
    path, body = ACTION_REQUESTS[action]
    # A team lead of the queue may do every action, so only the state decides.
    response = await post(client, case.id, path, lead(staff_headers), 1, body)
    target = _legal(action, status)
    if target is None:
        assert response.status_code == 409, response.text
        problem = response.json()
        assert problem["type"] == "illegal_transition"
        assert problem["current_status"] == status.value
        assert status.value in problem["detail"]
    else:
        assert response.status_code == 200, response.text
        assert response.json()["status"] == target.value
        assert response.json()["version"] == 2


def test_the_transitions_table_is_the_documented_lifecycle():
    """docs/domain/after-the-door.md: the lifecycle, plus opening (from no case), a key worker
    released by a move to a queue they do not work, and a clinical review closing a case."""
    forward = {
        (status.value if status else None, target.value)
        for action, moves in TRANSITIONS.items()
        for status, target in moves.items()
        if status is not target
    }
    assert forward == {
        (None, "waiting"),
        ("waiting", "allocated"),
        ("allocated", "contacted"),
        ("contacted", "active"),
        ("active", "on_hold"),
        ("on_hold", "active"),
        ("allocated", "closed"),
        ("contacted", "closed"),
        ("active", "closed"),
        ("on_hold", "closed"),
        # Released (moved to a queue the key worker does not work): waiting there.
        ("allocated", "waiting"),
        ("contacted", "waiting"),
        ("active", "waiting"),
        ("on_hold", "waiting"),
        # Clinical review: signposted or handed over to adult services.
        ("waiting", "closed"),
    }
    assert TRANSITIONS[CaseAction.OPEN] == {None: Status.WAITING}
    assert {s for s, t in TRANSITIONS[CaseAction.REVIEW_CLOSE].items()} == set(OPEN_CASE_STATUSES)
    # Nothing leaves "closed": a person who comes back gets a new case.
    assert all(Status.CLOSED not in moves for moves in TRANSITIONS.values())


# Optimistic concurrency -------------------------------------------------------------------------


async def test_if_match_is_required_and_must_be_current(
    client, staff_headers, session, clock, known_staff
):
    case = await add_case(session, received_at=clock.now(), status="active")
    me = worker(staff_headers, subject="user-practitioner")
    url = f"/v1/cases/{case.id}/hold"

    missing = await client.post(url, json={"reason": "x"}, headers=me)
    assert missing.status_code == 428
    assert missing.json()["errors"][0]["field"] == "header:If-Match"
    star = await client.post(url, json={"reason": "x"}, headers={**me, "If-Match": "*"})
    assert star.status_code == 428

    read = await client.get(f"/v1/cases/{case.id}", headers=me)
    assert read.headers["etag"] == '"1"'
    # Someone else changes the case after we read it …
    lead_change = await post(
        client,
        case.id,
        "supporters",
        lead(staff_headers),
        1,
        {"kind": "worker", "worker_id": "worker-2"},
    )
    assert lead_change.status_code == 200
    # … so our write, made against version 1, is refused and changes nothing.
    stale = await client.post(
        url, json={"reason": "x"}, headers={**me, "If-Match": read.headers["etag"]}
    )
    assert stale.status_code == 412
    assert stale.json()["current_version"] == 2
    assert stale.headers["etag"] == '"2"'
    after = await client.get(f"/v1/cases/{case.id}", headers=lead(staff_headers))
    assert after.json()["status"] == "active" and after.json()["version"] == 2

    # A strong tag, or a list of tags, naming the current version is accepted.
    ok = await client.post(
        url, json={"reason": "x"}, headers={**lead(staff_headers), "If-Match": '"1", "2"'}
    )
    assert ok.status_code == 200
    assert ok.json()["version"] == 3


async def test_checks_come_in_a_useful_order(client, staff_headers, session, clock):
    """404 before 403 before 428/412 before 409."""
    case = await add_case(session, received_at=clock.now(), status="closed")
    # Not readable at all → 404, whatever else is wrong.
    outsider = worker(staff_headers, queues=["cb-thetford"])
    assert (await post(client, case.id, "hold", outsider, None, {"reason": "x"})).status_code == 404
    # Readable (same team) but not theirs → 403 even without If-Match.
    colleague = worker(staff_headers, subject="colleague")
    assert (
        await post(client, case.id, "hold", colleague, None, {"reason": "x"})
    ).status_code == 403
    # Theirs to act on, stale → 412 before the state is considered.
    assert (
        await post(client, case.id, "hold", lead(staff_headers), 7, {"reason": "x"})
    ).status_code == 412
    assert (
        await post(client, case.id, "hold", lead(staff_headers), 1, {"reason": "x"})
    ).status_code == 409


# The waiting clock ------------------------------------------------------------------------------

URGENCY_CASES = [
    # code, overrides for referral_body, window in hours, queue
    ("A", {"risk": {"immediate_danger": True}}, 0, "crisis"),
    ("B", {"risk": {"suicidal": "intent"}}, 4, "crisis"),
    ("C", {"risk": {"suicidal": "plan"}}, 24, NORWICH),
    ("D", {"risk": {"suicidal": "thoughts"}}, 72, NORWICH),
    ("E", {}, 28 * 24, NORWICH),
    ("G", {"request": "advice"}, 7 * 24, "access-hub"),
]


@pytest.mark.parametrize(("code", "overrides", "hours", "queue_id"), URGENCY_CASES)
async def test_breach_is_detected_at_each_urgency_window(
    client, staff_headers, clock, code, overrides, hours, queue_id
):
    received = clock.now()
    referral = await refer(client, staff_headers, **overrides)
    assert referral["decision"]["urgency"]["code"] == code
    assert referral["decision"]["route"]["queue_id"] == queue_id
    case_id = referral["case_id"]
    admin = staff_headers("admin")

    async def breached() -> tuple[bool, int, set[str]]:
        case = (await client.get(f"/v1/cases/{case_id}", headers=admin)).json()
        overview = (await client.get("/v1/queues", headers=admin)).json()["queues"]
        count = next(q["breached_count"] for q in overview if q["id"] == queue_id)
        listing = await client.get(
            f"/v1/queues/{queue_id}/cases", params={"breached": "true"}, headers=admin
        )
        return case["waiting_clock"]["breached"], count, {i["id"] for i in listing.json()["items"]}

    # At the respond-by time itself the case is due, not yet breached.
    clock.set(received + timedelta(hours=hours))
    assert await breached() == (False, 0, set())
    clock.set(received + timedelta(hours=hours, seconds=1))
    assert await breached() == (True, 1, {case_id})


async def test_first_contact_stops_the_clock_and_clears_the_breach(
    client, staff_headers, session, clock
):
    now = clock.now()
    case = await add_case(
        session, received_at=now - timedelta(hours=30), urgency="C", status="allocated"
    )
    me = worker(staff_headers, subject="user-practitioner")
    before = (await client.get(f"/v1/cases/{case.id}", headers=me)).json()
    assert before["waiting_clock"]["breached"] is True
    assert before["waiting_clock"]["running"] is True

    # The contact happened an hour ago (recorded now); the clock stops then.
    contacted_at = now - timedelta(hours=1)
    response = await post(
        client,
        case.id,
        "contact",
        me,
        1,
        {"contact_type": "advice", "contacted_at": contacted_at.isoformat()},
    )
    assert response.status_code == 200, response.text
    clock_state = response.json()["waiting_clock"]
    assert clock_state["running"] is False and clock_state["breached"] is False
    assert clock_state["stopped_at"] == contacted_at.isoformat().replace("+00:00", "Z")
    assert clock_state["within_target"] is False  # 29 hours for a 24-hour window

    overview = (await client.get("/v1/queues", headers=me)).json()["queues"]
    assert next(q for q in overview if q["id"] == NORWICH)["breached_count"] == 0
    timeline = (await client.get(f"/v1/cases/{case.id}/events", headers=me)).json()
    contact = timeline["events"][-1]
    assert contact["type"] == "first_contact"
    assert contact["data"]["within_target"] is False
    assert contact["data"]["waited_seconds"] == 29 * 3600


@pytest.mark.parametrize(
    ("offset", "message"),
    [(timedelta(minutes=5), "future"), (timedelta(hours=-48), "before the referral")],
)
async def test_contact_time_must_be_plausible(
    client, staff_headers, session, clock, offset, message
):
    case = await add_case(session, received_at=clock.now() - timedelta(hours=1), status="allocated")
    response = await post(
        client,
        case.id,
        "contact",
        worker(staff_headers, subject="user-practitioner"),
        1,
        {"contact_type": "advice", "contacted_at": (clock.now() + offset).isoformat()},
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "contacted_at"
    assert message in response.json()["detail"]


async def test_contact_needs_a_known_type_and_an_aware_time(client, staff_headers, session, clock):
    case = await add_case(session, received_at=clock.now(), status="allocated")
    me = worker(staff_headers, subject="user-practitioner")
    bad_type = await post(client, case.id, "contact", me, 1, {"contact_type": "letter"})
    assert bad_type.status_code == 422
    assert bad_type.json()["errors"][0]["field"] == "contact_type"
    naive = await post(
        client,
        case.id,
        "contact",
        me,
        1,
        {"contact_type": "advice", "contacted_at": "2026-01-01T10:00:00"},
    )
    assert naive.status_code == 422
    assert naive.json()["errors"][0]["field"] == "contacted_at"


# THRIVE -----------------------------------------------------------------------------------------


async def test_thrive_grouping_is_decided_with_the_young_person(
    client, staff_headers, session, clock
):
    case = await add_case(session, received_at=clock.now(), urgency="D", status="allocated")
    me = worker(staff_headers, subject="user-practitioner")
    read = (await client.get(f"/v1/cases/{case.id}", headers=me)).json()
    assert read["thrive"] == {
        "proposed": "getting_more_help",
        "decided": None,
        "decided_by": None,
        "decided_at": None,
    }
    # Not before they have met: the grouping is a shared decision.
    early = await post(client, case.id, "thrive", me, 1, {"thrive_grouping": "getting_help"})
    assert early.status_code == 409 and early.json()["current_status"] == "allocated"

    assert (
        await post(client, case.id, "contact", me, 1, {"contact_type": "assessment"})
    ).is_success
    clock.set(clock.now() + timedelta(days=1))
    confirm = await post(client, case.id, "thrive", me, 2, {"thrive_grouping": "getting_more_help"})
    assert confirm.status_code == 200, confirm.text
    decided_at = clock.now().isoformat().replace("+00:00", "Z")
    assert confirm.json()["thrive"] == {
        "proposed": "getting_more_help",
        "decided": "getting_more_help",
        "decided_by": "user-practitioner",
        "decided_at": decided_at,
    }
    change = await post(client, case.id, "thrive", me, 3, {"thrive_grouping": "getting_help"})
    assert change.json()["thrive"]["decided"] == "getting_help"
    events = (await client.get(f"/v1/cases/{case.id}/events", headers=me)).json()["events"]
    assert [e["type"] for e in events][-2:] == ["thrive_confirmed", "thrive_changed"]
    assert events[-1]["data"] == {
        "proposed": "getting_more_help",
        "previous": "getting_more_help",
        "decided": "getting_help",
    }

    unknown = await post(client, case.id, "thrive", me, 4, {"thrive_grouping": "getting_better"})
    assert unknown.status_code == 422


# Allocation ------------------------------------------------------------------------------------


async def test_team_leads_allocate_and_reallocate_with_history(
    client, staff_headers, session, clock, known_staff
):
    case = await add_case(session, received_at=clock.now())
    first = await post(
        client, case.id, "allocate", lead(staff_headers), 1, {"key_worker_id": "worker-1"}
    )
    assert first.status_code == 200
    assert first.json()["status"] == "allocated"
    assert first.json()["key_worker_id"] == "worker-1"

    me = worker(staff_headers)
    assert (await post(client, case.id, "contact", me, 2, {"contact_type": "advice"})).is_success
    # Reallocating keeps the case's progress: still contacted, now held by worker-2.
    second = await post(
        client,
        case.id,
        "allocate",
        lead(staff_headers),
        3,
        {"key_worker_id": "worker-2", "reason": "worker-1 on leave"},
    )
    assert second.status_code == 200
    assert second.json()["status"] == "contacted"
    assert second.json()["key_worker_id"] == "worker-2"
    # The former key worker can still read (same team) but no longer act.
    assert (await post(client, case.id, "start", me, 4)).status_code == 403
    # Allocating to the worker who already holds it is a conflict, not a silent no-op.
    same = await post(
        client, case.id, "allocate", lead(staff_headers), 4, {"key_worker_id": "worker-2"}
    )
    assert same.status_code == 409

    events = (await client.get(f"/v1/cases/{case.id}/events", headers=me)).json()["events"]
    allocations = [
        (e["type"], e["data"]["previous_key_worker_id"], e["data"]["key_worker_id"], e["reason"])
        for e in events
        if e["type"] in ("allocated", "reallocated")
    ]
    assert allocations == [
        ("allocated", None, "worker-1", None),
        ("reallocated", "worker-1", "worker-2", "worker-1 on leave"),
    ]


async def test_only_team_leads_of_the_queue_allocate(client, staff_headers, session, clock):
    case = await add_case(session, received_at=clock.now())
    body = {"key_worker_id": "worker-1"}
    # A practitioner of the team can read the case but not allocate it.
    assert (
        await post(client, case.id, "allocate", worker(staff_headers), 1, body)
    ).status_code == 403
    # A duty clinician acts on crisis cases but does not allocate in a community base.
    duty = staff_headers("duty_clinician", queues=[NORWICH])
    assert (await post(client, case.id, "allocate", duty, 1, body)).status_code == 403
    # Another team's lead cannot even see it.
    other = lead(staff_headers, queues=["cb-thetford"])
    assert (await post(client, case.id, "allocate", other, 1, body)).status_code == 404
    blank = await post(client, case.id, "allocate", lead(staff_headers), 1, {"key_worker_id": " "})
    assert blank.status_code == 422


# Supporters ------------------------------------------------------------------------------------


async def test_pulling_in_a_supporting_worker_and_team(client, staff_headers, session, clock):
    case = await add_case(session, received_at=clock.now(), status="active")
    owner = worker(staff_headers, subject="user-practitioner")
    helper = worker(staff_headers, subject="helper-1", queues=["cb-thetford"])
    specialist = worker(staff_headers, subject="lac-1", queues=["looked-after"])
    # Before being pulled in, neither can see the case.
    assert (await client.get(f"/v1/cases/{case.id}", headers=helper)).status_code == 404
    assert (await client.get(f"/v1/cases/{case.id}", headers=specialist)).status_code == 404

    added = await post(
        client,
        case.id,
        "supporters",
        owner,
        1,
        {"kind": "worker", "worker_id": "helper-1", "role": "family therapist"},
    )
    assert added.status_code == 200, added.text
    body = added.json()
    assert body["key_worker_id"] == "user-practitioner"  # ownership unchanged
    assert body["status"] == "active"
    (supporter,) = body["supporters"]
    assert supporter["worker_id"] == "helper-1" and supporter["role"] == "family therapist"
    assert supporter["added_by_id"] == "user-practitioner"

    team = await post(
        client, case.id, "supporters", owner, 2, {"kind": "team", "team_queue_id": "looked-after"}
    )
    assert team.status_code == 200, team.text
    assert len(team.json()["supporters"]) == 2

    # Supporters read the case; they do not act on it.
    assert (await client.get(f"/v1/cases/{case.id}", headers=helper)).status_code == 200
    assert (await client.get(f"/v1/cases/{case.id}/events", headers=specialist)).status_code == 200
    assert (await post(client, case.id, "hold", helper, 3, {"reason": "x"})).status_code == 403

    duplicate = await post(
        client, case.id, "supporters", owner, 3, {"kind": "worker", "worker_id": "helper-1"}
    )
    assert duplicate.status_code == 409
    key_worker = await post(
        client,
        case.id,
        "supporters",
        owner,
        3,
        {"kind": "worker", "worker_id": "user-practitioner"},
    )
    assert key_worker.status_code == 409
    unknown = await post(
        client, case.id, "supporters", owner, 3, {"kind": "team", "team_queue_id": "nowhere"}
    )
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "team_queue_id"
    mixed = await post(client, case.id, "supporters", owner, 3, {"kind": "worker"})
    assert mixed.status_code == 422 and mixed.json()["errors"][0]["field"] == "worker_id"

    removed = await post(
        client, case.id, f"supporters/{supporter['id']}/remove", owner, 3, {"reason": "done"}
    )
    assert removed.status_code == 200, removed.text
    assert [s["kind"] for s in removed.json()["supporters"]] == ["team"]
    assert (await client.get(f"/v1/cases/{case.id}", headers=helper)).status_code == 404
    again = await post(client, case.id, f"supporters/{supporter['id']}/remove", owner, 4)
    assert again.status_code == 409
    missing = await post(client, case.id, f"supporters/{uuid.uuid4()}/remove", owner, 4)
    assert missing.status_code == 404

    events = (await client.get(f"/v1/cases/{case.id}/events", headers=owner)).json()["events"]
    assert [e["type"] for e in events] == [
        "supporter_added",
        "supporter_added",
        "supporter_removed",
    ]


# Episodic care ---------------------------------------------------------------------------------


async def test_a_new_referral_joins_the_open_case_and_raises_its_urgency(
    client, staff_headers, session, clock
):
    first = await refer(client, staff_headers, nhs=NHS[1])  # E: 28 days, Norwich
    me = worker(staff_headers)
    claim = await client.post(f"/v1/queues/{NORWICH}/claim", headers=me)
    assert claim.json()["id"] == first["case_id"]
    before = claim.json()

    clock.set(clock.now() + timedelta(days=2))
    second = await refer(client, staff_headers, nhs=NHS[1], risk={"suicidal": "plan"})  # C
    assert second["case_id"] == first["case_id"]  # no duplicate case

    case = (await client.get(f"/v1/cases/{first['case_id']}", headers=me)).json()
    assert case["urgency_code"] == "C"
    assert case["waiting_clock"]["respond_by_at"] < before["waiting_clock"]["respond_by_at"]
    assert case["waiting_clock"]["respond_by_at"] == second["decision"]["urgency"]["respond_by_at"]
    # The key worker keeps it ("no referring on"); their stale screen cannot overwrite it.
    assert case["key_worker_id"] == "worker-1" and case["queue_id"] == NORWICH
    assert case["version"] > before["version"]
    stale = await post(
        client, case["id"], "contact", me, before["version"], {"contact_type": "advice"}
    )
    assert stale.status_code == 412
    assert [r["reference"] for r in case["referrals"]] == [first["reference"], second["reference"]]
    events = (await client.get(f"/v1/cases/{case['id']}/events", headers=me)).json()["events"]
    assert [e["type"] for e in events] == ["case_opened", "claimed", "referral_joined"]

    # A less urgent referral never lowers it.
    await refer(client, staff_headers, nhs=NHS[1])
    again = (await client.get(f"/v1/cases/{case['id']}", headers=me)).json()
    assert again["urgency_code"] == "C"
    assert again["waiting_clock"]["respond_by_at"] == case["waiting_clock"]["respond_by_at"]
    events = (await client.get(f"/v1/cases/{case['id']}/events", headers=me)).json()["events"]
    assert [e["seq"] for e in events] == [1, 2, 3, 4]


async def test_a_claim_shows_every_referral_of_the_case_oldest_first(
    client, staff_headers, session, clock
):
    first = await refer(client, staff_headers, nhs=NHS[3])
    clock.set(clock.now() + timedelta(minutes=5))
    second = await refer(client, staff_headers, nhs=NHS[3])
    assert second["case_id"] == first["case_id"]
    me = worker(staff_headers)
    claim = await client.post(f"/v1/queues/{NORWICH}/claim", headers=me)
    assert claim.status_code == 200 and claim.json()["id"] == first["case_id"]
    assert [r["reference"] for r in claim.json()["referrals"]] == [
        first["reference"],
        second["reference"],
    ]
    # The claim's response is the case as any later read shows it.
    read = (await client.get(f"/v1/cases/{first['case_id']}", headers=me)).json()
    assert read["referrals"] == claim.json()["referrals"]
    assert read["version"] == claim.json()["version"]
    # Two referrals and a claim: three events, numbered from the case's own counter.
    events = (await client.get(f"/v1/cases/{first['case_id']}/events", headers=me)).json()
    assert [(e["seq"], e["type"]) for e in events["events"]] == [
        (1, "case_opened"),
        (2, "referral_joined"),
        (3, "claimed"),
    ]
    counter = await session.scalar(
        select(Case.last_event_seq).where(Case.id == uuid.UUID(first["case_id"]))
    )
    assert counter == 3


async def test_a_person_whose_case_closed_comes_back_to_a_new_case(client, staff_headers, clock):
    first = await refer(client, staff_headers, nhs=NHS[2])
    me = worker(staff_headers)
    claim = await client.post(f"/v1/queues/{NORWICH}/claim", headers=me)
    closed = await post(
        client,
        first["case_id"],
        "close",
        me,
        claim.json()["version"],
        {"outcome": "not_contactable"},
    )
    assert closed.status_code == 200

    clock.set(clock.now() + timedelta(days=200))
    second = await refer(client, staff_headers, nhs=NHS[2])
    assert second["person_id"] == first["person_id"]
    assert second["case_id"] != first["case_id"]
    assert second["status"] == "waiting"
    old = (await client.get(f"/v1/cases/{first['case_id']}", headers=me)).json()
    assert old["status"] == "closed" and old["outcome"] == "not_contactable"


# Access and audit ------------------------------------------------------------------------------


async def test_case_reads_follow_the_access_policy(
    client, staff_headers, make_client, session, clock
):
    case = await add_case(session, received_at=clock.now(), status="allocated", key_worker_id="kw")
    url = f"/v1/cases/{case.id}"
    assert (await client.get(url)).status_code == 401
    _, system = await make_client()
    assert (await client.get(url, headers=system)).status_code == 403
    # Not allowed to see it: 404, exactly as for a case that does not exist.
    for headers in (
        staff_headers("call_handler"),
        worker(staff_headers, queues=["cb-thetford"]),
        staff_headers("duty_clinician", queues=[]),
    ):
        response = await client.get(url, headers=headers)
        assert response.status_code == 404
        assert response.json()["detail"] == "No case with this id."
    missing = await client.get(f"/v1/cases/{uuid.uuid4()}", headers=staff_headers("admin"))
    assert missing.json()["detail"] == "No case with this id."
    # The key worker from another team (they hold it), the team, admins: yes.
    for headers in (
        worker(staff_headers, subject="kw", queues=[]),
        worker(staff_headers),
        staff_headers("admin"),
    ):
        assert (await client.get(url, headers=headers)).status_code == 200
    assert (
        await client.get("/v1/cases/not-a-uuid", headers=staff_headers("admin"))
    ).status_code == 422


async def test_reads_and_changes_are_audited(client, staff_headers, session, clock):
    case = await add_case(session, received_at=clock.now(), status="allocated")
    me = worker(staff_headers, subject="user-practitioner")
    assert (await client.get(f"/v1/cases/{case.id}", headers=me)).status_code == 200
    assert (await client.get(f"/v1/cases/{case.id}/events", headers=me)).status_code == 200
    assert (await post(client, case.id, "contact", me, 1, {"contact_type": "advice"})).is_success
    rows = (
        await session.scalars(
            select(AuditEvent)
            .where(AuditEvent.resource_id == str(case.id))
            .order_by(AuditEvent.occurred_at, AuditEvent.action)
        )
    ).all()
    assert sorted((r.action, r.details.get("view")) for r in rows) == [
        ("read", "case"),
        ("read", "timeline"),
        ("record_contact", None),
    ]
    assert all(r.person_id == case.person_id and r.actor_id == "user-practitioner" for r in rows)
    change = next(r for r in rows if r.action == "record_contact")
    assert change.details == {"from_status": "allocated", "to_status": "contacted", "version": 2}


async def test_action_bodies_are_json_and_strict(client, staff_headers, session, clock):
    case = await add_case(session, received_at=clock.now(), status="active")
    me = {**worker(staff_headers, subject="user-practitioner"), **if_match(1)}
    url = f"/v1/cases/{case.id}/close"
    assert (await client.post(url, content=b"outcome=declined", headers=me)).status_code == 415
    unknown = await client.post(url, json={"outcome": "cured"}, headers=me)
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "outcome"
    extra = await client.post(url, json={"outcome": "declined", "status": "waiting"}, headers=me)
    assert extra.status_code == 422
    no_reason = await client.post(f"/v1/cases/{case.id}/hold", json={}, headers=me)
    assert no_reason.status_code == 422 and no_reason.json()["errors"][0]["field"] == "reason"
    stored = await session.scalar(
        select(Case).where(Case.id == case.id).execution_options(populate_existing=True)
    )
    assert stored is not None and stored.status == "active" and stored.version == 1


async def test_refused_attempts_are_audited_as_denied(client, staff_headers, session, clock):
    case = await add_case(session, received_at=clock.now(), status="active")
    outsider = worker(staff_headers, subject="outsider", queues=["cb-thetford"])
    colleague = worker(staff_headers, subject="colleague")
    assert (await client.get(f"/v1/cases/{case.id}", headers=outsider)).status_code == 404
    timeline = await client.get(f"/v1/cases/{case.id}/events", headers=outsider)
    assert timeline.status_code == 404
    hold = await post(client, case.id, "hold", colleague, 1, {"reason": "x"})
    assert hold.status_code == 403
    rows = (
        await session.scalars(
            select(AuditEvent)
            .where(AuditEvent.resource_id == str(case.id))
            .execution_options(populate_existing=True)
        )
    ).all()
    assert sorted((r.actor_id, r.action, r.outcome) for r in rows) == [
        ("colleague", "hold", "denied"),
        ("outsider", "read", "denied"),
        ("outsider", "read", "denied"),
    ]
    assert all(r.person_id == case.person_id for r in rows)


# Allocation only to someone who can hold the case ----------------------------------------------


@pytest.mark.parametrize(
    ("queue_id", "worker_role", "worker_queues", "allowed"),
    [
        (NORWICH, "practitioner", (NORWICH,), True),
        (NORWICH, "team_lead", (NORWICH,), True),
        (NORWICH, "duty_clinician", (NORWICH,), True),
        (NORWICH, "practitioner", ("cb-lowestoft",), False),  # another team
        (NORWICH, "duty_clinician", (), False),  # a community base is not a duty queue
        (NORWICH, "call_handler", (NORWICH,), False),  # call handlers never hold cases
        (NORWICH, "admin", (NORWICH,), False),
        ("crisis", "duty_clinician", (), True),  # duty clinicians hold crisis cases
        ("crisis", "practitioner", (NORWICH,), False),
    ],
)
async def test_allocation_only_to_a_worker_whose_role_holds_cases_in_the_queue(
    client, staff_headers, session, clock, queue_id, worker_role, worker_queues, allowed
):
    case = await add_case(session, received_at=clock.now(), queue_id=queue_id)
    # The worker is known because they have used the service (their token records them).
    seen = await client.get(
        "/v1/queues",
        headers=staff_headers(worker_role, queues=list(worker_queues), subject="worker-x"),
    )
    assert seen.status_code == 200
    manager = staff_headers("team_lead", queues=[queue_id], subject="lead-1")
    response = await post(client, case.id, "allocate", manager, 1, {"key_worker_id": "worker-x"})
    if allowed:
        assert response.status_code == 200, response.text
        assert response.json()["key_worker_id"] == "worker-x"
    else:
        assert response.status_code == 422, response.text
        assert [e["field"] for e in response.json()["errors"]] == ["key_worker_id"]
        assert (await session.get(Case, case.id)).key_worker_id is None


async def test_allocation_to_an_unknown_id_is_422_and_changes_nothing(
    client, staff_headers, session, clock
):
    case = await add_case(session, received_at=clock.now())
    response = await post(
        client, case.id, "allocate", lead(staff_headers), 1, {"key_worker_id": "nobody-7"}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "key_worker_id"
    after = await client.get(f"/v1/cases/{case.id}", headers=lead(staff_headers))
    assert after.json()["version"] == 1 and after.json()["status"] == "waiting"


@pytest.mark.parametrize(
    ("worker_id", "status"),
    [("helper-1", 200), ("nobody-8", 422), ("handler-1", 422)],
)
async def test_supporters_are_known_staff_who_work_with_cases(
    client, staff_headers, session, clock, known_staff, worker_id, status
):
    await add_staff(session, "handler-1", "call_handler", (NORWICH,), seen_at=clock.now())
    case = await add_case(session, received_at=clock.now(), status="allocated")
    body = {"kind": "worker", "worker_id": worker_id}
    response = await post(client, case.id, "supporters", lead(staff_headers), 1, body)
    assert response.status_code == status, response.text
    if status == 422:
        assert [e["field"] for e in response.json()["errors"]] == ["worker_id"]


def test_every_close_outcome_fits_its_column():
    """PostgreSQL refuses a value longer than the column: a case could not be closed with it."""
    from app.models import Case
    from app.models.case import CaseOutcome

    length = Case.__table__.c.outcome.type.length
    assert [o.value for o in CaseOutcome if len(o.value) > length] == []
