"""The reports dashboard in the console, without a browser: its figures are the API's for the
same reader and data, the filters narrow what is counted, a commissioner sees small numbers
suppressed in words (never as a zero bar) and nothing person-level, the CSV download is the
API's CSV, and roles without reports are refused and audited.

The data arrives through the API as in service (``POST /v1/referrals``): ten phone referrals
and three drop-ins today, all routed to the Norwich Community Base (the default postcode of the
referral factory). The browser half (axe-core, screenshots) is
tests/browser/test_reports_dashboard.py.
"""

from __future__ import annotations

import csv
import html
import io
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.config import Settings
from app.models import AuditEvent
from app.security import Role, issue_staff_token
from app.services.reports import ReportScope
from app.web.reports_console import Cell, bar_chart, narrowed
from tests.factories import referral_body

NORWICH = "cb-norwich"
CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')
TAGS = re.compile(r"<[^>]+>")
TABLE = re.compile(r'<table class="nhsuk-table app-report-table" id="([^"]+)">(.*?)</table>', re.S)
ROW = re.compile(r"<tr[^>]*>(.*?)</tr>", re.S)
CELL = re.compile(r"<t[hd][^>]*>(.*?)</t[hd]>", re.S)


def text_of(fragment: str) -> str:
    return html.unescape(" ".join(TAGS.sub(" ", fragment).split()))


def tables(page: str) -> dict[str, list[list[str]]]:
    """Every report table on the page: id -> rows of cell texts (the header row first)."""
    found = {}
    for table_id, body in TABLE.findall(page):
        rows = [[text_of(c) for c in CELL.findall(row)] for row in ROW.findall(body)]
        found[table_id] = rows
    return found


def main_content(page: str) -> str:
    return page.split('id="maincontent"', 1)[1].split("</main>", 1)[0]


def as_number(text: str) -> int | float | None:
    if text.startswith("*"):
        return None
    return float(text.replace(",", "")) if "." in text else int(text.replace(",", ""))


async def signed_in(app: Any, settings: Settings, role: str, queues: list[str] | None = None):
    """An httpx client with the console's sign-in cookie for a new member of staff."""
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
    token = issue_staff_token(
        settings,
        subject=f"reports-{role}-{uuid.uuid4().hex[:6]}",
        role=Role(role),
        queue_ids=queues,
        name=f"Reader {role}",
        now=datetime.now(UTC),
    )
    form = await client.get("/console/sign-in")
    csrf = CSRF_INPUT.search(form.text)
    assert csrf
    signed = await client.post(
        "/console/sign-in", data={"csrf_token": csrf.group(1), "token": token}
    )
    assert signed.status_code == 303, signed.text
    client.headers["x-test-token"] = token  # the same reader's bearer token, for the API
    return client


def bearer(client: httpx.AsyncClient) -> dict[str, str]:
    return {"Authorization": f"Bearer {client.headers['x-test-token']}"}


@pytest.fixture
async def referred(client: httpx.AsyncClient, staff_headers: Any) -> None:
    """Ten phone referrals and three drop-ins, today, to the Norwich Community Base."""
    for index in range(13):
        channel = "phone" if index < 10 else "drop_in"
        body = referral_body(
            channel, person={"given_name": "Rep", "family_name": f"Dashboard{index}"}
        )
        response = await client.post("/v1/referrals", json=body, headers=staff_headers())
        assert response.status_code == 201, response.text
        assert response.json()["case_id"], "every test referral opens a case"


@pytest.fixture
async def reader(app: Any, settings: Settings):
    clients: list[httpx.AsyncClient] = []

    async def make(role: str, queues: list[str] | None = None) -> httpx.AsyncClient:
        client = await signed_in(app, settings, role, queues)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


async def api_rows(client: httpx.AsyncClient, report: str, by: str) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/reports/{report}", params={"by": by}, headers=bearer(client))
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()["rows"]
    return rows


# Figures -------------------------------------------------------------------------------------


async def test_the_referrals_page_shows_the_apis_figures_for_a_team_lead(referred, reader):
    lead = await reader("team_lead", [NORWICH])
    page = await lead.get("/console/reports/referrals", params={"by": "channel"})
    assert page.status_code == 200, page.text
    shown = tables(page.text)
    by_channel = {row[0]: as_number(row[1]) for row in shown["by-channel-table"][1:]}
    api = await api_rows(lead, "referrals", "channel")
    assert by_channel == {
        {"phone": "Phone", "drop_in": "Drop-in"}[row["channel"]]: row["referrals"] for row in api
    }
    assert by_channel == {"Phone": 10, "Drop-in": 3}
    monthly = {row[0]: as_number(row[1]) for row in shown["by-month-table"][1:]}
    api_monthly = await api_rows(lead, "referrals", "month")
    assert list(monthly.values()) == [row["referrals"] for row in api_monthly] == [13]
    # The month-by-channel table: one row (this month), a column per channel.
    pivot = shown["by-month-and-table"]
    assert pivot[0][1:] == ["Drop-in", "Phone"]
    assert [as_number(c) for c in pivot[1][1:]] == [3, 10]
    # Charts drawn on the server, each titled and described, before its table.
    assert page.text.count('<svg class="app-chart__svg"') == 2
    assert '<title id="by-channel-referrals-chart-title">' in page.text
    assert page.text.index("by-channel-referrals-chart") < page.text.index("by-channel-table")
    # A team lead's queue names link to the worklist they may open.
    queue_page = await lead.get("/console/reports/referrals", params={"by": "queue"})
    assert f'href="/console/queues/{NORWICH}"' in queue_page.text


async def test_every_report_page_matches_the_api_for_an_admin(referred, reader):
    admin = await reader("admin")
    waits = await admin.get("/console/reports/waits", params={"by": "channel"})
    assert waits.status_code == 200, waits.text
    rows = tables(waits.text)["waits-by-channel-table"]
    assert rows[0][0] == "Channel"
    api = {row["channel"]: row for row in await api_rows(admin, "waits", "channel")}
    phone = next(row for row in rows if row[0] == "Phone")
    assert as_number(phone[1]) == api["phone"]["referrals"] == 10
    waiting_col = rows[0].index("Still waiting")
    assert as_number(phone[waiting_col]) == api["phone"]["waiting"] == 10
    # No contact yet: a wait is "None yet", never 0 days.
    assert phone[2] == "None yet"

    waiting = await admin.get("/console/reports/waiting-list")
    assert waiting.status_code == 200
    by_queue = tables(waiting.text)["waiting-by-queue-table"]
    api_queue = await api_rows(admin, "waiting-list", "queue")
    assert [as_number(r[1]) for r in by_queue[1:]] == [r["waiting"] for r in api_queue] == [13]
    weeks = tables(waiting.text)["waiting-by-weeks-table"]
    assert weeks[1] == ["Under 1 week", "13"]

    agreement = await admin.get("/console/reports/triage-agreement")
    assert agreement.status_code == 200
    urgency = tables(agreement.text)["agreement-urgency-table"]
    assert urgency[0][-1] == "Not re-graded"
    total = sum(as_number(c) or 0 for row in urgency[1:] for c in row[1:])
    api_agreement = await api_rows(admin, "triage-agreement", "")
    assert total == sum(r["cases"] for r in api_agreement if r["matrix"] == "urgency") == 13

    access = await admin.get("/console/reports/access")
    assert access.status_code == 200
    assert "No attended contacts in this period." in access.text


# Filters -------------------------------------------------------------------------------------


async def test_a_period_with_nothing_says_so(referred, reader, clock):
    admin = await reader("admin")
    last_year = (clock.now() - timedelta(days=400)).date()
    page = await admin.get(
        "/console/reports/referrals",
        params={"from": (last_year - timedelta(days=30)).isoformat(), "to": last_year.isoformat()},
    )
    assert page.status_code == 200
    assert "No referrals in this period." in page.text
    assert "<svg" not in main_content(page.text)


async def test_the_queue_filter_narrows_and_a_lead_picks_only_their_queues(referred, reader):
    admin = await reader("admin")
    other = await admin.get("/console/reports/referrals", params={"queue": "cb-lowestoft"})
    assert "No referrals in this period." in other.text
    mine = await admin.get("/console/reports/referrals", params={"queue": NORWICH})
    assert tables(mine.text)["by-month-table"][1][1] == "13"

    lead = await reader("team_lead", ["cb-lowestoft"])
    page = await lead.get("/console/reports/referrals")
    assert 'value="cb-lowestoft"' in page.text
    assert f'value="{NORWICH}"' not in page.text  # not theirs: not offered
    assert "Your queues only:" in page.text
    assert "No referrals in this period." in page.text  # the Norwich referrals are not theirs
    refused = await lead.get("/console/reports/referrals", params={"queue": NORWICH})
    assert refused.status_code == 422
    assert "Choose a queue from the list" in refused.text


def test_narrowing_a_scope_never_widens_it() -> None:
    lead = ReportScope(queue_ids=frozenset({"cb-lowestoft"}))
    assert narrowed(lead, NORWICH).queue_ids == frozenset()
    assert narrowed(lead, "cb-lowestoft").queue_ids == frozenset({"cb-lowestoft"})
    assert narrowed(ReportScope(), NORWICH).queue_ids == frozenset({NORWICH})
    commissioner = ReportScope(suppress_below=8, round_to=5)
    assert narrowed(commissioner, NORWICH).suppress_below == 8


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"from": "2026-02-30"}, "Enter the start date as a real date"),
        ({"to": "yesterday"}, "Enter the end date as a real date"),
        ({"from": "2026-03-01", "to": "2026-02-01"}, "must be on or before the end date"),
        ({"by": "nhs_number"}, "Choose a grouping from the list"),
        ({"from": "9" * 200}, "Enter the start date as a date"),
    ],
)
async def test_bad_filters_are_shown_on_the_form(reader, params, message):
    admin = await reader("admin")
    page = await admin.get("/console/reports/referrals", params=params)
    assert page.status_code == 422
    assert "There is a problem" in page.text
    assert message in page.text
    assert "9" * 200 not in page.text  # never echoed at length


async def test_the_grouping_changes_the_table(referred, reader):
    admin = await reader("admin")
    page = await admin.get("/console/reports/referrals", params={"by": "urgency"})
    rows = tables(page.text)["by-urgency-table"]
    api = await api_rows(admin, "referrals", "urgency")
    assert [(r[0], as_number(r[1])) for r in rows[1:]] == [
        (f"Urgency {row['urgency']}", row["referrals"]) for row in api
    ]


# Commissioners -------------------------------------------------------------------------------


async def test_a_commissioner_sees_small_numbers_suppressed_and_nothing_person_level(
    referred, reader
):
    commissioner = await reader("commissioner")
    page = await commissioner.get("/console/reports/referrals", params={"by": "channel"})
    assert page.status_code == 200, page.text
    rows = {row[0]: row[1] for row in tables(page.text)["by-channel-table"][1:]}
    assert rows == {"Drop-in": "* fewer than 8", "Phone": "10"}
    api = {row["channel"]: row for row in await api_rows(commissioner, "referrals", "channel")}
    assert api["drop_in"]["referrals"] is None and api["drop_in"]["suppressed"] is True
    assert api["phone"]["referrals"] == 10
    # The chart gives the suppressed bar no length: words instead, never a zero-width bar.
    chart = page.text.split('id="by-channel-referrals-chart"', 1)[1].split("</figure>", 1)[0]
    assert "fewer than 8 (suppressed)" in chart
    assert 'width="0.0%"' not in chart and 'width="0%"' not in chart
    assert "counts from 1 to 7 are not shown" in text_of(page.text)
    # Nothing that leads to a person, a referral, a case or a worklist.
    content = main_content(page.text)
    for person_level in ("/console/cases", "/console/referrals", "/console/queues", "/v1/"):
        assert person_level not in content
    queue_page = await commissioner.get("/console/reports/referrals", params={"by": "queue"})
    assert "/console/queues/" not in main_content(queue_page.text)
    # Their menu is the reports alone, and the rest of the console sends them back there.
    assert 'href="/console/queues"' not in page.text
    home = await commissioner.get("/console", follow_redirects=False)
    assert home.status_code == 303 and home.headers["location"] == "/console/reports"
    case_page = await commissioner.get(f"/console/cases/{uuid.uuid4()}", follow_redirects=False)
    assert case_page.headers["location"] == "/console/reports"


async def test_a_commissioner_signs_in_to_the_reports(app, settings):
    client = await signed_in(app, settings, "commissioner")
    try:
        form = await client.get("/console/sign-in")
        csrf = CSRF_INPUT.search(form.text)
        assert csrf
        signed = await client.post(
            "/console/sign-in",
            data={"csrf_token": csrf.group(1), "token": client.headers["x-test-token"]},
        )
        assert signed.headers["location"] == "/console/reports"
    finally:
        await client.aclose()


async def test_the_csv_download_is_the_apis_csv(referred, reader):
    commissioner = await reader("commissioner")
    page = await commissioner.get("/console/reports/referrals", params={"by": "channel"})
    link = re.search(r'href="(/console/reports/referrals\.csv\?[^"]*by=channel)"', page.text)
    assert link, "the table offers its CSV"
    download = await commissioner.get(html.unescape(link.group(1)))
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("text/csv")
    api = await commissioner.get(
        "/v1/reports/referrals",
        params={"by": "channel"},
        headers={**bearer(commissioner), "Accept": "text/csv"},
    )
    assert download.text == api.text
    assert list(csv.reader(io.StringIO(download.text))) == [
        ["channel", "referrals"],
        ["drop_in", "*"],
        ["phone", "10"],
    ]
    bad = await commissioner.get("/console/reports/referrals.csv", params={"by": "nhs_number"})
    assert bad.status_code == 422


# Refusals ------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["practitioner", "call_handler", "duty_clinician"])
async def test_roles_without_reports_are_refused_and_audited(reader, session, role):
    worker = await reader(role)
    page = await worker.get("/console/reports/waits")
    assert page.status_code == 403
    assert "Reports are for team leads, commissioners and admins." in page.text
    download = await worker.get("/console/reports/waits.csv")
    assert download.status_code == 403
    assert 'href="/console/reports"' not in page.text  # not in their menu either
    refusals = (
        await session.scalars(
            select(AuditEvent).where(
                AuditEvent.resource_type == "report", AuditEvent.outcome == "denied"
            )
        )
    ).all()
    assert len(refusals) == 2


async def test_each_read_is_audited_without_personal_data(referred, reader, session):
    admin = await reader("admin")
    await admin.get("/console/reports/referrals", params={"by": "channel"})
    reads = (
        await session.scalars(
            select(AuditEvent).where(
                AuditEvent.resource_type == "report", AuditEvent.outcome != "denied"
            )
        )
    ).all()
    # The page reads three groupings: by month, by channel, by both.
    assert sorted(tuple(e.details["by"]) for e in reads) == [
        ("channel",),
        ("month",),
        ("month", "channel"),
    ]
    assert all("Dashboard" not in str(e.details) for e in reads)


async def test_an_unknown_report_is_not_found(reader):
    admin = await reader("admin")
    assert (await admin.get("/console/reports/people")).status_code == 404
    assert (await admin.get("/console/reports/people.csv")).status_code == 404


async def test_signed_out_readers_are_sent_to_sign_in(client):
    response = await client.get("/console/reports/referrals", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/console/sign-in")


# The chart ------------------------------------------------------------------------------------


def test_a_chart_scales_to_the_largest_shown_value_and_never_draws_a_suppressed_bar() -> None:
    chart = bar_chart(
        "c",
        "Referrals",
        [
            ("Phone", Cell(40, False, "40")),
            ("Drop-in", Cell(None, True, "fewer than 8")),
            ("Web", Cell(20, False, "20")),
            ("None", Cell(0, False, "0")),
        ],
        "referrals",
    )
    widths = [bar.width for bar in chart.bars]
    assert widths[0] == 72.0 and widths[2] == 36.0 and widths[3] == 0.0
    assert chart.bars[1].cell.value is None and chart.bars[1].cell.suppressed
    assert "1 suppressed, drawn without a bar" in chart.desc
    assert "the largest is 40" in chart.desc
