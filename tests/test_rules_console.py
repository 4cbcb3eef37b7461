"""The console's rules page (admins): stored rulesets, the what-if form and its report.

In-process; the same page in a real browser, with axe-core and screenshots, is in
tests/browser/test_rules_console.py. The figures are the API's (one function behind both).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.models import AuditEvent
from app.security import Role, issue_staff_token
from tests.test_replay import _publish, candidate_from, dob_aged, lower_upper_age, person, refer

CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_from(html: str) -> str:
    match = CSRF_INPUT.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1)


@pytest.fixture
async def signed_in(app: Any, settings: Any) -> AsyncIterator[Any]:
    clients: list[httpx.AsyncClient] = []

    async def make(role: str = "admin") -> httpx.AsyncClient:
        token = issue_staff_token(
            settings,
            subject=f"user-{role}",
            role=Role(role),
            name="Robin Rules",
            now=datetime.now(UTC),
        )
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
        clients.append(client)
        sign_in = await client.get("/console/sign-in")
        signed = await client.post(
            "/console/sign-in", data={"csrf_token": csrf_from(sign_in.text), "token": token}
        )
        assert signed.status_code == 303, signed.text
        return client

    yield make
    for client in clients:
        await client.aclose()


async def test_an_admin_runs_a_what_if_and_sees_the_report(app, session, clock, signed_in):
    active = app.state.ruleset
    version = await _publish(session, candidate_from(active, "younger", lower_upper_age))
    now = clock.now()
    turned_away = await refer(
        session, active, now - timedelta(days=2), **person(dob_aged(25, now.date()))
    )
    await refer(session, active, now - timedelta(days=2), age=15)
    await session.commit()
    console = await signed_in("admin")
    page = await console.get("/console/rules")
    assert page.status_code == 200
    assert 'href="/console/rules"' in page.text  # in the menu
    assert version in page.text and active.version in page.text
    assert "a minute or two for every million referrals" in page.text
    result = await console.post(
        "/console/rules/replay",
        data={
            "csrf_token": csrf_from(page.text),
            "candidate_version": version,
            "from": "",
            "to": "",
        },
    )
    assert result.status_code == 200, result.text
    html = result.text
    assert "2 referrals received" in html
    assert '<svg class="app-replay-chart"' in html and 'role="img"' in html
    assert 'id="queues"' in html and 'id="matrix-eligibility"' in html
    assert "Signposted (no queue)" in html
    assert f"/console/referrals/{turned_away.id}" in html
    for personal in ("Alex", "Testperson", "NR1 3AB", "01603"):
        assert personal not in html
    [event] = (
        await session.scalars(select(AuditEvent).where(AuditEvent.action == "ruleset.replay"))
    ).all()
    assert event.resource_id == version and event.actor_id == "user-admin"


async def test_bad_dates_and_a_missing_candidate_are_named_on_the_form(app, signed_in):
    console = await signed_in("admin")
    page = await console.get("/console/rules")
    result = await console.post(
        "/console/rules/replay",
        data={"csrf_token": csrf_from(page.text), "candidate_version": "", "from": "2026-02-30"},
    )
    assert result.status_code == 422
    assert 'href="#candidate-version"' in result.text and 'href="#from"' in result.text
    result = await console.post(
        "/console/rules/replay",
        data={
            "csrf_token": csrf_from(page.text),
            "candidate_version": "never-stored+000000000000",
            "from": "2026-05-02",
            "to": "2026-05-01",
        },
    )
    assert result.status_code == 422
    assert "The last day must be the same as or after the first day" in result.text
    result = await console.post(
        "/console/rules/replay",
        data={"csrf_token": csrf_from(page.text), "candidate_version": "never-stored+000000000000"},
    )
    assert result.status_code == 422
    assert "that one is not stored" in result.text


async def test_only_admins_see_the_rules_page(app, signed_in):
    for role in ("call_handler", "team_lead", "practitioner"):
        console = await signed_in(role)
        home = await console.get("/console")
        assert 'href="/console/rules"' not in home.text
        assert (await console.get("/console/rules")).status_code == 403
        posted = await console.post(
            "/console/rules/replay",
            data={"csrf_token": csrf_from(home.text), "candidate_version": "x"},
        )
        assert posted.status_code == 403


async def test_the_form_needs_its_csrf_token(app, signed_in):
    console = await signed_in("admin")
    response = await console.post("/console/rules/replay", data={"candidate_version": "x"})
    assert response.status_code == 403
