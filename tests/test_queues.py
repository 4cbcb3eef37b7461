"""Queues: the overview, worklists (order, keyset pages, filters, access) and claiming."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, select
from sqlalchemy.dialects import postgresql

from app.models import AuditEvent, Case, CaseEvent
from app.services.claims import CLAIM_STATEMENT, CLAIM_STATEMENT_POSTGRESQL
from app.services.queues import (
    WorklistFilter,
    queue_overview_statement,
    worklist_statement,
)
from tests.case_factories import add_case

NORWICH = "cb-norwich"


def practitioner(staff_headers, subject: str = "worker-1", queues=(NORWICH,)):
    return staff_headers("practitioner", queues=list(queues), subject=subject)


async def _overview(client, headers) -> dict[str, dict]:
    response = await client.get("/v1/queues", headers=headers)
    assert response.status_code == 200, response.text
    return {q["id"]: q for q in response.json()["queues"]}


async def _walk(client, headers, url: str, limit: int) -> list[dict]:
    """Every item of a worklist, page by page, following next_cursor."""
    items: list[dict] = []
    cursor = None
    for _ in range(100):
        params = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        response = await client.get(url, params=params, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= limit
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("pagination did not end")


# Overview ------------------------------------------------------------------------------------


async def test_overview_counts_open_unallocated_breached_and_oldest_wait(
    client, staff_headers, session, clock
):
    now = clock.now()
    oldest = now - timedelta(hours=30)
    await add_case(session, received_at=oldest, urgency="C")  # C: 24 h → breached
    await add_case(session, received_at=now - timedelta(hours=2), urgency="D")
    await add_case(session, received_at=now - timedelta(hours=50), status="active")  # contacted
    await add_case(session, received_at=now - timedelta(hours=1), status="allocated")
    await add_case(session, received_at=now - timedelta(days=90), status="closed")
    await add_case(session, received_at=now - timedelta(hours=1), queue_id="crisis", urgency="B")

    # Counts only: every staff role sees them, call handlers included.
    queues = await _overview(client, staff_headers("call_handler"))
    norwich = queues[NORWICH]
    assert norwich["name"] == "Norwich Community Base"
    assert norwich["kind"] == "community_base"
    assert norwich["open_count"] == 4
    assert norwich["unallocated_count"] == 2
    assert norwich["breached_count"] == 1
    # The oldest *waiting* case: the active one (contacted) has stopped its clock.
    assert norwich["oldest_waiting_since"] == oldest.isoformat().replace("+00:00", "Z")
    assert norwich["longest_wait_seconds"] == 30 * 3600
    assert queues["crisis"]["open_count"] == 1
    assert queues["crisis"]["breached_count"] == 0
    assert queues["oss-cromer"]["open_count"] == 0
    assert queues["oss-cromer"]["oldest_waiting_since"] is None
    # The directory's order: the county-wide queues first.
    assert list(queues)[:4] == ["crisis", "duty", "looked-after", "access-hub"]

    # Four hours and a second later the crisis case (B) has breached too.
    clock.set(now + timedelta(hours=3, seconds=1))
    queues = await _overview(client, staff_headers("call_handler"))
    assert queues["crisis"]["breached_count"] == 1


async def test_overview_is_for_staff_only(client, make_client):
    assert (await client.get("/v1/queues")).status_code == 401
    _, headers = await make_client()
    assert (await client.get("/v1/queues", headers=headers)).status_code == 403


# Worklists -----------------------------------------------------------------------------------


async def test_worklist_most_urgent_first_then_earliest_respond_by(
    client, staff_headers, session, clock
):
    now = clock.now()
    e_late = await add_case(session, received_at=now - timedelta(hours=1), urgency="E")
    e_early = await add_case(session, received_at=now - timedelta(hours=5), urgency="E")
    f_none = await add_case(session, received_at=now - timedelta(hours=9), urgency="F")
    g = await add_case(session, received_at=now - timedelta(hours=2), urgency="G")
    b = await add_case(session, received_at=now - timedelta(minutes=5), urgency="B")
    d = await add_case(session, received_at=now, urgency="D", status="allocated")
    await add_case(session, received_at=now - timedelta(hours=3), urgency="A", status="closed")
    await add_case(session, received_at=now, urgency="A", queue_id="oss-norwich")

    response = await client.get(f"/v1/queues/{NORWICH}/cases", headers=practitioner(staff_headers))
    assert response.status_code == 200, response.text
    body = response.json()
    ids = [item["id"] for item in body["items"]]
    # A before B …; the same code by respond-by; no window (F) last; closed and other queues
    # never.
    assert ids == [str(c.id) for c in (b, d, e_early, e_late, g, f_none)]
    assert body["next_cursor"] is None
    first = body["items"][0]
    assert first["urgency_code"] == "B"
    assert first["person"]["family_name"] == "Testcase"
    assert first["status"] == "waiting" and first["version"] == 1
    assert body["items"][-1]["respond_by_at"] is None


async def test_keyset_pages_visit_every_open_case_once_in_order(
    client, staff_headers, session, clock
):
    now = clock.now()
    expected = []
    # Ties on (urgency, respond_by_at) and cases without a window: the id breaks ties.
    for index in range(23):
        urgency = "DEEF"[index % 4]
        received = now - timedelta(hours=index % 3)
        expected.append(await add_case(session, received_at=received, urgency=urgency))
    expected.sort(key=lambda c: (c.urgency_rank, c.respond_by_sort_at, c.id))

    items = await _walk(client, practitioner(staff_headers), f"/v1/queues/{NORWICH}/cases", 5)
    assert [i["id"] for i in items] == [str(c.id) for c in expected]


async def test_worklist_filters(client, staff_headers, session, clock):
    now = clock.now()
    waiting_breached = await add_case(session, received_at=now - timedelta(hours=80), urgency="D")
    waiting = await add_case(session, received_at=now, urgency="D")
    mine = await add_case(session, received_at=now, status="allocated", key_worker_id="worker-1")
    theirs = await add_case(session, received_at=now, status="on_hold", key_worker_id="worker-2")
    headers = practitioner(staff_headers)
    url = f"/v1/queues/{NORWICH}/cases"

    async def ids(**params) -> set[str]:
        response = await client.get(url, params=params, headers=headers)
        assert response.status_code == 200, response.text
        return {item["id"] for item in response.json()["items"]}

    assert await ids(allocated="false") == {str(waiting_breached.id), str(waiting.id)}
    assert await ids(allocated="true") == {str(mine.id), str(theirs.id)}
    assert await ids(breached="true") == {str(waiting_breached.id)}
    assert str(waiting_breached.id) not in await ids(breached="false")
    assert await ids(status=["on_hold", "allocated"]) == {str(mine.id), str(theirs.id)}
    assert await ids(key_worker_id="worker-1") == {str(mine.id)}
    assert await ids(allocated="false", breached="false") == {str(waiting.id)}

    response = await client.get(url, params={"status": "closed"}, headers=headers)
    assert response.status_code == 422


@pytest.mark.parametrize(
    "cursor",
    [
        "not base64 at all!",
        base64.urlsafe_b64encode(b"[1, 2]").decode(),
        base64.urlsafe_b64encode(b'[1, "yesterday", "x"]').decode(),
        base64.urlsafe_b64encode(b'["1", "2026-01-01T00:00:00+00:00", "x"]').decode(),
        base64.urlsafe_b64encode(f'[1, "2026-01-01T00:00:00", "{uuid.uuid4()}"]'.encode()).decode(),
        base64.urlsafe_b64encode(
            f'[99999999999, "2026-01-01T00:00:00+00:00", "{uuid.uuid4()}"]'.encode()
        ).decode(),
    ],
)
async def test_invalid_cursor_is_a_422_on_the_cursor(client, staff_headers, cursor):
    response = await client.get(
        f"/v1/queues/{NORWICH}/cases",
        params={"cursor": cursor},
        headers=practitioner(staff_headers),
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "query:cursor"


@pytest.mark.parametrize("limit", [0, 201, -1])
async def test_page_size_is_bounded(client, staff_headers, limit):
    response = await client.get(
        f"/v1/queues/{NORWICH}/cases", params={"limit": limit}, headers=practitioner(staff_headers)
    )
    assert response.status_code == 422


async def test_worklist_access(client, staff_headers, make_client):
    url = f"/v1/queues/{NORWICH}/cases"
    assert (await client.get(url)).status_code == 401
    _, system = await make_client()
    assert (await client.get(url, headers=system)).status_code == 403
    # Call handlers do not read cases; other teams' practitioners do not see this queue.
    assert (await client.get(url, headers=staff_headers("call_handler"))).status_code == 403
    other_team = practitioner(staff_headers, queues=["cb-thetford"])
    assert (await client.get(url, headers=other_team)).status_code == 403
    # Duty clinicians see crisis and duty whatever their teams; admins see everything.
    duty = staff_headers("duty_clinician", queues=[])
    assert (await client.get("/v1/queues/crisis/cases", headers=duty)).status_code == 200
    assert (await client.get(url, headers=duty)).status_code == 403
    assert (await client.get(url, headers=staff_headers("admin"))).status_code == 200
    lead = staff_headers("team_lead", queues=[NORWICH])
    assert (await client.get(url, headers=lead)).status_code == 200
    # A queue that does not exist is a 404, whoever asks.
    response = await client.get("/v1/queues/nowhere/cases", headers=staff_headers("admin"))
    assert response.status_code == 404


async def test_each_case_on_a_worklist_page_is_audited_against_its_person(
    client, staff_headers, session, clock
):
    now = clock.now()
    first = await add_case(session, received_at=now - timedelta(hours=2), urgency="C")
    second = await add_case(session, received_at=now - timedelta(hours=1), urgency="D")
    unseen = await add_case(session, received_at=now, urgency="E")  # on the next page
    response = await client.get(
        f"/v1/queues/{NORWICH}/cases",
        params={"limit": 2},
        headers=practitioner(staff_headers, subject="auditee"),
    )
    assert response.status_code == 200
    assert [item["id"] for item in response.json()["items"]] == [str(first.id), str(second.id)]
    rows = (
        await session.scalars(
            select(AuditEvent)
            .where(AuditEvent.actor_id == "auditee", AuditEvent.action == "list")
            .execution_options(populate_existing=True)
        )
    ).all()
    # One row per case shown (and none for the case on the next page), each tied to its person.
    assert sorted((r.resource_id, r.person_id) for r in rows) == sorted(
        (str(c.id), c.person_id) for c in (first, second)
    )
    assert all(
        r.resource_type == "case"
        and r.outcome == "success"
        and r.details == {"queue_id": NORWICH}
        and r.actor_role == "practitioner"
        and r.occurred_at == now
        for r in rows
    )
    # So "who has seen this young person?" includes the worklist, and only for who was shown.
    admin = staff_headers("admin")
    trail = await client.get("/v1/audit", params={"person_id": str(first.person_id)}, headers=admin)
    assert [(e["actor_id"], e["action"], e["resource_id"]) for e in trail.json()["events"]] == [
        ("auditee", "list", str(first.id))
    ]
    trail = await client.get(
        "/v1/audit", params={"person_id": str(unseen.person_id)}, headers=admin
    )
    assert trail.json()["events"] == []


async def test_an_empty_worklist_page_records_no_listing(client, staff_headers, session):
    response = await client.get(
        f"/v1/queues/{NORWICH}/cases", headers=practitioner(staff_headers, subject="auditee")
    )
    assert response.status_code == 200 and response.json()["items"] == []
    assert (
        await session.scalars(select(AuditEvent).where(AuditEvent.actor_id == "auditee"))
    ).all() == []


# Claiming ------------------------------------------------------------------------------------


async def test_claim_takes_the_most_urgent_unallocated_case(client, staff_headers, session, clock):
    now = clock.now()
    e = await add_case(session, received_at=now - timedelta(days=3), urgency="E")
    c = await add_case(session, received_at=now - timedelta(hours=1), urgency="C")
    await add_case(session, received_at=now, urgency="B", status="allocated")  # already held
    d_late = await add_case(session, received_at=now, urgency="D")
    d_early = await add_case(session, received_at=now - timedelta(hours=1), urgency="D")

    claimed = []
    for worker in ("w1", "w2", "w3", "w4"):
        response = await client.post(
            f"/v1/queues/{NORWICH}/claim", headers=practitioner(staff_headers, subject=worker)
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["status"] == "allocated"
        assert body["key_worker_id"] == worker
        assert body["allocated_at"] is not None
        assert body["version"] == 2
        assert response.headers["etag"] == '"2"'
        assert response.headers["location"] == f"/v1/cases/{body['id']}"
        claimed.append(body["id"])
    assert claimed == [str(x.id) for x in (c, d_early, d_late, e)]

    # Nothing left to claim: a 409 saying so.
    response = await client.post(f"/v1/queues/{NORWICH}/claim", headers=practitioner(staff_headers))
    assert response.status_code == 409
    assert response.json()["type"] == "nothing_to_claim"

    # The claim is in the case's timeline and the audit trail.
    event = await session.scalar(
        select(CaseEvent).where(CaseEvent.case_id == c.id, CaseEvent.type == "claimed")
    )
    assert event is not None
    assert (event.actor_id, event.from_status, event.to_status) == ("w1", "waiting", "allocated")
    audit = await session.scalar(
        select(AuditEvent).where(AuditEvent.action == "claim", AuditEvent.actor_id == "w1")
    )
    assert audit is not None and audit.resource_id == str(c.id) and audit.person_id == c.person_id


async def test_a_claim_is_one_statement_on_postgresql_and_a_select_and_flush_on_sqlite(
    client, staff_headers, session, clock, engine, is_postgres
):
    """The claim's round trips, pinned. PostgreSQL: one statement that locks the case, updates
    it, appends its timeline event and audit row, and returns it with the person and referrals
    the response shows. SQLite: the locking SELECT (with the person and referrals), then the
    case UPDATE, its event and the audit row in one flush. No max(seq) query either way: the
    case counts its own events."""
    await add_case(session, received_at=clock.now())
    statements: list[str] = []

    def capture(_conn, _cursor, statement: str, *_args) -> None:
        verb = statement.lstrip().split(None, 1)[0].upper()
        if verb in ("SELECT", "INSERT", "UPDATE", "DELETE", "WITH"):
            statements.append(" ".join(statement.split()))

    # The worker has been seen before (their first request records them in the staff table).
    assert (await client.get("/v1/queues", headers=practitioner(staff_headers))).is_success
    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    try:
        response = await client.post(
            f"/v1/queues/{NORWICH}/claim", headers=practitioner(staff_headers)
        )
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", capture)
    assert response.status_code == 200, response.text
    if is_postgres:
        assert len(statements) == 1, statements
        (claim,) = statements
        assert claim.startswith("WITH next_case AS")
        for part in (
            "status = 'waiting'",
            "LIMIT 1 FOR UPDATE SKIP LOCKED",
            "UPDATE cases SET",
            "INSERT INTO case_events",
            "INSERT INTO audit_events",
            "JOIN persons",
            "JOIN referrals",
        ):
            assert part in claim, part
        # Only the claim's own columns are set (a stray execution parameter would add one).
        set_clause = claim.split("UPDATE cases SET", 1)[1].split(" FROM ", 1)[0]
        assert sorted(part.split("=")[0].strip() for part in set_clause.split(", ")) == [
            "allocated_at",
            "key_worker_id",
            "last_event_seq",
            "status",
            "updated_at",
            "version",
        ]
    else:
        assert sorted(_written(s) for s in statements) == [
            "INSERT audit_events",
            "INSERT case_events",
            "SELECT",
            "UPDATE cases",
        ]
        claim = next(s for s in statements if s.startswith("SELECT"))
        assert all(table in claim for table in ("FROM cases", "persons", "referrals"))
        assert "status = 'waiting'" in claim and "LIMIT 1" in claim
    assert not any("max(" in s.lower() for s in statements)


async def test_a_claim_writes_the_same_event_and_audit_on_both_databases(
    client, staff_headers, session, clock
):
    """Whichever path made it, a claim leaves the same timeline event and audit record."""
    c = await add_case(session, received_at=clock.now())
    response = await client.post(
        f"/v1/queues/{NORWICH}/claim", headers=practitioner(staff_headers, subject="w9")
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == str(c.id) and body["status"] == "allocated"
    assert body["key_worker_id"] == "w9" and body["version"] == c.version + 1
    assert response.headers["ETag"] == f'"{c.version + 1}"'
    claimed = await session.scalar(
        select(CaseEvent).where(CaseEvent.case_id == c.id, CaseEvent.type == "claimed")
    )
    assert claimed is not None
    assert claimed.seq == c.last_event_seq + 1
    assert (claimed.from_status, claimed.to_status, claimed.reason) == (
        "waiting",
        "allocated",
        None,
    )
    assert (claimed.actor_kind, claimed.actor_id, claimed.actor_role) == (
        "staff",
        "w9",
        "practitioner",
    )
    assert claimed.data == {"previous_key_worker_id": None, "key_worker_id": "w9"}
    audit = await session.scalar(
        select(AuditEvent).where(AuditEvent.action == "claim", AuditEvent.actor_id == "w9")
    )
    assert audit is not None
    assert (audit.resource_type, audit.resource_id, audit.person_id) == (
        "case",
        str(c.id),
        c.person_id,
    )
    assert (audit.outcome, audit.actor_kind, audit.actor_role) == (
        "success",
        "staff",
        "practitioner",
    )
    assert audit.request_id == response.headers["X-Request-ID"]
    assert audit.details == {
        "from_status": "waiting",
        "to_status": "allocated",
        "version": c.version + 1,
    }


def test_only_plain_codes_are_written_into_sql_text():
    from app.services.queues import sql_constant

    assert str(sql_constant("on_hold")) == "'on_hold'"
    for unsafe in ("x' OR '1'='1", "on hold", "", "a;b"):
        with pytest.raises(ValueError):
            sql_constant(unsafe)


def test_statuses_are_constants_in_the_sql():
    """PostgreSQL matches the partial indexes (status = 'waiting', status <> 'closed') in a
    prepared statement's cached plan only when the status is a constant in the SQL text."""
    now = datetime.now(UTC)
    statements = [
        CLAIM_STATEMENT,
        CLAIM_STATEMENT_POSTGRESQL,
        worklist_statement(NORWICH, now=now, filters=WorklistFilter(allocated=False)),
        worklist_statement(NORWICH, now=now, filters=WorklistFilter(allocated=True)),
        queue_overview_statement(now),
    ]
    for statement in statements:
        compiled = statement.compile(dialect=postgresql.asyncpg.dialect())
        assert not any(name.startswith("status") for name in compiled.params), compiled.string
        assert "status != 'closed'" in compiled.string or "status = 'waiting'" in compiled.string


def _written(statement: str) -> str:
    """A SELECT as just that; a write as its verb and the table it writes."""
    words = statement.split()
    if words[0] == "SELECT":
        return "SELECT"
    return f"{words[0]} {words[words.index('INTO' if words[0] == 'INSERT' else words[0]) + 1]}"


async def test_claimed_case_leaves_the_unallocated_worklist(client, staff_headers, session, clock):
    case = await add_case(session, received_at=clock.now())
    headers = practitioner(staff_headers)
    assert (await client.post(f"/v1/queues/{NORWICH}/claim", headers=headers)).status_code == 200
    response = await client.get(
        f"/v1/queues/{NORWICH}/cases", params={"allocated": "false"}, headers=headers
    )
    assert response.json()["items"] == []
    stored = await session.scalar(
        select(Case).where(Case.id == case.id).execution_options(populate_existing=True)
    )
    assert stored is not None and stored.key_worker_id == "worker-1"


async def test_claim_access(client, staff_headers, session, clock):
    await add_case(session, received_at=clock.now(), queue_id="crisis", urgency="B")
    url = "/v1/queues/crisis/claim"
    assert (await client.post(url)).status_code == 401
    # Call handlers and admins do not hold cases; a practitioner outside the team cannot claim.
    assert (await client.post(url, headers=staff_headers("call_handler"))).status_code == 403
    assert (await client.post(url, headers=staff_headers("admin"))).status_code == 403
    assert (await client.post(url, headers=practitioner(staff_headers))).status_code == 403
    missing = await client.post("/v1/queues/nowhere/claim", headers=practitioner(staff_headers))
    assert missing.status_code == 404
    response = await client.post(url, headers=staff_headers("duty_clinician", subject="duty-1"))
    assert response.status_code == 200
    assert response.json()["key_worker_id"] == "duty-1"


async def test_refused_queue_access_is_audited_as_denied(client, staff_headers, session):
    other_team = practitioner(staff_headers, subject="stranger", queues=["cb-thetford"])
    assert (await client.get(f"/v1/queues/{NORWICH}/cases", headers=other_team)).status_code == 403
    assert (await client.post(f"/v1/queues/{NORWICH}/claim", headers=other_team)).status_code == 403
    rows = (
        await session.scalars(select(AuditEvent).where(AuditEvent.actor_id == "stranger"))
    ).all()
    assert sorted((r.action, r.resource_type, r.resource_id, r.outcome) for r in rows) == [
        ("claim", "queue", NORWICH, "denied"),
        ("list", "queue", NORWICH, "denied"),
    ]
