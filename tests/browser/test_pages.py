"""The self-referral form and the call-handler console in a real browser (Chromium + Playwright).

Each page visited is checked with axe-core (WCAG 2.2 AA) and photographed at phone and desktop
widths (``check_page``). The page fixture fails a test on any console error, so a page that
breaks the Content-Security-Policy (an inline script or style, a font from another site) fails.
"""

from __future__ import annotations

import os
import re
from typing import Any

import httpx
import pytest

try:
    from playwright.sync_api import Page, expect
except ImportError:  # reported by the browser_requirements fixture: skipped locally, fails in CI
    if os.environ.get("CI", "").lower() == "true":
        raise
    pytest.skip("the playwright Python package is not installed", allow_module_level=True)

from tests.browser.conftest import DESKTOP, check_page
from tests.factories import referral_body, valid_test_nhs_numbers, years_ago

pytestmark = pytest.mark.usefixtures("browser_requirements")

REFERENCE = re.compile(r"FD-[0-9A-Z]{4}-[0-9A-Z]{4}")


def choose(page: Page, question: str, answer: str) -> None:
    """Select an answer to a radio or checkbox question, by clicking its label like a person."""
    page.get_by_role("group", name=question).get_by_text(answer, exact=True).click()


def fill_self_referral(page: Page, **answers: str) -> None:
    """A complete, non-urgent self-referral; ``answers`` override the risk questions."""
    dob = years_ago(16, days=40)
    choose(page, "Who is filling in this form?", "I'm the young person asking for support")
    page.get_by_label("First name").fill("Jo")
    page.get_by_label("Last name").fill("Browsertest")
    page.get_by_label("Day", exact=True).fill(str(dob.day))
    page.get_by_label("Month", exact=True).fill(str(dob.month))
    page.get_by_label("Year", exact=True).fill(str(dob.year))
    page.get_by_label("Postcode (optional)").fill("NR2 4AB")
    page.get_by_label("Phone number", exact=True).fill("07700 900982")
    choose(page, "What would you like support with?", "Feeling low, sad or empty")
    page.get_by_label("Tell us what has been happening").fill("I have felt low since the winter.")
    choose(
        page,
        "Have you had thoughts about ending your life?",
        answers.get("suicidal", "No"),
    )
    choose(page, "Have you hurt yourself on purpose?", answers.get("self_harm", "No"))
    choose(page, "Have you had thoughts about hurting someone else?", "No")
    choose(page, "Is anyone hurting you, or making you feel unsafe?", "No")
    choose(page, "Is there someone you trust who can support you right now?", "Yes")
    choose(page, "What would you like from us?", "Support from our team")
    choose(
        page,
        "Can we share your referral with other services that could help you?",
        "Yes",
    )


def test_complete_self_referral(page: Page) -> None:
    page.goto("/refer")
    expect(page).to_have_title(re.compile(r"^Ask for mental health support"))
    check_page(page, "refer-form")

    fill_self_referral(page)
    page.get_by_role("button", name="Send my referral").click()

    expect(page).to_have_url(re.compile(r"/refer/confirmation$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Referral sent")
    reference = page.locator(".app-reference").inner_text()
    assert REFERENCE.fullmatch(reference.strip())
    expect(page.locator("#next-steps")).to_contain_text("within 4 weeks")
    expect(page.locator("#crisis-contacts")).to_have_count(0)
    check_page(page, "refer-confirmation")

    page.get_by_role("link", name="Get help now").first.click()
    expect(page).to_have_url(re.compile(r"/urgent-help$"))
    expect(page.get_by_role("link", name="Text SHOUT to 85258")).to_have_attribute(
        "href", "sms:85258"
    )
    check_page(page, "urgent-help")


def test_urgent_self_referral_shows_crisis_contacts_first(page: Page) -> None:
    page.goto("/refer")
    guidance = page.locator("#danger-now-guidance")
    expect(guidance).to_be_hidden()
    choose(page, "Are you safe right now?", "I am in danger now, or I have hurt myself badly")
    # The 999 guidance appears at once, beside the question.
    expect(guidance).to_be_visible()
    expect(guidance).to_contain_text("call 999")
    check_page(page, "refer-form-in-danger")

    fill_self_referral(page, suicidal="Yes, and I feel I might act on these thoughts soon")
    page.get_by_role("button", name="Send my referral").click()

    expect(page).to_have_url(re.compile(r"/refer/confirmation$"))
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_contain_text("Call 999 now if you are in danger")
    crisis = page.locator("#crisis-contacts")
    for number in ("999", "111", "85258", "116 123", "0800 1111", "0800 068 4141"):
        expect(crisis).to_contain_text(number)
    crisis_box = crisis.bounding_box()
    panel_box = page.locator("#referral-sent").bounding_box()
    assert crisis_box and panel_box and crisis_box["y"] < panel_box["y"]
    expect(page.locator("#next-steps")).to_contain_text("Call 999 straight away")
    check_page(page, "refer-confirmation-urgent")


def test_invalid_submission_shows_the_error_summary(page: Page) -> None:
    page.goto("/refer")
    page.get_by_label("First name").fill("Jo")
    page.get_by_label("Postcode (optional)").fill("NOT A POSTCODE")
    choose(
        page, "Have you had thoughts about ending your life?", "Yes, I have had thoughts about it"
    )
    page.get_by_role("button", name="Send my referral").click()

    expect(page).to_have_title(re.compile(r"^Error: Ask for mental health support"))
    summary = page.locator(".nhsuk-error-summary")
    expect(summary).to_be_visible()
    expect(summary).to_be_focused()
    expect(summary).to_contain_text("There is a problem")
    expect(summary.get_by_role("link", name="Enter a last name")).to_be_visible()
    # What was typed and chosen is still there.
    expect(page.get_by_label("First name")).to_have_value("Jo")
    expect(page.get_by_label("Postcode (optional)")).to_have_value("NOT A POSTCODE")
    suicidal = page.get_by_role("group", name="Have you had thoughts about ending your life?")
    expect(suicidal.get_by_label("Yes, I have had thoughts about it")).to_be_checked()
    check_page(page, "refer-errors")

    # Each error links to its field.
    summary.get_by_role("link", name="Enter a full UK postcode, like NR1 3AB").click()
    expect(page.get_by_label("Postcode (optional)")).to_be_focused()
    expect(page.get_by_label("Postcode (optional)")).to_have_attribute(
        "aria-describedby", "postcode-hint postcode-error"
    )


def test_without_javascript_the_form_still_works(browser: Any, live_server: str) -> None:
    # The page's own scripts are blocked rather than JavaScript switched off, so axe-core (run
    # by the test) still works while the page behaves as it does with no script at all.
    context = browser.new_context(base_url=live_server, viewport=DESKTOP)
    context.route(
        lambda url: "/static/" in url and (".js" in url or ".mjs" in url),
        lambda route: route.abort(),
    )
    try:
        page = context.new_page()
        page.goto("/refer")
        # Nothing is hidden: the 999 guidance stands beside the "in danger now" question.
        expect(page.locator("#danger-now-guidance")).to_be_visible()
        check_page(page, "refer-form-no-javascript")
        fill_self_referral(page, self_harm="Yes, I am hurting myself now or today")
        page.get_by_role("button", name="Send my referral").click()
        expect(page).to_have_url(re.compile(r"/refer/confirmation$"))
        expect(page.get_by_role("heading", level=1)).to_contain_text("Get help now")
        expect(page.locator("#next-steps")).to_contain_text("within 4 hours")
    finally:
        context.close()


def test_console_phone_referral(page: Page, live_server: str, staff_token: Any) -> None:
    token = staff_token()
    [nhs] = valid_test_nhs_numbers(1, start=7300)
    known = httpx.post(
        f"{live_server}/v1/referrals",
        json=referral_body(
            nhs=nhs, age=15, person={"given_name": "Robin", "family_name": "Consolebrowser"}
        ),
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert known.status_code == 201, known.text

    page.goto("/console")
    expect(page).to_have_url(re.compile(r"/console/sign-in$"))
    check_page(page, "console-sign-in")
    page.get_by_label("Access token").fill(token)
    page.get_by_role("button", name="Sign in").click()

    expect(page).to_have_url(re.compile(r"/console$"))
    expect(page.get_by_text("Signed in as Casey Caller (call handler)")).to_be_visible()
    check_page(page, "console-search")

    page.get_by_label("NHS number").fill(nhs)
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("heading", name="1 person found")).to_be_visible()
    expect(page.get_by_role("link", name=known.json()["reference"])).to_be_visible()
    check_page(page, "console-search-results")

    page.get_by_role("button", name="Record a phone referral for Robin").click()
    expect(page.get_by_label("NHS number (if known)")).to_have_value(nhs)
    expect(page.get_by_label("Last name")).to_have_value("Consolebrowser")
    check_page(page, "console-referral-form")

    choose(page, "Who is calling?", "Parent or carer")
    choose(page, "What does the caller want?", "Help from the service")
    choose(page, "Self-harm", "None")
    choose(page, "Harm to others", "None")
    choose(page, "Capable support around them?", "No")
    choose(page, "Suicidal thoughts", "Plan")
    # The live preview (the same engine as POST /v1/triage/evaluate) updates as answers change.
    preview = page.locator("#decision-preview")
    expect(preview).to_contain_text("Urgency C")
    expect(preview).to_contain_text("Give the caller the crisis contacts")
    choose(page, "Suicidal thoughts", "Intent")
    expect(preview).to_contain_text("Urgency B")
    expect(preview.locator("#decision-route")).to_contain_text("Crisis")
    check_page(page, "console-referral-preview")

    page.get_by_role("button", name="Submit referral").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Referral recorded")
    reference = page.locator(".app-reference").inner_text().strip()
    assert REFERENCE.fullmatch(reference)
    assert reference != known.json()["reference"]
    expect(page.locator("#decision-urgency")).to_contain_text("Urgency B")
    check_page(page, "console-referral")

    page.get_by_role("link", name="Queues").click()
    # The known person's open case took the new referral, and its urgency moved it to crisis.
    open_in_crisis = page.locator("#queue-crisis .app-open-count")
    expect(open_in_crisis).to_have_text(re.compile(r"^\s*[1-9][0-9]*\s*$"))
    check_page(page, "console-queues")

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/console/sign-in$"))
