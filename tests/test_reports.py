"""Reports: known data in, known figures out, on SQLite and PostgreSQL alike.

The fixture ``known`` writes a small, fully chosen world straight into the database (intake
itself is exercised elsewhere; one test below checks intake writes the reporting columns):

- 10 phone referrals on Monday 2025-03-03, age 15, cb-norwich, urgency E (28-day window),
  first attended contact after 1..10 days; the first five also a second after 3, 5, 7, 9, 11
  days. First-contact median 5.5 days, 90th percentile 9.1; second: 7.0 and 10.2.
- 3 web referrals on Monday 2025-03-10, cb-norwich, urgency D (3-day window): first contact
  after 2 days (age 19), after 5 days (age 17: breached), never (age 17: breached, waiting).
- 4 system referrals on Monday 2025-04-07, age 9, cb-lowestoft, urgency E, never contacted.
- 1 drop-in referral 2025-04-08, signposted (no case); 1 phone referral 2025-04-09 joining the
  first phone case.

Every expected figure below is worked out by hand from that list.
"""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from app.config import Settings
from app.models import (
    AuditEvent,
    Case,
    CaseContact,
    CaseUrgencyChange,
    Person,
    Referral,
    TriageDecision,
)
from app.services import reports
from app.services.reports import ReportName, ReportQuery, ReportScope, parse_query, run_report

MARCH_3 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
MARCH_10 = datetime(2025, 3, 10, 10, 0, tzinfo=UTC)
APRIL_7 = datetime(2025, 4, 7, 10, 0, tzinfo=UTC)
APRIL_8 = datetime(2025, 4, 8, 11, 0, tzinfo=UTC)
APRIL_9 = datetime(2025, 4, 9, 12, 0, tzinfo=UTC)
REPORT_NOW = datetime(2025, 5, 12, tzinfo=UTC)
PERIOD = {"from": "2025-03-01", "to": "2025-04-30"}
ALL = ReportScope()
COMMISSIONER = ReportScope(suppress_below=8, round_to=5)
THRIVE = {"E": "getting_help", "D": "getting_more_help"}
WINDOW_HOURS = {"E": 672, "D": 72}


def _migration(name: str) -> Any:
    """A migration module by file name, to run its back-fill statements in a test."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[1] / "migrations" / "versions" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"migration_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _locality(queue: str | None) -> str:
    return "norwich" if queue == "cb-norwich" else "lowestoft"


class World:
    def __init__(self, session: Any, ruleset_version: str) -> None:
        self.session = session
        self.ruleset_version = ruleset_version
        self.counter = 0
        self.cases: list[Case] = []

    async def referral(
        self,
        *,
        received_at: datetime,
        channel: str,
        age: int,
        queue: str | None,
        urgency: str = "E",
        first_after_days: float | None = None,
        second_after_days: float | None = None,
        status: str | None = None,
        join: Case | None = None,
        signposted: bool = False,
    ) -> Case | None:
        self.counter += 1
        session = self.session
        respond_by = received_at + timedelta(hours=WINDOW_HOURS[urgency])
        case: Case | None = join
        if join is not None:
            person_id = join.person_id
        else:
            person = Person(created_at=received_at, updated_at=received_at)
            session.add(person)
            await session.flush()
            person_id = person.id
        if case is None and not signposted:
            assert queue is not None
            first = received_at + timedelta(days=first_after_days) if first_after_days else None
            second = received_at + timedelta(days=second_after_days) if second_after_days else None
            status = status or ("active" if second else "contacted" if first else "waiting")
            case = Case(
                person_id=person_id,
                queue_id=queue,
                status=status,
                urgency_code=urgency,
                opening_urgency_code=urgency,
                urgency_rank=4 if urgency == "E" else 3,
                received_at=received_at,
                respond_by_at=respond_by,
                first_contact_at=first,
                second_contact_at=second,
                key_worker_id=None if status == "waiting" else "user-worker",
                allocated_at=None if status == "waiting" else received_at,
                thrive_grouping_proposed=THRIVE[urgency],
                last_contact_at=second or first,
                # As on the opening referral below (intake copies them when a case opens).
                age_years=age,
                locality_id=_locality(queue),
                closed_at=(second or first or received_at) + timedelta(days=1)
                if status == "closed"
                else None,
                outcome="returned_to_thriving" if status == "closed" else None,
                version=1,
                created_at=received_at,
                updated_at=received_at,
            )
            session.add(case)
            await session.flush()
            self.cases.append(case)
            for at, whom in ((first, "young_person"), (second, "parent_carer")):
                if at is not None:
                    session.add(
                        CaseContact(
                            case_id=case.id,
                            occurred_at=at,
                            mechanism="telephone",
                            attendance="attended",
                            with_whom=whom,
                            recorded_by_id="user-worker",
                            recorded_at=at,
                        )
                    )
        referral = Referral(
            reference=f"FD-TEST-{self.counter:04d}",
            person_id=person_id,
            case_id=None if signposted else case.id if case else None,
            channel=channel,
            referrer_type="gp" if channel == "system" else "parent_carer",
            request="help",
            received_at=received_at,
            disposition="signposted"
            if signposted
            else "joined_case"
            if join is not None
            else "case_opened",
            submitted_by_kind="staff",
            raw_payload={},
            normalised={},
            age_years=age,
            locality_id=_locality(queue),
            source_of_referral_code="A1" if channel == "system" else "B1",
            eligibility_rule="AGE_IN_SCOPE",
            created_at=received_at,
        )
        session.add(referral)
        await session.flush()
        session.add(
            TriageDecision(
                referral_id=referral.id,
                ruleset_version=self.ruleset_version,
                input_snapshot={},
                output={},
                eligibility_outcome="ineligible" if signposted else "eligible",
                urgency_code=urgency,
                thrive_grouping=THRIVE[urgency],
                route_kind="signpost" if signposted else "community_base",
                queue_id=None if signposted else queue,
                respond_by_at=respond_by,
                decided_at=received_at,
            )
        )
        await session.flush()
        return case


@pytest.fixture
async def known(app: Any, session: Any) -> World:
    world = World(session, app.state.ruleset.version)
    for i in range(10):
        await world.referral(
            received_at=MARCH_3 + timedelta(minutes=i),
            channel="phone",
            age=15,
            queue="cb-norwich",
            first_after_days=i + 1,
            second_after_days=(3, 5, 7, 9, 11)[i] if i < 5 else None,
            status="closed" if i == 9 else None,
        )
    for first, age in ((2, 19), (5, 17), (None, 17)):
        await world.referral(
            received_at=MARCH_10,
            channel="web",
            age=age,
            queue="cb-norwich",
            urgency="D",
            first_after_days=first,
        )
    for i in range(4):
        await world.referral(
            received_at=APRIL_7 + timedelta(minutes=i),
            channel="system",
            age=9,
            queue="cb-lowestoft",
        )
    await world.referral(
        received_at=APRIL_8, channel="drop_in", age=16, queue=None, signposted=True
    )
    await world.referral(
        received_at=APRIL_9, channel="phone", age=15, queue="cb-norwich", join=world.cases[0]
    )
    # Re-grades: the first phone case E -> D; the second E -> C, then C -> D (latest: D).
    first, second = world.cases[0], world.cases[1]
    for case_row, steps in ((first, ["D"]), (second, ["C", "D"])):
        code = "E"
        for n, to_code in enumerate(steps):
            session.add(
                CaseUrgencyChange(
                    case_id=case_row.id,
                    source="regrade",
                    engine_code="E",
                    from_code=code,
                    to_code=to_code,
                    from_queue_id="cb-norwich",
                    to_queue_id="cb-norwich",
                    changed_by_id="user-worker",
                    changed_by_role="practitioner",
                    changed_at=MARCH_3 + timedelta(days=1 + n),
                )
            )
            code = to_code
    # THRIVE decided with the young person on three phone cases: two agree, one more help.
    for case_row, decided in zip(
        world.cases[:3], ["getting_help", "getting_help", "getting_more_help"], strict=True
    ):
        case_row.thrive_grouping = decided
        case_row.thrive_decided_by = "user-worker"
        case_row.thrive_decided_at = MARCH_3 + timedelta(days=2)
        case_row.version += 1
    # A did-not-attend contact counts for nothing.
    session.add(
        CaseContact(
            case_id=world.cases[12].id,
            occurred_at=MARCH_10 + timedelta(days=1),
            mechanism="telephone",
            attendance="did_not_attend",
            with_whom="young_person",
            recorded_by_id="user-worker",
            recorded_at=MARCH_10 + timedelta(days=1),
        )
    )
    await session.commit()
    return world


def _query(name: ReportName, by: str | None, start: str = "2025-03-01", end: str = "2025-04-30"):
    return parse_query(
        name, date.fromisoformat(start), date.fromisoformat(end), by, today=REPORT_NOW.date()
    )


async def _rows(session, name, by, scope=ALL, **dates) -> list[dict[str, Any]]:
    result = await run_report(session, name, _query(name, by, **dates), scope, now=REPORT_NOW)
    return reports.public_rows(result)


# Referral counts ------------------------------------------------------------------------------


async def test_referrals_by_month_and_channel(session, known):
    assert await _rows(session, ReportName.REFERRALS, "month,channel") == [
        {"month": "2025-03", "channel": "phone", "referrals": 10, "suppressed": False},
        {"month": "2025-03", "channel": "web", "referrals": 3, "suppressed": False},
        {"month": "2025-04", "channel": "drop_in", "referrals": 1, "suppressed": False},
        {"month": "2025-04", "channel": "phone", "referrals": 1, "suppressed": False},
        {"month": "2025-04", "channel": "system", "referrals": 4, "suppressed": False},
    ]


async def test_referrals_by_week_queue_and_age_band(session, known):
    rows = await _rows(session, ReportName.REFERRALS, "week,queue,age_band")
    assert rows == [
        {
            "week": "2025-03-03",
            "queue": "cb-norwich",
            "age_band": "11-15",
            "referrals": 10,
            "suppressed": False,
        },
        {
            "week": "2025-03-10",
            "queue": "cb-norwich",
            "age_band": "16-17",
            "referrals": 2,
            "suppressed": False,
        },
        {
            "week": "2025-03-10",
            "queue": "cb-norwich",
            "age_band": "18-25",
            "referrals": 1,
            "suppressed": False,
        },
        {
            "week": "2025-04-07",
            "queue": "cb-lowestoft",
            "age_band": "5-10",
            "referrals": 4,
            "suppressed": False,
        },
        # The signposted drop-in was routed to no queue (null sorts last).
        {
            "week": "2025-04-07",
            "queue": "cb-norwich",
            "age_band": "11-15",
            "referrals": 1,
            "suppressed": False,
        },
        {
            "week": "2025-04-07",
            "queue": None,
            "age_band": "16-17",
            "referrals": 1,
            "suppressed": False,
        },
    ]


async def test_the_period_is_inclusive_of_both_days_and_nothing_else(session, known):
    march = await _rows(session, ReportName.REFERRALS, "", start="2025-03-03", end="2025-03-10")
    assert march == [{"referrals": 13, "suppressed": False}]
    # 2025-03-04 .. 2025-03-09 holds nothing: one row of totals, zero.
    empty = await _rows(session, ReportName.REFERRALS, "", start="2025-03-04", end="2025-03-09")
    assert empty == [{"referrals": 0, "suppressed": False}]


async def test_referrals_by_decision_and_coded_dimensions(session, known):
    rows = await _rows(
        session, ReportName.REFERRALS, "eligibility_outcome,route_kind,source_of_referral"
    )
    assert [
        (r["eligibility_outcome"], r["route_kind"], r["source_of_referral"], r["referrals"])
        for r in rows
    ] == [
        ("eligible", "community_base", "A1", 4),
        ("eligible", "community_base", "B1", 14),
        ("ineligible", "signpost", "B1", 1),
    ]


# Waits ----------------------------------------------------------------------------------------


async def test_waits_medians_percentiles_breaches_and_waiting(session, known):
    assert await _rows(session, ReportName.WAITS, "channel") == [
        {
            "channel": "phone",
            "referrals": 10,  # the joining referral starts no clock of its own
            "first_contact_median_days": 5.5,
            "first_contact_p90_days": 9.1,
            "second_contact_median_days": 7.0,
            "second_contact_p90_days": 10.2,
            "breached": 0,
            "waiting": 0,
            "suppressed": False,
        },
        {
            "channel": "system",
            "referrals": 4,
            "first_contact_median_days": None,
            "first_contact_p90_days": None,
            "second_contact_median_days": None,
            "second_contact_p90_days": None,
            "breached": 4,  # 28 days passed by 2025-05-12 with no contact
            "waiting": 4,
            "suppressed": False,
        },
        {
            "channel": "web",
            "referrals": 3,
            "first_contact_median_days": 3.5,
            "first_contact_p90_days": 4.7,
            "second_contact_median_days": None,
            "second_contact_p90_days": None,
            "breached": 2,
            "waiting": 1,
            "suppressed": False,
        },
    ]


async def test_waits_with_no_dimension_is_one_row_over_every_case(session, known):
    (row,) = await _rows(session, ReportName.WAITS, "")
    # First waits 1..10 (phone) and 2, 5 (web): 12 values, sorted
    # 1 2 2 3 4 5 5 6 7 8 9 10 -> median (5 + 5) / 2; p90: h = 11 * 0.9 = 9.9, so the 10th
    # value (8) plus 0.9 of the step to the 11th (9).
    assert row["referrals"] == 17
    assert row["first_contact_median_days"] == 5.0
    assert row["first_contact_p90_days"] == 8.9
    assert (row["breached"], row["waiting"]) == (6, 5)


async def test_a_breach_is_judged_at_now_for_an_open_case(session, known):
    before_deadline = datetime(2025, 4, 10, tzinfo=UTC)  # the system cases' 28 days not yet up
    result = await run_report(
        session, ReportName.WAITS, _query(ReportName.WAITS, "channel"), ALL, now=before_deadline
    )
    system = next(r for r in result.rows if r["channel"] == "system")
    assert (system["breached"], system["waiting"]) == (0, 4)


# Waiting list ---------------------------------------------------------------------------------


async def test_waiting_list_by_queue_age_band_and_weeks(session, known):
    name = ReportName.WAITING_LIST
    query = parse_query(name, None, None, None, today=REPORT_NOW.date())
    assert query.start is None and query.by == ("queue", "age_band", "weeks_waiting")
    result = await run_report(session, name, query, ALL, now=REPORT_NOW)
    assert reports.public_rows(result) == [
        # 2025-04-07 10:00 to 2025-05-12: 34.6 days, 4 whole weeks.
        {
            "queue": "cb-lowestoft",
            "age_band": "5-10",
            "weeks_waiting": 4,
            "waiting": 4,
            "suppressed": False,
        },
        # 2025-03-10 10:00 to 2025-05-12: 62.6 days, 8 whole weeks.
        {
            "queue": "cb-norwich",
            "age_band": "16-17",
            "weeks_waiting": 8,
            "waiting": 1,
            "suppressed": False,
        },
    ]


# Triage agreement ------------------------------------------------------------------------------


async def test_triage_agreement_matrices(session, known):
    rows = await _rows(session, ReportName.TRIAGE_AGREEMENT, None)
    assert [(r["matrix"], r["proposed"], r["decided"], r["cases"]) for r in rows] == [
        # THRIVE: proposed getting_help (phone, system), getting_more_help (web, urgency D).
        ("thrive", "getting_help", "getting_help", 2),
        ("thrive", "getting_help", "getting_more_help", 1),
        ("thrive", "getting_help", None, 11),
        ("thrive", "getting_more_help", None, 3),
        # Urgency: the engine's E re-graded to D twice (the latest re-grade counts).
        ("urgency", "D", None, 3),
        ("urgency", "E", "D", 2),
        ("urgency", "E", None, 12),
    ]


# CYP access -----------------------------------------------------------------------------------


async def test_access_one_and_two_contacts_under_18(session, known):
    # One contact: 10 phone young people (15) and the web young person of 17 contacted; the
    # web referral of someone aged 19 is not counted; a did-not-attend is not a contact.
    # Two contacts: the five phone cases with a second attended contact (with a parent).
    assert await _rows(session, ReportName.ACCESS, None) == [
        {"one_contact": 11, "two_contacts": 5, "suppressed": False}
    ]
    by_channel = await _rows(session, ReportName.ACCESS, "channel")
    assert by_channel == [
        {"channel": "phone", "one_contact": 10, "two_contacts": 5, "suppressed": False},
        {"channel": "web", "one_contact": 1, "two_contacts": 0, "suppressed": False},
    ]


async def test_access_counts_contacts_in_the_period(session, known):
    # 2025-03-01 .. 2025-03-05: first contacts after 1 and 2 days of 2025-03-03 only.
    rows = await _rows(session, ReportName.ACCESS, "", start="2025-03-01", end="2025-03-05")
    assert rows == [{"one_contact": 2, "two_contacts": 0, "suppressed": False}]


async def test_access_a_case_with_contacts_either_side_of_the_period(session, known):
    """A case whose first attended contact is before the period and latest after it counts
    only if one of its contacts is in the period (looked up in its contact records)."""
    from app.services.cases import _count_contact

    # 2025-03-06 .. 2025-03-07: phone case 0 (second contact on the 6th), 2 and 3 (first on
    # the 6th and 7th); case 1's contacts are on the 5th and the 8th, either side.
    period = {"start": "2025-03-06", "end": "2025-03-07"}
    rows = await _rows(session, ReportName.ACCESS, "", **period)
    assert rows == [{"one_contact": 3, "two_contacts": 1, "suppressed": False}]
    case_1 = known.cases[1]
    assert case_1.first_contact_at is not None and case_1.last_contact_at is not None
    assert case_1.first_contact_at.day == 5 and case_1.last_contact_at.day == 8
    # An attended contact on the 7th, recorded late: neither its first nor its latest.
    at = datetime(2025, 3, 7, 12, 0, tzinfo=UTC)
    contact = CaseContact(
        case_id=case_1.id,
        occurred_at=at,
        mechanism="telephone",
        attendance="attended",
        with_whom="young_person",
        recorded_by_id="user-worker",
        recorded_at=REPORT_NOW,
    )
    session.add(contact)
    _count_contact(case_1, contact)
    case_1.version += 1
    await session.commit()
    assert case_1.last_contact_at.day == 8 and case_1.second_contact_at == at
    rows = await _rows(session, ReportName.ACCESS, "", **period)
    assert rows == [{"one_contact": 4, "two_contacts": 2, "suppressed": False}]


# Scope and disclosure control -------------------------------------------------------------------


async def test_team_lead_sees_only_their_queues(session, known):
    lowestoft = ReportScope(queue_ids=frozenset({"cb-lowestoft"}))
    assert await _rows(session, ReportName.REFERRALS, "month", lowestoft) == [
        {"month": "2025-04", "referrals": 4, "suppressed": False}
    ]
    waits = await _rows(session, ReportName.WAITS, "queue", lowestoft)
    assert [(r["queue"], r["referrals"]) for r in waits] == [("cb-lowestoft", 4)]
    nothing = ReportScope(queue_ids=frozenset())
    assert await _rows(session, ReportName.REFERRALS, "month", nothing) == []


async def test_commissioner_small_numbers_suppressed_and_others_rounded(session, known):
    assert await _rows(session, ReportName.REFERRALS, "month,channel", COMMISSIONER) == [
        {"month": "2025-03", "channel": "phone", "referrals": 10, "suppressed": False},
        {"month": "2025-03", "channel": "web", "referrals": None, "suppressed": True},
        {"month": "2025-04", "channel": "drop_in", "referrals": None, "suppressed": True},
        {"month": "2025-04", "channel": "phone", "referrals": None, "suppressed": True},
        {"month": "2025-04", "channel": "system", "referrals": None, "suppressed": True},
    ]
    # 13 rounds to 15 (so March minus phone cannot give web's 3); April's 6 is suppressed.
    assert await _rows(session, ReportName.REFERRALS, "month", COMMISSIONER) == [
        {"month": "2025-03", "referrals": 15, "suppressed": False},
        {"month": "2025-04", "referrals": None, "suppressed": True},
    ]


async def test_commissioner_waits_over_few_people_are_suppressed(session, known):
    phone, system, web = await _rows(session, ReportName.WAITS, "channel", COMMISSIONER)
    # Ten first waits are enough to show; five second waits are not; zero stays zero.
    assert phone == {
        "channel": "phone",
        "referrals": 10,
        "first_contact_median_days": 5.5,
        "first_contact_p90_days": 9.1,
        "second_contact_median_days": None,
        "second_contact_p90_days": None,
        "breached": 0,
        "waiting": 0,
        "suppressed": True,
    }
    # No contacts at all: nothing to measure, which discloses nothing (null, not suppressed).
    assert system["referrals"] is None and system["first_contact_median_days"] is None
    assert web["first_contact_median_days"] is None and web["suppressed"] is True


def test_rows_order_numbers_as_numbers_and_unknown_last():
    groups = [{"weeks_waiting": None}, {"weeks_waiting": 10}, {"weeks_waiting": 4}]
    ordered = sorted(groups, key=lambda g: reports._sort_key(g, ["weeks_waiting"]))
    assert [g["weeks_waiting"] for g in ordered] == [4, 10, None]


def test_rounding_is_to_the_nearest_five_halves_up():
    assert [reports._round_count(n, 5) for n in (8, 10, 12, 13, 17, 18, 1002)] == [
        10,
        10,
        10,
        15,
        15,
        20,
        1000,
    ]


# Parameters -------------------------------------------------------------------------------------


def test_default_period_is_twelve_months_to_today():
    query = parse_query(ReportName.REFERRALS, None, None, None, today=date(2026, 12, 2))
    assert (query.start, query.end, query.by) == (date(2025, 12, 3), date(2026, 12, 2), ("month",))
    leap = parse_query(ReportName.WAITS, None, date(2028, 2, 29), "", today=date(2028, 3, 1))
    assert (leap.start, leap.by) == (date(2027, 3, 1), ())


# The API ----------------------------------------------------------------------------------------


async def test_api_json_for_a_team_lead(client, staff_headers, known):
    headers = staff_headers("team_lead", queues=["cb-norwich"])
    response = await client.get(
        "/v1/reports/referrals", params={**PERIOD, "by": "month,channel"}, headers=headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["report"] == "referrals" and body["from"] == "2025-03-01"
    assert body["to"] == "2025-04-30" and body["by"] == ["month", "channel"]
    assert body["disclosure_control"] is None
    assert body["rows"] == [
        {"month": "2025-03", "channel": "phone", "referrals": 10, "suppressed": False},
        {"month": "2025-03", "channel": "web", "referrals": 3, "suppressed": False},
        {"month": "2025-04", "channel": "phone", "referrals": 1, "suppressed": False},
    ]
    assert response.headers["cache-control"] == "no-store"


async def test_api_csv_for_a_commissioner(client, staff_headers, known, session):
    headers = {**staff_headers("commissioner"), "Accept": "text/csv"}
    response = await client.get(
        "/v1/reports/waits", params={**PERIOD, "by": "channel"}, headers=headers
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == (
        'attachment; filename="frontdoor-waits-2025-03-01-to-2025-04-30.csv"'
    )
    table = list(csv.reader(io.StringIO(response.text)))
    assert table == [
        [
            "channel",
            "referrals",
            "first_contact_median_days",
            "first_contact_p90_days",
            "second_contact_median_days",
            "second_contact_p90_days",
            "breached",
            "waiting",
        ],
        ["phone", "10", "5.5", "9.1", "*", "*", "0", "0"],
        ["system", "*", "", "", "", "", "*", "*"],
        ["web", "*", "*", "*", "", "", "*", "*"],
    ]
    # The read is audited: who, which report, the parameters; nothing about a person.
    event = await session.scalar(
        select(AuditEvent)
        .where(AuditEvent.resource_type == "report")
        .order_by(AuditEvent.occurred_at.desc())
    )
    assert event is not None
    assert (event.action, event.resource_id, event.actor_role, event.outcome) == (
        "read",
        "waits",
        "commissioner",
        "success",
    )
    assert event.person_id is None
    assert event.details == {
        "from": "2025-03-01",
        "to": "2025-04-30",
        "by": ["channel"],
        "format": "csv",
        "rows": 3,
        "queues": "all",
        "disclosure_controlled": True,
        "suppressed": True,
    }


async def test_api_json_shows_suppression_for_a_commissioner(client, staff_headers, known):
    response = await client.get(
        "/v1/reports/referrals",
        params={**PERIOD, "by": "month"},
        headers=staff_headers("commissioner"),
    )
    body = response.json()
    assert body["disclosure_control"] == {"suppress_below": 8, "round_to": 5}
    assert body["rows"][1] == {"month": "2025-04", "referrals": None, "suppressed": True}


async def test_suppression_threshold_is_configurable(settings):
    stricter = Settings(**{**settings.model_dump(), "report_suppress_below": 11})
    from app.security import Actor

    scope = ReportScope.for_actor(Actor(kind="staff", id="c", role="commissioner"), stricter)
    assert (scope.suppress_below, scope.round_to, scope.queue_ids) == (11, 5, None)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"by": "month,postcode"}, "by"),
        ({"by": "month,month"}, "by"),
        ({"by": "month,"}, "by"),
        ({"from": "2025-05-01", "to": "2025-04-01"}, "from"),
        ({"from": "2025-13-01"}, "from"),
        ({"to": "yesterday"}, "to"),
        ({"to": "0001-01-01"}, "to"),
        ({"from": "9999-12-31", "to": "9999-12-31"}, "from"),
    ],
)
async def test_bad_parameters_are_422_naming_the_field(client, staff_headers, params, field):
    response = await client.get(
        "/v1/reports/referrals", params=params, headers=staff_headers("admin")
    )
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == [field]
    if field == "by" and "postcode" in params.get("by", ""):
        detail = response.json()["detail"]
        assert "month, week, channel" in detail and "ethnic_category" in detail
        assert "postcode" not in detail  # what was sent is not echoed


async def test_weeks_waiting_only_on_the_waiting_list(client, staff_headers):
    headers = staff_headers("admin")
    refused = await client.get("/v1/reports/waits", params={"by": "weeks_waiting"}, headers=headers)
    assert refused.status_code == 422
    allowed = await client.get(
        "/v1/reports/waiting-list", params={"by": "weeks_waiting"}, headers=headers
    )
    assert allowed.status_code == 200
    assert allowed.json()["from"] is None


@pytest.mark.parametrize("role", ["call_handler", "practitioner", "duty_clinician"])
async def test_roles_without_reports_are_refused_and_audited(client, staff_headers, session, role):
    response = await client.get("/v1/reports/referrals", headers=staff_headers(role))
    assert response.status_code == 403
    denied = await session.scalar(
        select(AuditEvent).where(
            AuditEvent.resource_type == "report", AuditEvent.actor_role == role
        )
    )
    assert denied is not None and denied.outcome == "denied"


async def test_a_referring_system_is_refused(client, make_client):
    _, system = await make_client()
    assert (await client.get("/v1/reports/access", headers=system)).status_code == 403


@pytest.mark.parametrize(
    "path", ["/v1/persons?nhs_number=9990000018", "/v1/queues", "/v1/me/cases", "/v1/audit"]
)
async def test_a_commissioner_reaches_nothing_person_level(client, staff_headers, path):
    response = await client.get(path, headers=staff_headers("commissioner"))
    assert response.status_code == 403
    assert "aggregate reports" in response.json()["detail"]


# Intake writes the reporting columns; the migration's back-fill agrees -------------------------


async def test_intake_writes_the_reporting_columns_from_the_decision(
    client, staff_headers, session
):
    from tests.factories import referral_body

    created = await client.post(
        "/v1/referrals", json=referral_body("phone", age=15), headers=staff_headers()
    )
    assert created.status_code == 201, created.text
    referral = await session.get(Referral, uuid.UUID(created.json()["id"]))
    decision = await session.scalar(
        select(TriageDecision).where(TriageDecision.referral_id == referral.id)
    )
    assert referral is not None and decision is not None
    output = decision.output
    assert referral.age_years == output["age_years"] == 15
    assert referral.locality_id == output["locality_id"] is not None
    assert referral.source_of_referral_code == output["codes"]["source_of_referral"]
    assert referral.eligibility_rule == output["eligibility"]["reasons"][0]["rule"]

    # The migration's back-fill computes the same from the stored decision.
    migration = _migration("20261202_0030_d1a0b0c0a007_reporting")
    await session.execute(
        update(Referral)
        .where(Referral.id == referral.id)
        .values(
            age_years=None, locality_id=None, source_of_referral_code=None, eligibility_rule=None
        )
    )
    from sqlalchemy import text

    backfill = (
        migration._BACKFILL_POSTGRESQL
        if session.get_bind().dialect.name == "postgresql"
        else migration._BACKFILL_SQLITE
    )
    await session.execute(text(backfill))
    again = (
        await session.execute(
            select(
                Referral.age_years,
                Referral.locality_id,
                Referral.source_of_referral_code,
                Referral.eligibility_rule,
            ).where(Referral.id == referral.id)
        )
    ).one()
    assert tuple(again) == (
        15,
        output["locality_id"],
        output["codes"]["source_of_referral"],
        output["eligibility"]["reasons"][0]["rule"],
    )


async def test_a_case_carries_its_opening_referrals_report_columns(client, staff_headers, session):
    """Intake copies the opening referral's age, locality and equity answers onto the case (the
    case reports read them there); a later referral joining the case changes none of them; and
    migration d1a0b0c0a009's back-fill computes the same from the referrals and contacts."""
    from tests.factories import referral_body

    nhs = "9990000409"
    body = referral_body("phone", age=15, nhs=nhs)
    body["person"] |= {"gender": "3", "ethnic_category": "N"}
    created = await client.post("/v1/referrals", json=body, headers=staff_headers())
    assert created.status_code == 201, created.text
    referral = await session.get(Referral, uuid.UUID(created.json()["id"]))
    assert referral is not None and referral.case_id is not None
    later = referral_body("phone", age=15, nhs=nhs)
    later["person"] |= {"gender": "1", "ethnic_category": "A"}
    joined = await client.post("/v1/referrals", json=later, headers=staff_headers())
    assert joined.status_code == 201, joined.text
    assert joined.json()["case_id"] == str(referral.case_id)
    columns = (
        Case.age_years,
        Case.locality_id,
        Case.gender_code,
        Case.ethnic_category_code,
        Case.opening_urgency_code,
    )

    async def stored() -> tuple[Any, ...]:
        return tuple(
            (await session.execute(select(*columns).where(Case.id == referral.case_id))).one()
        )

    decision = await session.scalar(
        select(TriageDecision).where(TriageDecision.referral_id == referral.id)
    )
    assert decision is not None
    opening = (15, referral.locality_id, "3", "N", decision.urgency_code)
    assert referral.locality_id is not None
    assert await stored() == opening
    # Two attended contacts (recorded out of order) and a missed one after them.
    for days, attendance in ((3, "attended"), (1, "attended"), (5, "did_not_attend")):
        at = referral.received_at + timedelta(days=days)
        session.add(
            CaseContact(
                case_id=referral.case_id,
                occurred_at=at,
                mechanism="telephone",
                attendance=attendance,
                with_whom="young_person",
                recorded_by_id="user-worker",
                recorded_at=at,
            )
        )
    await session.commit()

    migration = _migration("20261202_0400_d1a0b0c0a009_case_report_columns")
    await session.execute(
        update(Case)
        .where(Case.id == referral.case_id)
        .values(
            age_years=None,
            locality_id=None,
            gender_code=None,
            ethnic_category_code=None,
            opening_urgency_code=None,
        )
    )
    from sqlalchemy import text

    for statement in migration.BACKFILL[session.get_bind().dialect.name]:
        await session.execute(text(statement))
    assert await stored() == opening
    last = await session.scalar(select(Case.last_contact_at).where(Case.id == referral.case_id))
    assert last == referral.received_at + timedelta(days=3)


def test_every_report_is_a_route_and_the_query_types_are_stable():
    assert {n.value for n in ReportName} == {
        "referrals",
        "waits",
        "waiting-list",
        "triage-agreement",
        "access",
    }
    assert isinstance(ReportQuery(start=None, end=date(2025, 1, 1), by=()), ReportQuery)
