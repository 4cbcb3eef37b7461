"""The reports dashboard in a real browser: a team lead and a commissioner through every report
page, the filters as a shareable GET form, and a suppressed figure visibly suppressed.

Every page is checked with axe-core (WCAG 2.2 AA) and photographed at phone and desktop widths
(``check_page``, into ``artifacts/screenshots/``); at 320 px the page must not scroll sideways.
The figures themselves are compared with the API in tests/test_reports_dashboard.py.
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

try:
    from playwright.sync_api import Page, expect
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
except ImportError:  # reported by the browser_requirements fixture: skipped locally, fails in CI
    if os.environ.get("CI", "").lower() == "true":
        raise
    pytest.skip("the playwright Python package is not installed", allow_module_level=True)

from app.config import Settings
from app.security import Role, issue_staff_token
from tests.browser.conftest import DESKTOP, SCREENSHOTS, check_page
from tests.factories import referral_body

pytestmark = pytest.mark.usefixtures("browser_requirements")

NARROW = {"width": 320, "height": 700}


def _token(settings: Settings, role: str, queues: list[str] | None, name: str) -> str:
    return issue_staff_token(
        settings,
        subject=f"browser-{role}-{uuid.uuid4().hex[:6]}",
        role=Role(role),
        queue_ids=queues,
        name=name,
        now=datetime.now(UTC),
    )


def _sign_in(page: Page, token: str, lands_on: str) -> None:
    page.goto("/console/sign-in")
    page.get_by_label("Access token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(lands_on))


@pytest.fixture(scope="module")
def referred(live_server: str, staff_token: Any) -> None:
    """Ten phone referrals and three drop-ins to the Norwich Community Base, today."""
    for index in range(13):
        channel = "phone" if index < 10 else "drop_in"
        response = httpx.post(
            f"{live_server}/v1/referrals",
            json=referral_body(
                channel, person={"given_name": "Bree", "family_name": f"Reportsbrowser{index}"}
            ),
            headers={"Authorization": f"Bearer {staff_token()}"},
            timeout=10,
        )
        assert response.status_code == 201, response.text


def _no_sideways_scroll(page: Page, name: str) -> None:
    page.set_viewport_size(NARROW)  # type: ignore[arg-type]
    # The NHS header's script re-lays its menu after a resize: give it a moment to settle.
    with contextlib.suppress(PlaywrightTimeout):  # measured and reported below
        page.wait_for_function(
            f"() => document.documentElement.scrollWidth <= {NARROW['width']}", timeout=3000
        )
    width = page.evaluate("() => document.documentElement.scrollWidth")
    page.screenshot(path=str(SCREENSHOTS / f"{name}-320.png"), full_page=True)
    page.set_viewport_size(DESKTOP)
    assert width <= NARROW["width"], f"{name} scrolls sideways at 320 px ({width} px wide)"


def test_team_lead_reads_every_report_and_filters(
    page: Page, live_server: str, server_settings: Settings, referred: None
) -> None:
    _sign_in(page, _token(server_settings, "team_lead", ["cb-norwich"], "Lee Lead"), r"/console$")
    page.get_by_role("link", name="Reports", exact=True).click()
    expect(page).to_have_url(re.compile(r"/console/reports/referrals$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Referrals")
    expect(page.locator("#by-channel-table")).to_contain_text("Phone")
    expect(page.get_by_role("img", name=re.compile("Referrals by channel"))).to_be_visible()
    check_page(page, "reports-referrals")
    _no_sideways_scroll(page, "reports-referrals")

    # The filters are a GET form: the URL carries them, so it can be shared.
    page.get_by_label("Group by").select_option("urgency")
    page.get_by_role("button", name="Show the report").click()
    expect(page).to_have_url(re.compile(r"by=urgency"))
    expect(page.locator("#by-urgency-table")).to_contain_text("Urgency")

    page.get_by_label("From (first day)").fill("2020-01-01")
    page.get_by_label("To (last day)").fill("2020-12-31")
    page.get_by_role("button", name="Show the report").click()
    expect(page.locator("#no-data")).to_contain_text("No referrals in this period.")
    check_page(page, "reports-referrals-empty")

    page.get_by_label("From (first day)").fill("2026-03-01")
    page.get_by_label("To (last day)").fill("2026-02-01")
    page.get_by_role("button", name="Show the report").click()
    expect(page.locator(".nhsuk-error-summary")).to_contain_text("on or before the end date")
    check_page(page, "reports-referrals-errors")

    for slug, heading, table in (
        ("waits", "Waits and breaches", "#waits-by-queue-table"),
        ("waiting-list", "Waiting list", "#waiting-by-weeks-table"),
        ("triage-agreement", "Triage agreement", "#agreement-urgency-table"),
        ("access", "Access", "#access-by-total-table"),
    ):
        page.get_by_role("navigation", name="Reports").get_by_role("link", name=heading).click()
        expect(page.get_by_role("heading", level=1)).to_have_text(heading)
        if slug != "access":  # no contacts yet: the access page says so instead
            expect(page.locator(table)).to_be_visible()
        check_page(page, f"reports-{slug}")
        _no_sideways_scroll(page, f"reports-{slug}")


def test_commissioner_sees_suppressed_figures_and_only_the_reports(
    page: Page, live_server: str, server_settings: Settings, referred: None
) -> None:
    _sign_in(
        page,
        _token(server_settings, "commissioner", None, "Cam Commissioner"),
        r"/console/reports/referrals$",
    )
    expect(page.locator("#disclosure-control")).to_contain_text("counts from 1 to 7")
    menu = page.get_by_role("navigation", name="Menu")
    expect(menu.get_by_role("link")).to_have_count(1)
    expect(menu.get_by_role("link", name="Reports")).to_be_visible()
    drop_in = page.locator("#by-channel-table tr", has_text="Drop-in")
    expect(drop_in).to_contain_text("fewer than 8")
    chart = page.locator("#by-channel-referrals-chart")
    expect(chart).to_contain_text("fewer than 8 (suppressed)")
    check_page(page, "reports-commissioner")
    _no_sideways_scroll(page, "reports-commissioner")
    page.locator("#by-channel-referrals-chart").screenshot(
        path=str(SCREENSHOTS / "reports-commissioner-close-up-chart-1280.png")
    )
    # Anywhere else in the console sends them back to the reports.
    page.goto("/console/queues")
    expect(page).to_have_url(re.compile(r"/console/reports/referrals$"))
