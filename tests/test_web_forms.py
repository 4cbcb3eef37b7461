"""The web pages without a browser (and so without JavaScript): the self-referral form, its
confirmation, the urgent-help page and the call-handler console, through httpx over ASGI.

These pin the no-JavaScript behaviour the browser tests build on: validation with the NHS error
summary, answers kept after an error, crisis contacts first when the need is urgent, CSRF, and
the console's search, decision preview, phone referral and queue counts.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData

from app.content import CRISIS_CONTACTS
from app.errors import Unprocessable
from app.models import AuditEvent, Referral, TriageDecision
from app.ratelimit import SelfReferralLimiter
from app.security import Role, issue_staff_token
from app.services import intake
from app.web import public
from app.web.forms import (
    FIELD_FOR_LOCATION,
    MISSING_LABELS,
    SELF_REFERRAL_ORDER,
    parse_self_referral,
)
from tests.conftest import count_rows
from tests.factories import (
    referral_body,
    self_referral_body,
    valid_test_nhs_numbers,
    years_ago,
)

REFERENCE = re.compile(r"FD-[0-9A-Z]{4}-[0-9A-Z]{4}")
CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_from(html: str) -> str:
    match = CSRF_INPUT.search(html)
    assert match, "the page has no CSRF token"
    return match.group(1)


async def open_form(client: httpx.AsyncClient, path: str = "/refer") -> str:
    response = await client.get(path)
    assert response.status_code == 200
    return csrf_from(response.text)


def self_form(**overrides: str | list[str] | None) -> dict[str, Any]:
    """A complete, non-urgent self-referral (a 16-year-old) as the form posts it."""
    dob = years_ago(16, days=40)
    form: dict[str, Any] = {
        "referrer_type": "self",
        "given_name": "Sam",
        "family_name": "Webform",
        "dob_day": str(dob.day),
        "dob_month": str(dob.month),
        "dob_year": str(dob.year),
        "postcode": "NR1 3AB",
        "nhs_number": "",
        "phone": "07700 900982",
        "email": "",
        "camhs_status": "never",
        "request": "help",
        "needs": ["anxiety", "school"],
        "reason": "Worried all the time & can't sleep <since spring>.",
        "suicidal": "none",
        "self_harm": "none",
        "harm_to_others": "none",
        "safeguarding_concern": "no",
        "supported": "yes",
        "setting": "no_preference",
        "consent_share": "yes",
        "parent_carer_aware": "yes",
    }
    form.update(overrides)
    return {key: value for key, value in form.items() if value is not None}


async def submit_self(client: httpx.AsyncClient, form: dict[str, Any]) -> httpx.Response:
    token = await open_form(client)
    return await client.post("/refer", data={"csrf_token": token, **form})


async def referrals(session: AsyncSession) -> list[tuple[Referral, TriageDecision]]:
    rows = await session.execute(
        select(Referral, TriageDecision).join(
            TriageDecision, TriageDecision.referral_id == Referral.id
        )
    )
    return [(r, d) for r, d in rows.all()]


# The public form -------------------------------------------------------------------------------


async def test_form_page_puts_help_first_and_works_without_javascript(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/refer")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert '<html lang="en-GB">' in html
    assert "<title>Ask for mental health support" in html
    # "Get help now" comes before the page's content, and the 999 guidance for "in danger now"
    # is in the page itself, beside the question, for browsers without JavaScript.
    assert html.index('href="/urgent-help"') < html.index('id="maincontent"')
    assert 'id="danger-now-guidance"' in html
    assert html.index('name="immediate_danger"') < html.index('id="danger-now-guidance"')
    cookie = response.headers["set-cookie"]
    assert "fd_csrf=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert "script-src 'self'" in response.headers["content-security-policy"]
    # Nothing inline: the CSP allows neither inline scripts nor inline styles.
    assert "<script>" not in html and "style=" not in html and "<style" not in html


async def test_complete_self_referral_goes_through_intake_and_confirms(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    response = await submit_self(client, self_form())
    assert response.status_code == 303
    assert response.headers["location"] == "/refer/confirmation"

    page = await client.get("/refer/confirmation")
    assert page.status_code == 200
    reference = REFERENCE.search(page.text)
    assert reference
    assert "within 4 weeks" in page.text
    assert 'id="crisis-contacts"' not in page.text

    [(referral, decision)] = await referrals(session)
    assert referral.reference == reference.group(0)
    assert referral.channel == "web"
    assert referral.submitted_by_kind == "public"
    assert referral.referrer_type == "self"
    assert decision.urgency_code == "E"
    assert referral.normalised["person"]["postcode"] == "NR1 3AB"
    assert referral.normalised["needs"] == ["anxiety", "school"]
    assert referral.normalised["consent"]["to_referral"] is True
    assert referral.normalised["risk"]["supported"] is True
    assert referral.raw_payload["person"]["given_name"] == "Sam"
    # No preference chosen: recorded as none.
    assert referral.normalised["preferences"]["setting"] is None


@pytest.mark.parametrize(
    ("answers", "code", "wording"),
    [
        ({"immediate_danger": "yes"}, "A", "Call 999 straight away"),
        ({"suicidal": "intent"}, "B", "within 4 hours"),
        ({"self_harm": "recent", "supported": "no"}, "C", "within 24 hours"),
    ],
)
async def test_urgent_self_referral_leads_with_crisis_contacts(
    client: httpx.AsyncClient,
    session: AsyncSession,
    answers: dict[str, str],
    code: str,
    wording: str,
) -> None:
    response = await submit_self(client, self_form(**answers))
    assert response.status_code == 303
    page = (await client.get("/refer/confirmation")).text
    assert page.index('id="crisis-contacts"') < page.index('id="referral-sent"')
    crisis = page[page.index('id="crisis-contacts"') : page.index('id="referral-sent"')]
    for contact in CRISIS_CONTACTS:
        assert contact.how in crisis
    assert 'href="tel:999"' in crisis and 'href="sms:85258"' in crisis
    assert wording in page
    if code == "A":
        assert "Call 999 now if you are in danger" in page
    [(_, decision)] = await referrals(session)
    assert decision.urgency_code == code


async def test_invalid_submission_shows_error_summary_and_keeps_answers(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    form = self_form(
        referrer_type=None,
        postcode="not a postcode",
        suicidal="thoughts",
        self_harm=None,
        consent_share=None,
    )
    response = await submit_self(client, form)
    assert response.status_code == 422
    html = response.text
    assert "<title>Error: Ask for mental health support" in html
    summary = html[html.index("nhsuk-error-summary") : html.index("<h1>")]
    for anchor, message in [
        ("#referrer_type", "Select who is filling in this form"),
        ("#postcode", "Enter a full UK postcode, like NR1 3AB"),
        ("#self_harm", "Select an answer about hurting yourself"),
    ]:
        assert f'<a href="{anchor}">{message}</a>' in summary
    # The sharing question is optional: left blank, it is no error.
    assert "#consent_share" not in summary
    # In the order of the page.
    assert (
        summary.index("#referrer_type") < summary.index("#postcode") < summary.index("#self_harm")
    )
    # Each field's error is tied to it, and what was typed is still there (escaped).
    assert 'aria-describedby="postcode-hint postcode-error"' in html
    assert 'value="not a postcode"' in html
    assert 'value="Sam"' in html
    assert "Worried all the time &amp; can&#39;t sleep &lt;since spring&gt;." in html
    assert re.search(r'value="thoughts"\s*checked', html)
    assert re.search(r'value="anxiety"\s*checked', html)
    assert await count_rows(session, "referrals") == 0


@pytest.mark.parametrize(
    ("day", "month", "year", "message"),
    [
        ("31", "2", "2010", "Date of birth must be a real date"),
        ("1", "1", "", "Date of birth must include a year"),
        ("1", "1", "10", "Year must include 4 numbers"),
        ("1", "1", "2999", "Date of birth must be today or in the past"),
        ("", "", "", "Enter date of birth"),
    ],
)
async def test_date_of_birth_errors(
    client: httpx.AsyncClient, day: str, month: str, year: str, message: str
) -> None:
    response = await submit_self(client, self_form(dob_day=day, dob_month=month, dob_year=year))
    assert response.status_code == 422
    assert f'<a href="#dob_day">{message}</a>' in response.text
    assert "nhsuk-date-input__input nhsuk-input--error" in response.text


async def test_a_way_to_contact_is_required(client: httpx.AsyncClient) -> None:
    response = await submit_self(client, self_form(phone="", email=""))
    assert response.status_code == 422
    assert "Enter a phone number or an email address so we can contact you" in response.text


async def test_bad_nhs_number_is_an_error_not_stored(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    response = await submit_self(client, self_form(nhs_number="999 000 0011"))
    assert response.status_code == 422
    # Said so a young person can act on it: what the number looks like and where to find it.
    assert (
        '<a href="#nhs_number">Check your NHS number: it is 10 digits, on a letter from your GP '
        "or in the NHS App. Leave it blank if you do not know it.</a>"
    ) in response.text
    assert "Modulus" not in response.text and "check digit" not in response.text
    # The wrong number is shown back only in its own box, to be corrected.
    assert response.text.count("999 000 0011") == 1
    assert await count_rows(session, "referrals") == 0


async def test_in_danger_with_errors_shows_999_before_the_errors(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    # A form that cannot be accepted (here: sent without its CSRF token) is shown again with
    # the 999 guidance before the list of problems.
    response = await client.post("/refer", data=self_form(immediate_danger="yes", given_name=""))
    assert response.status_code == 403
    html = response.text
    assert html.index('id="danger-now-first"') < html.index("nhsuk-error-summary")
    assert re.search(r'name="immediate_danger" type="checkbox" value="yes"\s*checked', html)
    # Sent properly, "in danger now" with a question unanswered is urgency A: stored at once.
    sent = await submit_self(client, self_form(immediate_danger="yes", given_name=""))
    assert sent.status_code == 303
    page = (await client.get("/refer/confirmation")).text
    assert "Call 999 now if you are in danger" in page
    [(referral, decision)] = await referrals(session)
    assert decision.urgency_code == "A"
    assert referral.incomplete_fields == ["person.given_name"]


# Urgent answers are never lost (issue 11, item 3) ------------------------------------------------


def _summary_links(html: str) -> list[tuple[str, str]]:
    if "nhsuk-error-summary" not in html:
        return []
    summary = html[html.index("nhsuk-error-summary") : html.index("<h1>")]
    return re.findall(r'<li><a href="([^"]+)">([^<]+)</a>', summary)


async def test_urgent_answers_with_the_sharing_question_blank_are_stored(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    """The measured defect: "I feel I might act on these thoughts soon" with the sharing
    question blank was an error page and nothing was stored."""
    response = await submit_self(client, self_form(suicidal="intent", consent_share=None))
    assert response.status_code == 303, _summary_links(response.text)
    page = (await client.get("/refer/confirmation")).text
    assert page.index('id="crisis-contacts"') < page.index('id="referral-sent"')
    [(referral, decision)] = await referrals(session)
    assert referral.reference in page
    assert decision.urgency_code == "B"
    # Not asked is not "no": the sharing answer is recorded as not given.
    assert referral.normalised["consent"]["to_share"] is None
    assert referral.incomplete_fields == []


async def test_urgent_but_incomplete_referral_keeps_what_is_valid(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    form = self_form(
        suicidal="intent",
        referrer_type=None,
        given_name="",
        dob_day="31",
        dob_month="2",
        dob_year="2010",
        nhs_number="999 000 0011",
        postcode="not a postcode",
        self_harm=None,
        safeguarding_concern=None,
        consent_share=None,
    )
    response = await submit_self(client, form)
    assert response.status_code == 303
    page = (await client.get("/refer/confirmation")).text

    [(referral, decision)] = await referrals(session)
    assert decision.urgency_code == "B"
    assert referral.incomplete_fields == [
        "person.date_of_birth",
        "person.given_name",
        "person.nhs_number",
        "person.postcode",
        "referrer.type",
        "risk.safeguarding_concern",
        "risk.self_harm",
    ]
    person = referral.normalised["person"]
    # What was valid is kept; what was not is dropped, never stored.
    assert person["family_name"] == "Webform" and person["phone"] == "07700 900982"
    assert person["nhs_number"] is None and person["date_of_birth"] is None
    assert person["postcode"] is None
    assert "9990000011" not in str(referral.raw_payload)
    assert referral.reason and referral.normalised["needs"] == ["anxiety", "school"]
    # Unanswered risk questions are "not asked", never "none".
    assert referral.normalised["risk"]["self_harm"] is None
    assert decision.input_snapshot["risk"]["self_harm"] is None
    assert decision.input_snapshot["risk"]["suicidal"] == "intent"
    assert "self_harm" in decision.output["risk_not_answered"]

    # Crisis contacts first, then that it was received (with the reference), then what is
    # missing, without showing back what was typed.
    crisis, received = page.index('id="crisis-contacts"'), page.index('id="referral-sent"')
    missing = page.index('id="referral-missing"')
    assert crisis < received < missing
    assert "We have received your referral" in page
    assert referral.reference in page[received:missing]
    listed = page[missing : page.index("</div>", missing)]
    for question in (
        "Who is filling in this form",
        "First name",
        "Date of birth",
        "Postcode",
        "NHS number",
        "Have you hurt yourself on purpose?",
        "Is anyone hurting you, or making you feel unsafe?",
    ):
        assert f"<li>{question}</li>" in listed
    for typed in ("999 000 0011", "9990000011", "not a postcode", "31"):
        assert typed not in listed
    assert "999 000 0011" not in page and "not a postcode" not in page
    assert "within 4 hours" in page


async def test_urgent_with_no_way_to_contact_says_so_honestly(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    response = await submit_self(client, self_form(self_harm="current", phone="", email=""))
    assert response.status_code == 303
    page = (await client.get("/refer/confirmation")).text
    [(referral, decision)] = await referrals(session)
    assert decision.urgency_code in ("A", "B", "C")
    assert "no_contact_route" in decision.output["urgency"]["flags"]
    assert referral.incomplete_fields == ["person.email", "person.phone"]
    assert "<li>A phone number or email address, so we can contact you</li>" in page
    assert "We have no way to contact you" in page
    assert "no way to contact you" in page[page.index('id="next-steps"') :]
    # No promise of a call that cannot happen.
    assert "will try to contact you" not in page and "will contact you" not in page
    assert page.index('id="crisis-contacts"') < page.index('id="referral-sent"')


@pytest.mark.parametrize(
    "answers",
    [
        {"suicidal": "thoughts", "given_name": ""},
        {"suicidal": None, "self_harm": None},
        {"phone": "", "email": ""},
        {"nhs_number": "999 000 0011"},
    ],
)
async def test_below_urgency_c_errors_are_shown_and_nothing_is_stored(
    client: httpx.AsyncClient, session: AsyncSession, answers: dict[str, Any]
) -> None:
    response = await submit_self(client, self_form(**answers))
    assert response.status_code == 422
    assert _summary_links(response.text)
    assert await count_rows(session, "referrals") == 0
    assert await count_rows(session, "persons") == 0


@pytest.mark.parametrize(
    ("answers", "anchor", "message"),
    [
        (
            {"safeguarding_concern": None},
            "#safeguarding_concern",
            "Select yes if anyone is hurting you or making you feel unsafe",
        ),
        (
            {"given_name": "Sa\x01m"},
            "#given_name",
            "First name has a character we cannot store: type it again instead of pasting it",
        ),
        (
            {"reason": "Worried\x00"},
            "#reason",
            "What has been happening has a character we cannot store: type it again instead of "
            "pasting it",
        ),
        (
            {"suicidal": "tampered"},
            "#suicidal",
            "Select an answer about thoughts of ending your life",
        ),
    ],
)
async def test_every_error_says_what_to_do_for_its_answer(
    client: httpx.AsyncClient, answers: dict[str, str], anchor: str, message: str
) -> None:
    """The measured defect: a blank "Is anyone hurting you" also gave "Check this answer",
    linked to the top of the page, and a pasted control character in a name only that."""
    response = await submit_self(client, self_form(**answers))
    assert response.status_code == 422
    links = _summary_links(response.text)
    assert (anchor, message.replace("'", "&#39;")) in links
    assert len(links) == 1, links
    assert "Check this answer" not in response.text
    assert "#maincontent" not in [href for href, _ in links]


def test_every_answer_the_form_sends_has_its_own_field_and_message() -> None:
    """No pydantic error on the self-referral form can fall back to a generic message: every
    field path the form fills in belongs to a field on the page."""
    parsed = parse_self_referral(FormData(list(_flat(self_form(referrer_type="parent_carer")))))
    assert parsed.ok, parsed.errors

    def paths(data: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
        found = []
        for key, value in data.items():
            if isinstance(value, dict) and value:
                found += paths(value, (*prefix, key))
            else:
                found.append((*prefix, key))
        return found

    for location in paths(parsed.data):
        key = FIELD_FOR_LOCATION.get(location)
        assert key is not None, location
        assert key in SELF_REFERRAL_ORDER, key
        assert key in MISSING_LABELS, key


def _flat(form: dict[str, Any]) -> list[tuple[str, str]]:
    items: list[tuple[str, str]] = []
    for key, value in form.items():
        for one in value if isinstance(value, list) else [value]:
            items.append((key, one))
    return items


async def test_a_domain_error_after_a_write_commits_nothing(
    client: httpx.AsyncClient, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page that catches a domain error rolls back: nothing half-written is committed."""
    real = intake.submit_referral

    async def write_then_refuse(*args: Any, **kwargs: Any) -> Any:
        await real(*args, **kwargs)
        raise Unprocessable("refused after writing", field="person")

    monkeypatch.setattr(public, "submit_referral", write_then_refuse)
    response = await submit_self(client, self_form())
    assert response.status_code == 422
    for table in ("referrals", "persons", "cases", "triage_decisions"):
        assert await count_rows(session, table) == 0, table


async def test_parent_or_carer_can_refer(client: httpx.AsyncClient, session: AsyncSession) -> None:
    form = self_form(
        referrer_type="parent_carer",
        referrer_name="Pat Parent",
        referrer_phone="01603 000000",
        referral_agreed="not_sure",
        phone="",
        parent_carer_aware=None,
    )
    assert (await submit_self(client, form)).status_code == 303
    [(referral, _)] = await referrals(session)
    assert referral.referrer_type == "parent_carer"
    assert referral.normalised["referrer"]["phone"] == "01603 000000"
    assert referral.normalised["consent"]["to_referral"] is None
    assert referral.normalised["consent"]["parent_carer_aware"] is True


async def test_sending_the_same_form_twice_makes_one_referral(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    token = await open_form(client)
    form = {"csrf_token": token, "submission_id": str(uuid.uuid4()), **self_form()}
    first = await client.post("/refer", data=form)
    first_page = (await client.get("/refer/confirmation")).text
    second = await client.post("/refer", data=form)
    second_page = (await client.get("/refer/confirmation")).text
    assert first.status_code == second.status_code == 303
    first_ref, second_ref = REFERENCE.search(first_page), REFERENCE.search(second_page)
    assert first_ref and second_ref and first_ref.group(0) == second_ref.group(0)
    assert await count_rows(session, "referrals") == 1
    # Changed answers on the same form (the back button) are a new referral, not an error.
    changed = await client.post("/refer", data={**form, "reason": "Something else too."})
    assert changed.status_code == 303
    assert await count_rows(session, "referrals") == 2


async def test_post_without_csrf_token_is_refused_and_keeps_answers(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    response = await client.post("/refer", data=self_form())
    assert response.status_code == 403
    assert "could not be sent safely" in response.text
    assert 'value="Sam"' in response.text
    assert await count_rows(session, "referrals") == 0
    # A token from another browser (cookie) does not match.
    await client.get("/refer")
    forged = await client.post("/refer", data={"csrf_token": "x" * 43, **self_form()})
    assert forged.status_code == 403


async def test_honeypot_stores_nothing(client: httpx.AsyncClient, session: AsyncSession) -> None:
    response = await submit_self(client, self_form(website="https://spam.example"))
    assert response.status_code == 422
    assert "spam.example" not in response.text
    assert await count_rows(session, "referrals") == 0


async def test_the_form_shares_the_self_referral_rate_limit(
    app: Any, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    app.state.self_referral_limiter = SelfReferralLimiter(
        per_address_per_minute=1,
        overall_per_minute=100,
        time_source=lambda: app.state.clock.now().timestamp(),
    )
    assert (await submit_self(client, self_form())).status_code == 303
    refused = await submit_self(client, self_form(given_name="Again"))
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert "If you are in danger now, call 999." in refused.text
    assert 'value="Again"' in refused.text
    # The API and the form draw on the same allowance.
    api = await client.post("/v1/self-referrals", json=self_referral_body())
    assert api.status_code == 429
    assert await count_rows(session, "referrals") == 1


async def test_confirmation_needs_the_signed_cookie(client: httpx.AsyncClient) -> None:
    response = await client.get("/refer/confirmation")
    assert response.status_code == 303
    assert response.headers["location"] == "/refer"
    client.cookies.set("fd_confirmation", "eyJyZWZlcmVuY2UiOiJGRC0xMjM0LTU2NzgifQ.forged")
    assert (await client.get("/refer/confirmation")).status_code == 303


async def test_urgent_help_lists_every_crisis_contact(client: httpx.AsyncClient) -> None:
    response = await client.get("/urgent-help")
    assert response.status_code == 200
    for contact in CRISIS_CONTACTS:
        assert contact.name in response.text and contact.how in response.text
    for number in ("999", "111", "116123", "08001111", "08000684141"):
        assert f'href="tel:{number}"' in response.text


@pytest.mark.parametrize("path", ["/refer", "/urgent-help", "/console/sign-in"])
async def test_every_page_links_to_urgent_help(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 200
    assert '<a class="app-help-now__link" href="/urgent-help">Get help now</a>' in response.text


async def test_static_files_are_local_and_cacheable(client: httpx.AsyncClient) -> None:
    css = await client.get("/static/nhsuk/nhsuk-frontend.min.css")
    assert css.status_code == 200
    assert "assets.nhs.uk" not in css.text and "@font-face" not in css.text
    assert css.headers["cache-control"].startswith("public")
    script = await client.get("/static/frontdoor.mjs")
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert (await client.get("/static/nhsuk/assets/images/favicon.ico")).status_code == 200


# The console -----------------------------------------------------------------------------------


async def sign_in(
    client: httpx.AsyncClient, staff_headers: Any, role: str = "call_handler"
) -> None:
    token = staff_headers(role=role)["Authorization"].removeprefix("Bearer ")
    csrf = await open_form(client, "/console/sign-in")
    response = await client.post("/console/sign-in", data={"csrf_token": csrf, "token": token})
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/console"


def phone_form(**overrides: Any) -> dict[str, Any]:
    dob = years_ago(15, days=30)
    form: dict[str, Any] = {
        "referrer_type": "parent_carer",
        "referrer_name": "Pat Example",
        "given_name": "Alex",
        "family_name": "Consoletest",
        "dob_day": str(dob.day),
        "dob_month": str(dob.month),
        "dob_year": str(dob.year),
        "postcode": "NR1 3AB",
        "camhs_status": "never",
        "amhs_threshold": "unknown",
        "request": "help",
        "needs": ["low_mood"],
        "reason": "Low for months.",
        "suicidal": "none",
        "self_harm": "none",
        "harm_to_others": "none",
        "supported": "yes",
        "consent_referral": "yes",
        "consent_share": "yes",
        "parent_carer_aware": "yes",
        "gillick_outcome": "",
    }
    form.update(overrides)
    return {key: value for key, value in form.items() if value is not None}


async def test_console_needs_sign_in(client: httpx.AsyncClient) -> None:
    for path in ("/console", "/console/queues", "/console/referrals/new"):
        response = await client.get(path)
        assert response.status_code == 303
        assert response.headers["location"] == "/console/sign-in"
    preview = await client.post(
        "/console/referrals/preview", data={}, headers={"Accept": "application/json"}
    )
    assert preview.status_code == 401


async def test_sign_in_rejects_a_bad_token(client: httpx.AsyncClient) -> None:
    csrf = await open_form(client, "/console/sign-in")
    response = await client.post("/console/sign-in", data={"csrf_token": csrf, "token": "nope"})
    assert response.status_code == 422
    assert "<title>Error: Sign in" in response.text
    assert '<a href="#token">The token is not valid.</a>' in response.text
    assert "fd_staff" not in response.headers.get("set-cookie", "")


async def test_sign_in_and_out(client: httpx.AsyncClient, staff_headers: Any) -> None:
    token = staff_headers()["Authorization"].removeprefix("Bearer ")
    csrf = await open_form(client, "/console/sign-in")
    response = await client.post(
        "/console/sign-in", data={"csrf_token": csrf, "token": f"Bearer {token}"}
    )
    assert response.status_code == 303
    cookie = response.headers["set-cookie"]
    assert "fd_staff=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert "Path=/console" in cookie
    home = await client.get("/console")
    assert home.status_code == 200
    assert "Signed in as user-call_handler (call handler)" in home.text
    out = await client.post("/console/sign-out", data={"csrf_token": csrf_from(home.text)})
    assert out.status_code == 303
    assert (await client.get("/console")).status_code == 303


async def test_expired_or_tampered_sign_in_goes_back_to_sign_in(
    client: httpx.AsyncClient,
) -> None:
    client.cookies.set("fd_staff", "not-a-token", path="/console")
    response = await client.get("/console")
    assert response.status_code == 303
    assert response.headers["location"] == "/console/sign-in?expired=1"
    page = await client.get("/console/sign-in?expired=1")
    assert "Your sign-in has ended" in page.text


async def test_find_a_person_by_nhs_number_or_name_and_date_of_birth(
    client: httpx.AsyncClient, session: AsyncSession, staff_headers: Any
) -> None:
    [nhs] = valid_test_nhs_numbers(1, start=6100)
    body = referral_body(nhs=nhs, person={"family_name": "Searchable", "given_name": "Robin"})
    created = await client.post("/v1/referrals", json=body, headers=staff_headers())
    assert created.status_code == 201
    reference = created.json()["reference"]
    await sign_in(client, staff_headers)
    csrf = csrf_from((await client.get("/console")).text)

    by_number = await client.post(
        "/console/search",
        data={"csrf_token": csrf, "nhs_number": f"{nhs[:3]} {nhs[3:6]} {nhs[6:]}"},
    )
    assert by_number.status_code == 200
    assert "1 person found" in by_number.text and reference in by_number.text
    assert "Exact match" in by_number.text
    assert f"{nhs[:3]} {nhs[3:6]} {nhs[6:]}" in by_number.text

    dob = body["person"]["date_of_birth"]
    year, month, day = dob.split("-")
    by_name = await client.post(
        "/console/search",
        data={
            "csrf_token": csrf,
            "family_name": "searchable",
            "dob_day": day,
            "dob_month": month,
            "dob_year": year,
        },
    )
    assert "1 person found" in by_name.text and reference in by_name.text
    assert "/console/referrals/new?person_id=" in by_name.text

    events = (
        await session.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "search", AuditEvent.actor_id == "user-call_handler"
            )
        )
    ).all()
    assert len(events) == 2
    assert all(e.person_id == uuid.UUID(created.json()["person_id"]) for e in events)
    assert {tuple(e.details["criteria"]) for e in events} == {
        ("nhs_number",),
        ("family_name", "date_of_birth"),
    }
    assert nhs not in str([e.details for e in events])


@pytest.mark.parametrize(
    ("form", "anchor", "message"),
    [
        ({}, "#nhs_number", "Enter an NHS number, or a last name and date of birth"),
        ({"nhs_number": "123"}, "#nhs_number", "Enter a 10 digit NHS number"),
        ({"family_name": "Smith"}, "#dob_day", "Enter a date of birth to search with"),
        (
            {"dob_day": "1", "dob_month": "2", "dob_year": "2010"},
            "#family_name",
            "Enter a last name to search with",
        ),
    ],
)
async def test_search_errors(
    client: httpx.AsyncClient,
    staff_headers: Any,
    form: dict[str, str],
    anchor: str,
    message: str,
) -> None:
    await sign_in(client, staff_headers)
    csrf = csrf_from((await client.get("/console")).text)
    response = await client.post("/console/search", data={"csrf_token": csrf, **form})
    assert response.status_code == 422
    assert f'<a href="{anchor}">{message}' in response.text


async def test_preview_decision_without_javascript_stores_nothing(
    client: httpx.AsyncClient, session: AsyncSession, staff_headers: Any
) -> None:
    await sign_in(client, staff_headers)
    csrf = csrf_from((await client.get("/console/referrals/new")).text)
    form = phone_form(suicidal="plan", supported="no")
    response = await client.post(
        "/console/referrals/new", data={"csrf_token": csrf, "action": "preview", **form}
    )
    assert response.status_code == 200
    assert "Urgency C</strong> High risk and/or high distress" in response.text
    assert "Give the caller the crisis contacts" in response.text
    # The form is filled in again as typed.
    assert 'value="Consoletest"' in response.text
    assert await count_rows(session, "referrals") == 0


async def test_live_preview_endpoint_matches_triage_evaluate(
    client: httpx.AsyncClient, staff_headers: Any
) -> None:
    await sign_in(client, staff_headers)
    csrf = csrf_from((await client.get("/console/referrals/new")).text)
    form = phone_form(self_harm="current")
    preview = await client.post(
        "/console/referrals/preview",
        data=form,
        headers={"X-CSRF-Token": csrf, "Accept": "application/json"},
    )
    assert preview.status_code == 200
    result = preview.json()
    assert result["decision"]["urgency"]["code"] == "B"
    assert "Urgency B" in result["html"]
    # The same decision as the API's preview for the same answers.
    api = await client.post(
        "/v1/triage/evaluate",
        json=referral_body(
            age=15,
            risk={"self_harm": "current"},
            person={
                "family_name": "Consoletest",
                "date_of_birth": years_ago(15, days=30).isoformat(),
            },
        ),
        headers=staff_headers(),
    )
    assert api.json()["urgency"]["code"] == "B"
    assert api.json()["route"] == result["decision"]["route"]

    refused = await client.post(
        "/console/referrals/preview", data=form, headers={"Accept": "application/json"}
    )
    assert refused.status_code == 403
    # Half-typed answers: the preview lists what to correct rather than failing.
    partial = await client.post(
        "/console/referrals/preview",
        data={**form, "postcode": "NR"},
        headers={"X-CSRF-Token": csrf, "Accept": "application/json"},
    )
    assert partial.json()["decision"] is None
    assert partial.json()["errors"][0]["href"] == "#postcode"


async def test_record_a_phone_referral(
    client: httpx.AsyncClient, session: AsyncSession, staff_headers: Any
) -> None:
    await sign_in(client, staff_headers)
    csrf = csrf_from((await client.get("/console/referrals/new")).text)
    response = await client.post(
        "/console/referrals/new",
        data={
            "csrf_token": csrf,
            "action": "submit",
            "submission_id": str(uuid.uuid4()),
            **phone_form(),
        },
    )
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith("/console/referrals/") and location.endswith("?recorded=1")
    page = await client.get(location)
    assert page.status_code == 200
    assert "Referral recorded" in page.text
    [(referral, decision)] = await referrals(session)
    assert referral.reference in page.text
    assert referral.channel == "phone"
    assert referral.submitted_by_kind == "staff"
    assert referral.submitted_by_id == "user-call_handler"
    assert referral.referrer_type == "parent_carer"
    assert decision.urgency_code == "E"
    reads = await session.scalars(
        select(AuditEvent).where(
            AuditEvent.action == "read",
            AuditEvent.resource_type == "referral",
            AuditEvent.resource_id == str(referral.id),
        )
    )
    assert len(reads.all()) == 1


async def test_phone_referral_needs_the_risk_answers(
    client: httpx.AsyncClient, session: AsyncSession, staff_headers: Any
) -> None:
    await sign_in(client, staff_headers)
    csrf = csrf_from((await client.get("/console/referrals/new")).text)
    form = phone_form(suicidal=None, referrer_type=None, supported=None)
    response = await client.post(
        "/console/referrals/new", data={"csrf_token": csrf, "action": "submit", **form}
    )
    assert response.status_code == 422
    for anchor in ("#referrer_type", "#suicidal", "#supported"):
        assert f'<a href="{anchor}">' in response.text
    assert await count_rows(session, "referrals") == 0


async def test_new_referral_starts_from_a_found_person(
    client: httpx.AsyncClient, staff_headers: Any
) -> None:
    [nhs] = valid_test_nhs_numbers(1, start=6200)
    created = await client.post(
        "/v1/referrals",
        json=referral_body(nhs=nhs, person={"family_name": "Prefilled"}),
        headers=staff_headers(),
    )
    await sign_in(client, staff_headers)
    page = await client.get(f"/console/referrals/new?person_id={created.json()['person_id']}")
    assert page.status_code == 200
    assert f'value="{nhs}"' in page.text and 'value="Prefilled"' in page.text


async def test_queues_page_shows_counts(client: httpx.AsyncClient, staff_headers: Any) -> None:
    created = await client.post(
        "/v1/referrals", json=referral_body(risk={"suicidal": "intent"}), headers=staff_headers()
    )
    assert created.json()["decision"]["route"]["kind"] == "crisis"
    await sign_in(client, staff_headers)
    page = await client.get("/console/queues")
    assert page.status_code == 200
    row = re.search(r'<tr class="nhsuk-table__row" id="queue-crisis">(.*?)</tr>', page.text, re.S)
    assert row, "the crisis queue is listed"
    assert re.search(r"app-open-count\">\s*1\s*<", row.group(1))


async def test_unknown_referral_is_a_not_found_page(
    client: httpx.AsyncClient, staff_headers: Any
) -> None:
    await sign_in(client, staff_headers)
    for path in (f"/console/referrals/{uuid.uuid4()}", "/console/referrals/not-a-uuid"):
        response = await client.get(path)
        assert response.status_code == 404
        assert "Referral not found" in response.text


# The console shows everything we were told (issue 11, item 6) ----------------------------------


async def _web_referral(
    client: httpx.AsyncClient, session: AsyncSession, **answers: Any
) -> Referral:
    response = await submit_self(client, self_form(**answers))
    assert response.status_code == 303, _summary_links(response.text)
    page = (await client.get("/refer/confirmation")).text
    reference = REFERENCE.search(page)
    assert reference
    referral = await session.scalar(select(Referral).where(Referral.reference == reference[0]))
    assert referral is not None
    return referral


def _text(html: str) -> str:
    """The page's main content as text (tags dropped, spaces collapsed)."""
    main = html[html.index('id="maincontent"') :]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", main))


async def test_console_shows_what_a_web_self_referral_said(
    client: httpx.AsyncClient, session: AsyncSession, staff_headers: Any
) -> None:
    """The measured defect: the page showed flags, but not the young person's own words, their
    phone number, needs or consent, and told staff to "give the caller" contacts."""
    referral = await _web_referral(
        client,
        session,
        email="sam@example.com",
        suicidal="plan",
        supported="no",
        reason="I can't sleep.\nEvery night since spring.",
    )
    await sign_in(client, staff_headers)
    page = await client.get(f"/console/referrals/{referral.id}")
    assert page.status_code == 200
    html, text = page.text, _text(page.text)
    # The young person's own words, escaped, with their line breaks kept.
    assert "In the young person's own words" in html
    assert "I can&#39;t sleep.\nEvery night since spring." in html
    # Contact details as links.
    assert '<a href="tel:07700900982">07700 900982</a>' in html
    assert '<a href="mailto:sam@example.com">sam@example.com</a>' in html
    # Needs, request and consent in words.
    assert "Feeling worried, anxious or panicky" in text and "School, college or work" in text
    assert "Agrees to share with other services Yes" in text
    assert "Consents to the referral Yes" in text
    assert "Parent or carer aware Yes" in text
    assert "Gillick competence Not assessed" in text
    assert "Suicidal thoughts Thoughts, and a plan for how" in text
    assert "Capable support around them No" in text
    # Urgent, and worded for a web referral: there is no caller.
    assert "Urgency C: contact the young person now" in text
    assert "caller" not in html.lower()
    assert "Open urgent case: urgency C" in text
    assert "Key worker: not allocated yet" in text
    assert "Unverified: made from this public self-referral" in text


async def test_console_shows_what_is_missing_and_flags_in_plain_words(
    client: httpx.AsyncClient, session: AsyncSession, staff_headers: Any
) -> None:
    referral = await _web_referral(
        client,
        session,
        self_harm="current",
        phone="",
        email="",
        dob_day="",
        dob_month="",
        dob_year="",
        suicidal=None,
    )
    await sign_in(client, staff_headers)
    page = await client.get(f"/console/referrals/{referral.id}")
    text = _text(page.text)
    assert "What is missing" in text
    missing = page.text[page.text.index('id="incomplete-fields"') :]
    missing = missing[: missing.index("</ul>")]
    for words in ("Date of birth", "Phone number", "Email address", "Suicidal thoughts"):
        assert f"<li>{words}</li>" in missing
    assert (
        "No way to contact anyone: no phone, email or address for the young person or the "
        "referrer" in text
    )
    assert "Suicidal thoughts Not asked" in text
    assert "Young person's contact details None given" in text
    assert "no_contact_route" not in text and "No contact route" not in text
    assert "caller" not in page.text.lower()


async def test_console_phone_referral_keeps_the_callers_wording_and_shows_gillick(
    client: httpx.AsyncClient, session: AsyncSession, staff_headers: Any
) -> None:
    await sign_in(client, staff_headers)
    csrf = csrf_from((await client.get("/console/referrals/new")).text)
    form = phone_form(
        suicidal="intent",
        referrer_phone="01603 111222",
        gillick_outcome="competent",
        gillick_assessed_by="Dr Example",
        gillick_day="3",
        gillick_month="11",
        gillick_year="2026",
    )
    response = await client.post(
        "/console/referrals/new", data={"csrf_token": csrf, "action": "submit", **form}
    )
    assert response.status_code == 303
    page = await client.get(response.headers["location"])
    text = _text(page.text)
    assert "Give the caller the crisis contacts now" in text
    assert "Gillick competence Competent, assessed by Dr Example on 3 November 2026" in text
    assert "In the words of the parent or carer Low for months." in text
    assert '<a href="tel:01603111222">01603 111222</a>' in page.text
    assert "Parent or carer: Pat Example" in text


async def test_console_shows_a_proposed_link_to_a_known_person(
    client: httpx.AsyncClient, session: AsyncSession, staff_headers: Any
) -> None:
    [nhs] = valid_test_nhs_numbers(1, start=6300)
    known = await client.post(
        "/v1/referrals",
        json=referral_body(
            nhs=nhs,
            risk={"self_harm": "current"},
            person={"given_name": "Kim", "family_name": "Knownperson"},
        ),
        headers=staff_headers(),
    )
    assert known.status_code == 201
    referral = await _web_referral(client, session, nhs_number=nhs, family_name="Knownperson")
    assert referral.proposed_person_id == uuid.UUID(known.json()["person_id"])
    await sign_in(client, staff_headers)
    page = await client.get(f"/console/referrals/{referral.id}")
    text = _text(page.text)
    assert "Possible match with a known person" in text
    assert "The match is proposed, not confirmed" in text
    assert "Kim Knownperson" in text
    assert known.json()["reference"] in text
    # The known person's open crisis case stands out (urgency B).
    proposed = page.text[page.text.index('id="proposed-open-case"') :]
    assert "Open urgent case: urgency B" in proposed[: proposed.index("</dd>")]
    # Showing the known person is a read of their record, audited as one.
    reads = (
        await session.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "read",
                AuditEvent.resource_type == "person",
                AuditEvent.person_id == uuid.UUID(known.json()["person_id"]),
            )
        )
    ).all()
    assert [e.details["via"] for e in reads] == ["console_proposed_link"]


@pytest.mark.parametrize("field", ["reference", "nhs_number"])
@pytest.mark.parametrize("typed", ["exact", "lower case, no dashes", "spaced"])
async def test_console_search_finds_a_referral_by_its_reference(
    client: httpx.AsyncClient,
    session: AsyncSession,
    staff_headers: Any,
    field: str,
    typed: str,
) -> None:
    """The measured defect: the reference a young person was told to quote could not be
    looked up."""
    referral = await _web_referral(client, session)
    reference = referral.reference
    text = {
        "exact": reference,
        "lower case, no dashes": reference.replace("-", "").lower(),
        "spaced": reference.replace("-", " ").lower(),
    }[typed]
    await sign_in(client, staff_headers)
    csrf = csrf_from((await client.get("/console")).text)
    response = await client.post("/console/search", data={"csrf_token": csrf, field: text})
    assert response.status_code == 303
    assert response.headers["location"] == f"/console/referrals/{referral.id}"
    events = (
        await session.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "search", AuditEvent.resource_type == "referral"
            )
        )
    ).all()
    assert [e.details["criteria"] for e in events] == [["reference"]]
    assert events[0].resource_id == str(referral.id)


async def test_console_search_by_reference_not_found_or_malformed(
    client: httpx.AsyncClient, staff_headers: Any
) -> None:
    await sign_in(client, staff_headers)
    csrf = csrf_from((await client.get("/console")).text)
    unknown = await client.post(
        "/console/search", data={"csrf_token": csrf, "reference": "fd-0000-0000"}
    )
    assert unknown.status_code == 200
    assert "No referral has the reference FD-0000-0000" in unknown.text
    malformed = await client.post(
        "/console/search", data={"csrf_token": csrf, "reference": "FD-12"}
    )
    assert malformed.status_code == 422
    assert '<a href="#reference">Enter a reference like FD-7K3M-Q9T2' in malformed.text


async def test_an_open_urgent_case_stands_out_in_search_results(
    client: httpx.AsyncClient, staff_headers: Any
) -> None:
    """The measured defect: an open urgency-B crisis case was an ordinary row in the results."""
    urgent_nhs, routine_nhs = valid_test_nhs_numbers(2, start=6400)
    urgent = await client.post(
        "/v1/referrals",
        json=referral_body(nhs=urgent_nhs, risk={"suicidal": "intent"}),
        headers=staff_headers(),
    )
    routine = await client.post(
        "/v1/referrals", json=referral_body(nhs=routine_nhs), headers=staff_headers()
    )
    assert urgent.json()["decision"]["urgency"]["code"] == "B"
    assert routine.json()["decision"]["urgency"]["code"] not in ("A", "B", "C")
    await sign_in(client, staff_headers)
    csrf = csrf_from((await client.get("/console")).text)
    found = await client.post(
        "/console/search", data={"csrf_token": csrf, "nhs_number": urgent_nhs}
    )
    # In words (a tag), not colour alone: on the person and on the referral's row.
    assert found.text.count("nhsuk-tag--red app-open-urgent") == 2
    assert "Open urgent case: urgency B</strong>" in found.text
    row = re.search(r"<tr class=\"nhsuk-table__row\">\s*<td.*?</tr>", found.text, re.S)
    assert row and (
        'Open urgent case<span class="nhsuk-u-visually-hidden">: urgency</span> B'
    ) in row.group(0)
    assert "Open urgent case (urgency B), waiting." in _text(found.text)
    plain = await client.post(
        "/console/search", data={"csrf_token": csrf, "nhs_number": routine_nhs}
    )
    assert "Open urgent case" not in plain.text


async def test_console_names_the_key_worker(
    client: httpx.AsyncClient, settings: Any, staff_headers: Any
) -> None:
    created = await client.post("/v1/referrals", json=referral_body(), headers=staff_headers())
    assert created.status_code == 201
    queue = created.json()["decision"]["route"]["queue_id"]
    token = issue_staff_token(
        settings,
        subject="worker-jamie",
        role=Role("practitioner"),
        queue_ids=[queue],
        name="Jamie Worker",
        now=datetime.now(UTC),
    )
    claim = await client.post(
        f"/v1/queues/{queue}/claim", headers={"Authorization": f"Bearer {token}"}
    )
    assert claim.status_code == 200, claim.text
    await sign_in(client, staff_headers)
    page = await client.get(f"/console/referrals/{created.json()['id']}")
    assert "Key worker: Jamie Worker" in _text(page.text)


async def test_the_form_asks_before_texting_and_a_yes_queues_a_text(client, session):
    from app.models import Notification

    page = await client.get("/refer")
    assert "Can we send you a text message to say we have your referral?" in page.text
    response = await submit_self(
        client, self_form(phone="07700 900983", email="", contact_by_text="yes")
    )
    assert response.status_code == 303, response.text
    messages = (await session.scalars(select(Notification))).all()
    texts = [m for m in messages if m.kind == "acknowledgement"]
    assert [(m.channel, m.status) for m in texts] == [("sms", "pending")]


async def test_without_a_yes_to_texts_no_text_is_sent(client, session):
    from app.models import Notification

    response = await submit_self(client, self_form(phone="07700 900984", email=""))
    assert response.status_code == 303, response.text
    texts = [
        m
        for m in (await session.scalars(select(Notification))).all()
        if m.kind == "acknowledgement"
    ]
    assert [(m.channel, m.status) for m in texts] == [("sms", "not_sent")]
