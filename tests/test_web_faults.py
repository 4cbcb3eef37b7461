"""A fault on a public page is a page: crisis contacts first, nothing saved, try again (H8)."""

from __future__ import annotations

from typing import Any

from tests.conftest import count_rows
from tests.test_web_forms import self_form, submit_self


async def _database_gone(*args: Any, **kwargs: Any) -> Any:
    raise ConnectionRefusedError(111, "Connect call failed")


async def test_a_database_outage_on_the_form_is_a_page_with_crisis_contacts(
    client, session, monkeypatch
):
    monkeypatch.setattr("app.web.public.submit_referral", _database_gone)
    response = await submit_self(client, self_form(suicidal="intent"))
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["retry-after"]
    html = response.text
    main = html[html.index("<main") :]
    assert main.index("999") < main.index("We could not save this just now")
    assert "nothing you sent was saved" in html
    assert "116 123" in html  # Samaritans, among the crisis contacts
    assert await count_rows(session, "referrals") == 0


async def test_the_api_keeps_problem_json_for_the_same_fault(client, monkeypatch):
    monkeypatch.setattr("app.routers.self_referrals.submit_referral", _database_gone)
    response = await client.post("/v1/self-referrals", json={})
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "database_unavailable"
