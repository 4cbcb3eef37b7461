"""The console for people who work cases, without a browser (and so without JavaScript):
worklists, claim next, My cases, the case page, every action's form, stale versions, the team
lead's breaches and due-soon list, and that call handlers see only what they saw before.

Cases arrive through the API as they would in service (``POST /v1/referrals``), so the case
page shows a real referral, decision and timeline; clocks are moved with the test's FrozenClock.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.clock import FrozenClock
from app.config import Settings
from app.models import AuditEvent, Case, CaseEvent
from app.security import Role, issue_staff_token
from app.web import casework
from app.web.templating import LONDON
from tests.case_factories import add_case
from tests.factories import referral_body

NORWICH = "cb-norwich"

CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')
VERSION_INPUT = re.compile(r'name="version" value="(\d+)"')
TAGS = re.compile(r"<[^>]+>")


def csrf_from(html: str) -> str:
    match = CSRF_INPUT.search(html)
    assert match, "the page has no CSRF token"
    return match.group(1)


def text_of(html: str) -> str:
    return " ".join(TAGS.sub(" ", html).split())


def version_in(html: str) -> str:
    match = VERSION_INPUT.search(html)
    assert match, "the form carries no case version"
    return match.group(1)


class Console:
    """A browser-like client signed in to the console as one member of staff."""

    def __init__(self, client: httpx.AsyncClient, staff_id: str) -> None:
        self.client = client
        self.staff_id = staff_id

    async def get(self, path: str) -> httpx.Response:
        return await self.client.get(path)

    async def post(
        self, path: str, data: dict[str, Any], page: str | None = None
    ) -> httpx.Response:
        """Submit a form as the browser would: with the CSRF token (and the case version) of
        the page it is on (``page``: its path; else the console home)."""
        html = (await self.client.get(page or "/console")).text
        fields = {"csrf_token": csrf_from(html), **data}
        if page and "version" not in data and VERSION_INPUT.search(html):
            fields["version"] = version_in(html)
        return await self.client.post(path, data=fields)


@pytest.fixture
async def console(app: Any, settings: Settings) -> Any:
    """``await console(role, queues=[...], staff_id=..., name=...)`` → a signed-in Console (its
    own cookie jar, so several workers can be signed in at once)."""
    clients: list[httpx.AsyncClient] = []

    async def make(
        role: str,
        queues: list[str] | None = None,
        staff_id: str | None = None,
        name: str | None = None,
    ) -> Console:
        staff_id = staff_id or f"worker-{role}-{uuid.uuid4().hex[:6]}"
        token = issue_staff_token(
            settings,
            subject=staff_id,
            role=Role(role),
            queue_ids=queues,
            name=name,
            now=datetime.now(UTC),
        )
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        )
        clients.append(client)
        sign_in = await client.get("/console/sign-in")
        signed = await client.post(
            "/console/sign-in", data={"csrf_token": csrf_from(sign_in.text), "token": token}
        )
        assert signed.status_code == 303, signed.text
        # Their first page records them as staff the service has seen (who can be named).
        assert (await client.get("/console")).status_code == 200
        return Console(client, staff_id)

    yield make
    for client in clients:
        await client.aclose()


async def refer(client: httpx.AsyncClient, staff_headers: Any, **overrides: Any) -> dict[str, Any]:
    """A phone referral through the API; its JSON (with decision and case id)."""
    response = await client.post(
        "/v1/referrals", json=referral_body(**overrides), headers=staff_headers()
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def case_of(session: AsyncSession, referral: dict[str, Any]) -> Case:
    case = await session.scalar(
        select(Case)
        .where(Case.id == uuid.UUID(referral["case_id"]))
        .execution_options(populate_existing=True)
    )
    assert case is not None
    return case


# Queues and worklists ---------------------------------------------------------------------------


async def test_queues_are_links_for_case_workers_and_not_for_call_handlers(
    client: httpx.AsyncClient, staff_headers: Any, console: Any
) -> None:
    referral = await refer(client, staff_headers)
    queue = referral["decision"]["route"]["queue_id"]
    worker = await console("practitioner", [queue])
    page = await worker.get("/console/queues")
    assert f'href="/console/queues/{queue}"' in page.text
    # Only the queues they work: another team's queue is not a link.
    assert page.text.count('href="/console/queues/') == 1
    assert "My cases" in page.text

    handler = await console("call_handler")
    plain = await handler.get("/console/queues")
    assert plain.status_code == 200
    assert 'href="/console/queues/' not in plain.text
    home = await handler.get("/console")
    nav = re.findall(r'class="nhsuk-header__navigation-link" href="([^"]+)"', home.text)
    assert nav == ["/console", "/console/referrals/new", "/console/queues"]


async def test_worklist_claim_next_and_the_case_page(
    client: httpx.AsyncClient, staff_headers: Any, console: Any, session: AsyncSession
) -> None:
    referral = await refer(client, staff_headers, reason="Cannot sleep and worried about exams.")
    queue = referral["decision"]["route"]["queue_id"]
    worker = await console("practitioner", [queue], name="Jamie Worker")
    worklist = await worker.get(f"/console/queues/{queue}")
    assert worklist.status_code == 200, worklist.text
    assert f'href="/console/cases/{referral["case_id"]}"' in worklist.text
    assert "Not allocated</strong>" in worklist.text
    assert "Claim the next case" in worklist.text

    claimed = await worker.post(
        f"/console/queues/{queue}/claim", {}, page=f"/console/queues/{queue}"
    )
    assert claimed.status_code == 303
    assert claimed.headers["location"] == f"/console/cases/{referral['case_id']}?done=claim"
    page = await worker.get(claimed.headers["location"])
    assert page.status_code == 200, page.text
    text = text_of(page.text)
    assert "You are now the key worker for this case" in text
    assert "Key worker Jamie Worker" in text
    assert "Cannot sleep and worried about exams." in text  # what they told us
    assert referral["reference"] in text
    assert 'id="rules-fired"' in page.text  # the decision's rules
    assert "Claimed" in text and "by Jamie Worker (practitioner)" in text  # the timeline
    assert "Case opened" in text
    case = await case_of(session, referral)
    assert case.key_worker_id == worker.staff_id and case.status == "allocated"


async def test_worklist_is_most_urgent_first_with_breached_due_today_and_unallocated_in_words(
    console: Any, session: AsyncSession, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 10:00 UK time, so "later today" and "tomorrow" are unambiguous.
    now = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)
    clock.set(now)
    breached = await add_case(
        session, received_at=now - timedelta(hours=30), urgency="C", family_name="Breached"
    )
    due = await add_case(
        session, received_at=now - timedelta(hours=20), urgency="C", family_name="Duetoday"
    )
    later = await add_case(
        session, received_at=now - timedelta(hours=1), urgency="E", family_name="Later",
        status="allocated", key_worker_id="worker-x",
    )  # fmt: skip
    crisis = await add_case(
        session, received_at=now - timedelta(hours=1), urgency="B", family_name="Crisis"
    )
    monkeypatch.setattr(casework, "WORKLIST_PAGE_SIZE", 2)
    worker = await console("practitioner", [NORWICH])
    first = await worker.get(f"/console/queues/{NORWICH}")
    assert first.status_code == 200, first.text
    order = re.findall(r'id="case-([0-9a-f-]{36})"', first.text)
    assert order == [str(crisis.id), str(breached.id)]  # B before C; then earliest respond-by
    rows = dict(zip(order, re.split(r'id="case-[0-9a-f-]{36}"', first.text)[1:], strict=True))
    assert "Breached</strong>" in rows[str(breached.id)]
    assert "Not allocated</strong>" in rows[str(breached.id)]
    assert "Urgency B</strong>" in rows[str(crisis.id)]
    # Keyset paging: the next page follows on from the last row shown.
    next_link = re.search(r'href="(/console/queues/[^"]+\?cursor=[^"]+)"', first.text)
    assert next_link
    second = await worker.get(next_link.group(1).replace("&amp;", "&"))
    order = re.findall(r'id="case-([0-9a-f-]{36})"', second.text)
    assert order == [str(due.id), str(later.id)]
    rows = dict(zip(order, re.split(r'id="case-[0-9a-f-]{36}"', second.text)[1:], strict=True))
    assert "Due today</strong>" in rows[str(due.id)] and "Breached" not in rows[str(due.id)]
    assert "Not allocated" not in rows[str(later.id)] and "Due today" not in rows[str(later.id)]
    assert "First page" in second.text and "?cursor=" not in second.text
    # A cursor that was not issued here starts again at the first page.
    bad = await worker.get(f"/console/queues/{NORWICH}?cursor=not-a-cursor")
    assert bad.status_code == 303 and bad.headers["location"] == f"/console/queues/{NORWICH}"
    # Each case shown is audited as a listing, naming its person.
    listed = await session.scalar(
        select(func.count())
        .select_from(AuditEvent)
        .where(AuditEvent.action == "list", AuditEvent.actor_id == worker.staff_id)
    )
    assert listed == 4


async def test_claim_next_with_nothing_waiting_says_so(
    console: Any, session: AsyncSession, clock: FrozenClock
) -> None:
    await add_case(
        session, received_at=clock.now() - timedelta(hours=1), status="allocated",
        key_worker_id="someone-else",
    )  # fmt: skip
    worker = await console("practitioner", [NORWICH])
    page = await worker.get(f"/console/queues/{NORWICH}")
    assert "Claim the next case" not in page.text  # nothing unallocated
    claimed = await worker.post(f"/console/queues/{NORWICH}/claim", {})
    assert claimed.status_code == 303
    assert claimed.headers["location"] == f"/console/queues/{NORWICH}?nothing=1"
    shown = await worker.get(claimed.headers["location"])
    assert "There is no case waiting to be claimed" in shown.text


async def test_who_sees_which_worklists_and_cases(
    console: Any, session: AsyncSession, clock: FrozenClock
) -> None:
    case = await add_case(session, received_at=clock.now() - timedelta(hours=1))
    other_team = await console("practitioner", ["cb-great-yarmouth"])
    assert (await other_team.get(f"/console/queues/{NORWICH}")).status_code == 403
    assert (await other_team.get(f"/console/cases/{case.id}")).status_code == 404
    claim = await other_team.post(f"/console/queues/{NORWICH}/claim", {})
    assert claim.status_code == 403
    handler = await console("call_handler")
    assert (await handler.get(f"/console/queues/{NORWICH}")).status_code == 403
    assert (await handler.get(f"/console/cases/{case.id}")).status_code == 404
    assert (await handler.get(f"/console/cases/{case.id}/hold")).status_code == 404
    assert (await handler.get("/console/my-cases")).status_code == 403
    assert (await handler.get("/console/due")).status_code == 403
    refused = await session.scalar(
        select(func.count())
        .select_from(AuditEvent)
        .where(AuditEvent.actor_id == handler.staff_id, AuditEvent.outcome == "denied")
    )
    assert refused and refused >= 3
    # A duty clinician sees the crisis and duty queues whatever their teams.
    duty = await console("duty_clinician", [])
    assert (await duty.get("/console/queues/duty")).status_code == 200
    assert (await duty.get(f"/console/queues/{NORWICH}")).status_code == 403
    assert (await duty.get("/console/queues/no-such-queue")).status_code == 404


def contact_form(at: datetime, **overrides: str) -> dict[str, str]:
    local = at.astimezone(LONDON)
    form = {
        "occurred_day": str(local.day),
        "occurred_month": str(local.month),
        "occurred_year": str(local.year),
        "occurred_time": f"{local:%H:%M}",
        "attendance": "attended",
        "mechanism": "telephone",
        "with_whom": "young_person",
    }
    form.update(overrides)
    return form


async def act(
    worker: Console, case_id: object, action: str, data: dict[str, Any]
) -> httpx.Response:
    """Open the action's page (or the case page, for a one-button action) and submit it."""
    page = f"/console/cases/{case_id}/{action}" if action in casework.ACTION_PAGES else None
    return await worker.post(
        f"/console/cases/{case_id}/{action}", data, page=page or f"/console/cases/{case_id}"
    )


async def test_a_key_worker_works_a_case_from_claim_to_close(
    client: httpx.AsyncClient,
    staff_headers: Any,
    console: Any,
    session: AsyncSession,
    clock: FrozenClock,
) -> None:
    referral = await refer(client, staff_headers)
    queue = referral["decision"]["route"]["queue_id"]
    case_id = referral["case_id"]
    worker = await console("practitioner", [queue], name="Kim Keyworker")
    await worker.post(f"/console/queues/{queue}/claim", {}, page=f"/console/queues/{queue}")
    page = await worker.get(f"/console/cases/{case_id}")
    assert 'id="action-contacts"' in page.text and 'id="action-start"' not in page.text

    # The first contact: a missing answer is shown on its question, nothing stored.
    missing = await act(worker, case_id, "contacts", contact_form(clock.now(), attendance=""))
    assert missing.status_code == 422
    assert '<a href="#attendance">Choose whether they attended</a>' in missing.text
    assert (await case_of(session, referral)).status == "allocated"
    future = await act(worker, case_id, "contacts", contact_form(clock.now() + timedelta(hours=2)))
    assert future.status_code == 422 and "cannot be in the future" in future.text
    clock.set(clock.now() + timedelta(hours=1))
    first = await act(worker, case_id, "contacts", contact_form(clock.now() - timedelta(minutes=5)))
    assert first.status_code == 303, first.text
    assert first.headers["location"] == f"/console/cases/{case_id}?done=contacts"
    shown = text_of((await worker.get(first.headers["location"])).text)
    assert "Contact recorded" in shown
    assert "The first attended contact: the waiting clock stopped" in shown
    case = await case_of(session, referral)
    assert case.status == "contacted" and case.first_contact_at is not None

    assert (await act(worker, case_id, "start", {})).status_code == 303
    thrive = await act(worker, case_id, "thrive", {"thrive_grouping": "getting_more_help"})
    assert thrive.status_code == 303, thrive.text
    no_reason = await act(worker, case_id, "hold", {"reason": ""})
    assert no_reason.status_code == 422
    assert '<a href="#reason">Enter why the case is on hold</a>' in no_reason.text
    held = await act(worker, case_id, "hold", {"reason": "Exams this month; agreed to pause."})
    assert held.status_code == 303
    assert (await act(worker, case_id, "resume", {})).status_code == 303
    dna = await act(
        worker, case_id, "contacts", contact_form(clock.now(), attendance="did_not_attend")
    )
    assert dna.status_code == 303
    second = await act(worker, case_id, "contacts", contact_form(clock.now(), mechanism="video"))
    assert second.status_code == 303
    case = await case_of(session, referral)
    assert case.second_contact_at is not None and case.did_not_attend_count == 1
    no_outcome = await act(worker, case_id, "close", {"outcome": ""})
    assert no_outcome.status_code == 422 and "Choose the outcome" in no_outcome.text
    closed = await act(worker, case_id, "close", {"outcome": "returned_to_thriving"})
    assert closed.status_code == 303

    final = await worker.get(f"/console/cases/{case_id}")
    text = text_of(final.text)
    assert "This case is closed" in text and "Outcome: returned to thriving" in text
    assert "Did not attend: 1" in text
    assert "Attended, video call, with the young person" in text
    assert "Did not attend, telephone, with the young person" in text
    for step in (
        "Claimed", "Contact recorded", "Intervention started", "THRIVE grouping changed",
        "Put on hold", "Exams this month; agreed to pause.", "Resumed", "Closed",
    ):  # fmt: skip
        assert step in text, step
    events = await session.scalars(
        select(CaseEvent.type).where(CaseEvent.case_id == uuid.UUID(case_id))
    )
    assert list(events).count("contact_recorded") == 3


async def test_a_stale_form_says_someone_else_changed_the_case_and_keeps_nothing(
    client: httpx.AsyncClient,
    staff_headers: Any,
    console: Any,
    session: AsyncSession,
    clock: FrozenClock,
) -> None:
    referral = await refer(client, staff_headers)
    queue = referral["decision"]["route"]["queue_id"]
    case_id = referral["case_id"]
    worker = await console("practitioner", [queue], name="Kim Keyworker")
    lead = await console("team_lead", [queue], name="Lee Lead")
    await worker.post(f"/console/queues/{queue}/claim", {}, page=f"/console/queues/{queue}")
    clock.set(clock.now() + timedelta(minutes=30))
    assert (await act(worker, case_id, "contacts", contact_form(clock.now()))).status_code == 303
    # The worker opens the close form; meanwhile their team lead starts the intervention.
    form_page = await worker.get(f"/console/cases/{case_id}/close")
    assert (await act(lead, case_id, "start", {})).status_code == 303
    stale = await worker.client.post(
        f"/console/cases/{case_id}/close",
        data={
            "csrf_token": csrf_from(form_page.text),
            "version": version_in(form_page.text),
            "seen_seq": re.search(r'name="seen_seq" value="(\d+)"', form_page.text).group(1),  # type: ignore[union-attr]
            "outcome": "declined",
        },
    )
    assert stale.status_code == 409
    text = text_of(stale.text)
    assert "Someone else changed this case" in text
    assert "Your change was not saved" in text
    assert "Intervention started by Lee Lead (team lead)" in text  # what changed
    assert 'id="stale-status">active' in stale.text  # the current state
    # The answers typed are still there, with the current version to send again if still right.
    assert 'value="declined" checked' in stale.text
    assert version_in(stale.text) != version_in(form_page.text)
    case = await case_of(session, referral)
    assert case.status == "active" and case.outcome is None
    # A one-button action from a stale case page: the case page, with the same news.
    case_page = await worker.get(f"/console/cases/{case_id}")
    await act(lead, case_id, "hold", {"reason": "Paused by the team lead."})
    stale_button = await worker.client.post(
        f"/console/cases/{case_id}/resume",
        data={"csrf_token": csrf_from(case_page.text), "version": "1", "seen_seq": "0"},
    )
    assert stale_button.status_code == 409
    assert "Someone else changed this case" in stale_button.text
    # A form with no version at all is never taken as "any version".
    versionless = await worker.client.post(
        f"/console/cases/{case_id}/resume", data={"csrf_token": csrf_from(case_page.text)}
    )
    assert versionless.status_code == 409
    assert (await case_of(session, referral)).status == "on_hold"


async def test_forms_need_the_csrf_token(
    client: httpx.AsyncClient, staff_headers: Any, console: Any, session: AsyncSession
) -> None:
    referral = await refer(client, staff_headers)
    queue = referral["decision"]["route"]["queue_id"]
    worker = await console("practitioner", [queue])
    forged = await worker.client.post(f"/console/queues/{queue}/claim", data={})
    assert forged.status_code == 403
    assert (await case_of(session, referral)).status == "waiting"


async def test_team_lead_allocates_and_workers_see_my_cases_held_and_supported(
    client: httpx.AsyncClient, staff_headers: Any, console: Any, session: AsyncSession
) -> None:
    referral = await refer(client, staff_headers)
    queue = referral["decision"]["route"]["queue_id"]
    case_id = referral["case_id"]
    worker = await console("practitioner", [queue], name="Kim Keyworker")
    helper = await console("practitioner", ["cb-great-yarmouth"], name="Sam Supporter")
    handler = await console("call_handler", name="Casey Caller")
    lead = await console("team_lead", [queue], name="Lee Lead")
    form = await lead.get(f"/console/cases/{case_id}/allocate")
    # Only staff who hold cases in this queue are offered (never a call handler).
    assert "Kim Keyworker" in form.text and "Casey Caller" not in form.text
    assert "Sam Supporter" not in form.text
    nobody = await act(lead, case_id, "allocate", {"key_worker_id": ""})
    assert nobody.status_code == 422 and "Choose who will be the key worker" in nobody.text
    # A domain error from the service (a call handler named) is shown on the question, and
    # the session is rolled back: nothing of it is kept.
    wrong = await act(lead, case_id, "allocate", {"key_worker_id": handler.staff_id})
    assert wrong.status_code == 422
    assert 'href="#key_worker_id"' in wrong.text and "does not hold cases" in wrong.text
    assert (await case_of(session, referral)).key_worker_id is None
    done = await act(lead, case_id, "allocate", {"key_worker_id": worker.staff_id})
    assert done.status_code == 303, done.text
    assert (await case_of(session, referral)).key_worker_id == worker.staff_id
    held = await lead.get(f"/console/cases/{case_id}")
    assert ">Change the key worker</a>" in held.text

    # The key worker pulls in a supporter from another team, who then sees it in My cases.
    add = await act(
        worker, case_id, "supporters",
        {"kind": "worker", "worker_id": helper.staff_id, "role": "Eating disorders"},
    )  # fmt: skip
    assert add.status_code == 303, add.text
    mine = text_of((await worker.get("/console/my-cases")).text)
    assert "Cases you hold: 1" in mine and "Cases you support: 0" in mine
    theirs = await helper.get("/console/my-cases")
    assert "Cases you hold: 0" in text_of(theirs.text)
    assert f'href="/console/cases/{case_id}"' in theirs.text
    assert (await helper.get(f"/console/cases/{case_id}")).status_code == 200
    page = await worker.get(f"/console/cases/{case_id}")
    assert "Sam Supporter: Eating disorders" in text_of(page.text)
    supporter_id = re.search(r'name="supporter_id" value="([^"]+)"', page.text)
    assert supporter_id
    removed = await act(
        worker, case_id, "remove-supporter", {"supporter_id": supporter_id.group(1)}
    )
    assert removed.status_code == 303
    assert (await helper.get(f"/console/cases/{case_id}")).status_code == 404
    # Call handlers have no My cases.
    assert "My cases" not in (await handler.get("/console")).text


async def test_a_duty_clinician_reviews_a_case_awaiting_clinical_review(
    client: httpx.AsyncClient, staff_headers: Any, console: Any, session: AsyncSession
) -> None:
    """A CAMHS leaver aged 20, below the adult threshold: case by case, in the duty queue."""
    referral = await refer(
        client, staff_headers, age=20, camhs={"status": "discharged"}, amhs_threshold="not_met"
    )
    assert referral["decision"]["eligibility"]["outcome"] == "clinical_review"
    case_id = referral["case_id"]
    duty = await console("duty_clinician", [], name="Dee Duty")
    worklist = await duty.get("/console/queues/duty")
    assert f'href="/console/cases/{case_id}"' in worklist.text
    page = await duty.get(f"/console/cases/{case_id}")
    assert "Awaiting clinical review</strong>" in page.text
    assert 'id="action-review"' in page.text
    form = await duty.get(f"/console/cases/{case_id}/review")
    assert 'id="review-proposal"' in form.text
    proposed = re.search(r'name="queue_id" type="radio" value="([^"]+)" checked', form.text)
    assert proposed, "the routing rules' proposal is chosen already"
    no_reason = await act(
        duty, case_id, "review", {"outcome": "accept", "queue_id": proposed.group(1)}
    )
    assert no_reason.status_code == 422 and "Enter why you decided this" in no_reason.text
    accepted = await act(
        duty,
        case_id,
        "review",
        {"outcome": "accept", "queue_id": proposed.group(1), "reason": "Spoke to them."},
    )
    assert accepted.status_code == 303, accepted.text
    case = await case_of(session, referral)
    assert case.queue_id == proposed.group(1) and case.eligibility_review == "accept"
    # Into a team the duty clinician does not work: back to the duty queue, saying where.
    assert accepted.headers["location"] == (
        f"/console/queues/duty?done=review&moved_to={proposed.group(1)}"
    )
    back = text_of((await duty.get(accepted.headers["location"])).text)
    assert "Clinical review decision saved" in back and "The case is now in the" in back
    # The team sees the decision, who made it, when and why.
    team = await console("practitioner", [proposed.group(1)])
    page = await team.get(f"/console/cases/{case_id}")
    text = text_of(page.text)
    assert "Clinical review: accept into a team, by Dee Duty" in text
    assert "Spoke to them." in text
    assert 'id="action-review"' not in page.text


async def test_signpost_on_review_closes_the_case(
    client: httpx.AsyncClient, staff_headers: Any, console: Any, session: AsyncSession
) -> None:
    referral = await refer(
        client, staff_headers, age=20, camhs={"status": "discharged"}, amhs_threshold="not_met"
    )
    duty = await console("duty_clinician", [])
    signposted = await act(
        duty, referral["case_id"], "review",
        {"outcome": "signpost", "reason": "Better served by the adult access line."},
    )  # fmt: skip
    assert signposted.status_code == 303, signposted.text
    case = await case_of(session, referral)
    assert case.status == "closed" and case.outcome == "signposted"


async def test_regrade_and_transfer(
    client: httpx.AsyncClient, staff_headers: Any, console: Any, session: AsyncSession
) -> None:
    referral = await refer(client, staff_headers)
    queue = referral["decision"]["route"]["queue_id"]
    case_id = referral["case_id"]
    lead = await console("team_lead", [queue], name="Lee Lead")
    form = await lead.get(f"/console/cases/{case_id}/urgency")
    before = (await case_of(session, referral)).urgency_code
    assert f'value="{before}"' not in form.text  # the current code is not offered
    missing = await act(lead, case_id, "urgency", {"code": "D", "reason": ""})
    assert missing.status_code == 422 and "Enter why you are changing the urgency" in missing.text
    raised = await act(lead, case_id, "urgency", {"code": "C", "reason": "Worse since the call."})
    assert raised.status_code == 303, raised.text
    case = await case_of(session, referral)
    assert case.urgency_code == "C"
    page = text_of((await lead.get(f"/console/cases/{case_id}")).text)
    assert f"Re-graded: the engine gave urgency {before}" in page
    assert "Urgency raised" in page and f"Urgency {before} to C" in page

    transfer_form = await lead.get(f"/console/cases/{case_id}/transfer")
    assert f'name="queue_id" type="radio" value="{queue}"' not in transfer_form.text
    moved = await act(
        lead, case_id, "transfer", {"queue_id": "cb-great-yarmouth", "reason": "Moved house."}
    )
    assert moved.status_code == 303, moved.text
    assert (await case_of(session, referral)).queue_id == "cb-great-yarmouth"
    # The lead of the old queue can no longer see it.
    assert (await lead.get(f"/console/cases/{case_id}")).status_code == 404


async def test_a_team_lead_sees_breaches_and_cases_due_in_24_hours_across_their_queues(
    console: Any, session: AsyncSession, clock: FrozenClock
) -> None:
    now = clock.now()
    breached = await add_case(
        session, received_at=now - timedelta(hours=30), urgency="C", family_name="Overdue"
    )
    soon = await add_case(
        session, received_at=now - timedelta(hours=60), urgency="D", family_name="Soon",
        queue_id="cb-great-yarmouth",
    )  # fmt: skip
    await add_case(session, received_at=now - timedelta(hours=1), urgency="E", family_name="Later")
    await add_case(
        session, received_at=now - timedelta(hours=30), urgency="C", family_name="Elsewhere",
        queue_id="cb-lowestoft",
    )  # fmt: skip
    await add_case(
        session, received_at=now - timedelta(hours=30), urgency="C", family_name="Seen",
        status="contacted",
    )  # fmt: skip
    lead = await console("team_lead", [NORWICH, "cb-great-yarmouth"], name="Lee Lead")
    home = await lead.get("/console")
    assert 'href="/console/due"' in home.text
    page = await lead.get("/console/due")
    assert page.status_code == 200
    text = text_of(page.text)
    assert "Breached: 1" in text and "Due in the next 24 hours: 1" in text
    assert f'id="case-{breached.id}"' in page.text and f'id="case-{soon.id}"' in page.text
    for absent in ("Later", "Elsewhere", "Seen"):
        assert absent not in text
    practitioner = await console("practitioner", [NORWICH])
    assert (await practitioner.get("/console/due")).status_code == 403
    assert 'href="/console/due"' not in (await practitioner.get("/console")).text


async def test_the_case_page_is_an_audited_read(
    client: httpx.AsyncClient, staff_headers: Any, console: Any, session: AsyncSession
) -> None:
    referral = await refer(client, staff_headers)
    queue = referral["decision"]["route"]["queue_id"]
    worker = await console("practitioner", [queue])
    assert (await worker.get(f"/console/cases/{referral['case_id']}")).status_code == 200
    reads = (
        await session.scalars(
            select(AuditEvent.resource_type).where(
                AuditEvent.actor_id == worker.staff_id, AuditEvent.action == "read"
            )
        )
    ).all()
    assert sorted(reads) == ["case", "referral"]
