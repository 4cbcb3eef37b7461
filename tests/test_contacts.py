"""Contacts as records (docs/domain/after-the-door.md): when, how, attended or not, with whom.
The first attended contact stops the waiting clock; the case counts the first and second
attended contacts and the did-not-attend ones. And "my cases"."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from app.models import AuditEvent, Case, CaseContact, CaseSupporter
from tests.case_factories import add_case, if_match

NORWICH = "cb-norwich"


def key_worker(staff_headers):
    return staff_headers("practitioner", queues=[NORWICH], subject="worker-key")


def contact(at: datetime, attendance: str = "attended", **overrides: Any) -> dict[str, Any]:
    return {
        "occurred_at": at.isoformat(),
        "mechanism": "telephone",
        "attendance": attendance,
        "with": "young_person",
        **overrides,
    }


async def _record(client, case_id, headers, body, version):
    return await client.post(
        f"/v1/cases/{case_id}/contacts", json=body, headers={**headers, **if_match(version)}
    )


def _at(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


# Each row: the contacts recorded in turn (minutes after receipt, attendance), and then the
# case's status, first and second attended (minutes after receipt) and did-not-attend count.
CONTACT_RULES = [
    ([(30, "attended")], "contacted", 30, None, 0),
    ([(30, "did_not_attend")], "allocated", None, None, 1),
    ([(30, "cancelled_by_patient"), (40, "cancelled_by_service")], "allocated", None, None, 0),
    ([(30, "did_not_attend"), (60, "attended"), (90, "attended")], "contacted", 60, 90, 1),
    # Recorded late: an earlier attended contact becomes the first.
    ([(90, "attended"), (60, "attended")], "contacted", 60, 90, 0),
    ([(90, "attended"), (60, "attended"), (30, "attended")], "contacted", 30, 60, 0),
]


@pytest.mark.parametrize(("contacts", "status", "first", "second", "dna"), CONTACT_RULES)
async def test_contact_rules(
    client, staff_headers, session, clock, contacts, status, first, second, dna
):
    received = clock.now() - timedelta(hours=3)
    case = await add_case(
        session, received_at=received, status="allocated", key_worker_id="worker-key"
    )
    await session.commit()
    version = 1
    for minutes, attendance in contacts:
        response = await _record(
            client,
            case.id,
            key_worker(staff_headers),
            contact(received + timedelta(minutes=minutes), attendance),
            version,
        )
        assert response.status_code == 201, response.text
        version = response.json()["version"]
    body = response.json()
    assert body["status"] == status
    summary = body["contacts"]
    expect = {
        "first": None if first is None else received + timedelta(minutes=first),
        "second": None if second is None else received + timedelta(minutes=second),
    }
    assert _at(summary["first_attended_at"]) == expect["first"]
    assert _at(summary["second_attended_at"]) == expect["second"]
    assert summary["did_not_attend_count"] == dna
    assert body["waiting_clock"]["running"] is (first is None)
    assert _at(body["waiting_clock"]["stopped_at"]) == expect["first"]
    # The latest attended contact, whatever order they were recorded in (the CYP one-contact
    # report finds contacted cases by first and latest; docs/domain/reporting.md).
    attended = [m for m, a in contacts if a == "attended"]
    stored = await session.scalar(
        select(Case.last_contact_at)
        .where(Case.id == case.id)
        .execution_options(populate_existing=True)
    )
    assert stored == (received + timedelta(minutes=max(attended)) if attended else None)


async def test_contacts_are_listed_in_the_order_they_happened(
    client, staff_headers, session, clock
):
    received = clock.now() - timedelta(hours=3)
    case = await add_case(
        session, received_at=received, status="allocated", key_worker_id="worker-key"
    )
    await session.commit()
    me = key_worker(staff_headers)
    later = contact(received + timedelta(hours=2), mechanism="video", **{"with": "parent_carer"})
    first = await _record(client, case.id, me, later, 1)
    assert first.headers["location"].startswith(f"/v1/cases/{case.id}/contacts")
    await _record(client, case.id, me, contact(received + timedelta(hours=1), "did_not_attend"), 2)
    listed = await client.get(f"/v1/cases/{case.id}/contacts", headers=me)
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert [(c["attendance"], c["with"], c["mechanism"]) for c in body["items"]] == [
        ("did_not_attend", "young_person", "telephone"),
        ("attended", "parent_carer", "video"),
    ]
    assert body["summary"]["did_not_attend_count"] == 1
    assert body["items"][0]["recorded_by_id"] == "worker-key"
    assert listed.headers["etag"] == '"3"'
    audited = await session.scalar(
        select(AuditEvent).where(
            AuditEvent.resource_id == str(case.id), AuditEvent.action == "read"
        )
    )
    assert audited is not None and audited.details["view"] == "contacts"


@pytest.mark.parametrize(
    ("body_change", "field"),
    [
        ({"occurred_at": "future"}, "occurred_at"),
        ({"occurred_at": "before_referral"}, "occurred_at"),
        ({"occurred_at": "2026-01-01T10:00:00"}, "occurred_at"),  # no time zone
        ({"mechanism": "carrier_pigeon"}, "mechanism"),
        ({"attendance": "maybe"}, "attendance"),
        ({"with": "neighbour"}, "with"),
        ({"note": "free text"}, "note"),
    ],
)
async def test_contact_input_is_checked(client, staff_headers, session, clock, body_change, field):
    received = clock.now() - timedelta(hours=3)
    case = await add_case(
        session, received_at=received, status="allocated", key_worker_id="worker-key"
    )
    await session.commit()
    body = contact(received + timedelta(minutes=5))
    when = {
        "future": (clock.now() + timedelta(minutes=1)).isoformat(),
        "before_referral": (received - timedelta(minutes=1)).isoformat(),
    }
    body.update({k: when.get(v, v) for k, v in body_change.items()})
    response = await _record(client, case.id, key_worker(staff_headers), body, 1)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == field
    assert await session.scalar(select(CaseContact).where(CaseContact.case_id == case.id)) is None


CONTACT_ACCESS = [
    ("key_worker", 201),
    ("supporter", 201),
    ("team_lead", 201),
    ("practitioner_in_team", 403),
    ("practitioner_elsewhere", 404),
    ("call_handler", 404),
]


@pytest.mark.parametrize(("who", "status"), CONTACT_ACCESS)
async def test_who_may_record_a_contact(client, staff_headers, session, clock, who, status):
    case = await add_case(
        session,
        received_at=clock.now() - timedelta(hours=1),
        status="allocated",
        key_worker_id="worker-key",
    )
    session.add(
        CaseSupporter(
            case_id=case.id,
            kind="worker",
            worker_id="worker-help",
            added_by_id="worker-key",
            added_at=clock.now(),
        )
    )
    await session.commit()
    role, queues, subject = {
        "key_worker": ("practitioner", [NORWICH], "worker-key"),
        "supporter": ("practitioner", ["cb-lowestoft"], "worker-help"),
        "team_lead": ("team_lead", [NORWICH], "lead-1"),
        "practitioner_in_team": ("practitioner", [NORWICH], "worker-other"),
        "practitioner_elsewhere": ("practitioner", ["cb-lowestoft"], "worker-far"),
        "call_handler": ("call_handler", [NORWICH], "handler-1"),
    }[who]
    response = await _record(
        client,
        case.id,
        staff_headers(role, queues=queues, subject=subject),
        contact(clock.now() - timedelta(minutes=5)),
        1,
    )
    assert response.status_code == status, response.text


@pytest.mark.parametrize("status", ["waiting", "closed"])
async def test_a_case_not_held_takes_no_contact(client, staff_headers, session, clock, status):
    case = await add_case(session, received_at=clock.now() - timedelta(hours=1), status=status)
    await session.commit()
    lead = staff_headers("team_lead", queues=[NORWICH], subject="lead-1")
    response = await _record(client, case.id, lead, contact(clock.now()), 1)
    assert response.status_code == 409
    assert response.json()["type"] == "illegal_transition"


async def test_the_older_first_contact_action_records_a_contact(
    client, staff_headers, session, clock
):
    case = await add_case(
        session,
        received_at=clock.now() - timedelta(hours=1),
        status="allocated",
        key_worker_id="worker-key",
    )
    await session.commit()
    me = key_worker(staff_headers)
    response = await client.post(
        f"/v1/cases/{case.id}/contact",
        json={"contact_type": "assessment", "method": "phone"},
        headers={**me, **if_match(1)},
    )
    assert response.status_code == 200, response.text
    assert response.json()["contacts"]["first_attended_at"] is not None
    listed = (await client.get(f"/v1/cases/{case.id}/contacts", headers=me)).json()
    assert [(c["mechanism"], c["attendance"], c["contact_type"]) for c in listed["items"]] == [
        ("telephone", "attended", "assessment")
    ]


# My cases ----------------------------------------------------------------------------------------


async def test_my_cases_are_the_ones_i_hold_or_support_most_urgent_first(
    client, staff_headers, session, clock
):
    now = clock.now()
    held_e = await add_case(
        session, received_at=now, urgency="E", status="allocated", key_worker_id="me-1"
    )
    held_c = await add_case(
        session, received_at=now, urgency="C", status="active", key_worker_id="me-1"
    )
    supported = await add_case(
        session, received_at=now, urgency="D", status="allocated", key_worker_id="other"
    )
    session.add(
        CaseSupporter(
            case_id=supported.id, kind="worker", worker_id="me-1", added_by_id="other", added_at=now
        )
    )
    await add_case(session, received_at=now, urgency="B", status="closed", key_worker_id="me-1")
    await add_case(session, received_at=now, urgency="A", status="allocated", key_worker_id="other")
    await session.commit()
    me = staff_headers("practitioner", queues=[NORWICH], subject="me-1")
    response = await client.get("/v1/me/cases", headers=me)
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert [(uuid.UUID(i["id"]), i["relationship"]) for i in items] == [
        (held_c.id, "key_worker"),
        (supported.id, "supporter"),
        (held_e.id, "key_worker"),
    ]
    listed = (
        await session.scalars(
            select(AuditEvent.resource_id).where(
                AuditEvent.action == "list", AuditEvent.actor_id == "me-1"
            )
        )
    ).all()
    assert sorted(listed) == sorted(str(c) for c in (held_c.id, supported.id, held_e.id))


@pytest.mark.parametrize("role", ["call_handler"])
async def test_my_cases_is_for_roles_that_hold_cases(client, staff_headers, make_client, role):
    assert (await client.get("/v1/me/cases", headers=staff_headers(role))).status_code == 403
    _, system = await make_client()
    assert (await client.get("/v1/me/cases", headers=system)).status_code == 403
    assert (await client.get("/v1/me/cases")).status_code == 401
