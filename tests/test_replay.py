"""What-if replay (issue 17): past referrals re-decided under the active and a candidate ruleset.

The report must be what the engine would really do: facts rebuilt exactly from the snapshot, age
on each referral's own received date, the fast path equal to a naive full evaluation.
"""

from __future__ import annotations

import copy
import uuid
from dataclasses import fields
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from app.models import AuditEvent, TriageDecision
from app.schemas.referral import DropInReferralCreate, PhoneReferralCreate
from app.security import Actor
from app.services.intake import facts_snapshot, submit_referral
from app.services.replay import (
    ELIGIBILITY_FACTS,
    EXAMPLES_PER_CHANGE,
    IDENTIFYING_FACTS,
    ROUTING_FACTS,
    UNCOMPARED_FACTS,
    URGENCY_FACTS,
    Replayer,
    ReplayWindow,
    StoredRow,
    facts_from_snapshot,
    naive_report,
    outcome_of,
    replay,
)
from app.triage import ReferralFacts, RiskAnswers, Ruleset, evaluate, load_ruleset
from app.triage.facts import (
    AmhsThreshold,
    CamhsStatus,
    Channel,
    HarmToOthers,
    ReferrerType,
    RequestKind,
    SelfHarm,
    SettingPreference,
    Suicidal,
)
from app.triage.ruleset import RulesetError, ruleset_from_content
from tests.factories import referral_body

BODIES: dict[str, Any] = {"phone": PhoneReferralCreate, "drop_in": DropInReferralCreate}
STAFF = Actor(kind="staff", id="user-call-handler", role="call_handler")


def candidate_from(ruleset: Ruleset, label: str, change: Any) -> Ruleset:
    content = copy.deepcopy(ruleset.content)
    content["label"] = label
    change(content)
    return ruleset_from_content(content)


def lower_upper_age(content: dict[str, Any]) -> None:
    eligibility = content["eligibility"]
    eligibility["max_age_years"] -= 1
    eligibility["send_transition_max_age_years"] = min(
        eligibility["send_transition_max_age_years"], eligibility["max_age_years"]
    )


def shorten_windows(content: dict[str, Any]) -> None:
    for window in content["urgency"]["windows"].values():
        if window["respond_within_hours"] is not None:
            window["respond_within_hours"] = window["respond_within_hours"] / 2


def dob_aged(age: int, on: date, *, days_past_birthday: int = 10) -> date:
    """A date of birth making someone exactly ``age`` on ``on`` (birthday ``days`` before)."""
    birthday = on - timedelta(days=days_past_birthday)
    return birthday.replace(year=birthday.year - age)


async def refer(session: Any, ruleset: Ruleset, received_at: datetime, **overrides: Any) -> Any:
    """A phone referral received at ``received_at``, through the real intake."""
    body = referral_body(**overrides)
    result = await submit_referral(
        session,
        body=BODIES[body["channel"]].model_validate(body),
        raw_payload=body,
        actor=STAFF,
        ruleset=ruleset,
        now=received_at,
    )
    await session.flush()
    return result.referral


def person(dob: date, **extra: Any) -> dict[str, Any]:
    return {"person": {"date_of_birth": dob.isoformat(), **extra}}


# Rebuilding the facts ----------------------------------------------------------------------------


def test_facts_round_trip_through_the_snapshot():
    """Every fact, none at its default, comes back from the stored snapshot as it went in."""
    received = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)
    facts = ReferralFacts(
        received_at=received,
        channel=Channel.DROP_IN,
        referrer_type=ReferrerType.SCHOOL,
        date_of_birth=date(2008, 2, 29),
        postcode="nr1 3ab",
        site_id="cb-norwich",
        camhs_status=CamhsStatus.DISCHARGED,
        camhs_transition_planned=True,
        amhs_threshold=AmhsThreshold.NOT_MET,
        send=True,
        looked_after=True,
        request=RequestKind.ADVICE,
        risk=RiskAnswers(
            immediate_danger=False,
            suicidal=Suicidal.PLAN,
            self_harm=SelfHarm.RECENT,
            harm_to_others=HarmToOthers.THREATS,
            safeguarding_concern=True,
            supported=False,
        ),
        setting_preference=SettingPreference.ONE_STOP_SHOP,
        contact_route=False,
        from_record=("postcode", "send"),
    )
    snapshot = orjson.loads(orjson.dumps(facts_snapshot(facts)))  # as stored and read back
    assert facts_from_snapshot(snapshot, received) == facts
    # Not asked stays not asked: None is never read back as "no".
    bare = ReferralFacts(received_at=received, channel=Channel.WEB, referrer_type=ReferrerType.SELF)
    assert facts_from_snapshot(facts_snapshot(bare), received) == bare


def test_every_fact_is_keyed_or_argued_out():
    """A fact added to ReferralFacts must join a stage's memo key (or be argued out): else the
    memo could reuse a stage's answer for a referral whose new fact differs."""
    every = {f.name for f in fields(ReferralFacts)}
    keyed = [*ELIGIBILITY_FACTS, *URGENCY_FACTS, *ROUTING_FACTS]
    assert set(keyed) | IDENTIFYING_FACTS | UNCOMPARED_FACTS == every
    assert len(keyed) == len(set(keyed))
    assert not (set(keyed) & (IDENTIFYING_FACTS | UNCOMPARED_FACTS))


def test_fast_replay_equals_naive_full_evaluation():
    """The memoised replay gives exactly the report a full evaluation of every referral gives,
    over a few hundred varied referrals and candidates touching every stage."""
    from bench.bench_triage import build_facts

    active = load_ruleset()
    facts = build_facts(600, seed=17)
    rows = []
    for item in facts:
        decision = outcome_of(evaluate(item, active)).as_tuple()
        rows.append(
            StoredRow(
                uuid.uuid4(),
                item.received_at.astimezone(UTC),
                active.version,
                decision,
                orjson.loads(orjson.dumps(facts_snapshot(item))),
            )
        )

    def urgency_and_routing(content: dict[str, Any]) -> None:
        content["routing"]["one_stop_shop_min_age_years"] = 16
        content["urgency"]["triggers"]["C"] = content["urgency"]["triggers"]["C"][:1]
        # A district moved to another locality, and one served by none (out of area).
        first, second = content["localities"][0], content["localities"][1]
        second["postcode_districts"].append(first["postcode_districts"].pop(0))
        first["postcode_districts"].pop(0)

    candidates = [
        active,
        candidate_from(active, "younger", lower_upper_age),
        candidate_from(active, "windows", shorten_windows),
        candidate_from(active, "mixed", urgency_and_routing),
    ]
    window = ReplayWindow()
    for candidate in candidates:
        naive = naive_report(rows, active, candidate, window).to_dict()
        fast = Replayer(active, candidate, window)
        for row in rows:
            fast.add(
                row.referral_id, row.received_at, row.ruleset_version, row.stored, row.snapshot
            )
        report = fast.report.to_dict()
        assert report["distinct_inputs"] <= naive["distinct_inputs"] == len(rows)
        naive.pop("distinct_inputs")
        report.pop("distinct_inputs")
        assert report == naive, candidate.label
        assert report["stored_disagreements"] == 0
    # The mixed candidate does change things, so the comparison above was not vacuous.
    mixed = naive_report(rows, active, candidates[3], window)
    assert mixed.changed["urgency"] > 0 and mixed.changed["route"] > 0


def test_a_window_ending_before_it_starts_is_refused_naming_to():
    from app.errors import Unprocessable

    with pytest.raises(Unprocessable) as raised:
        ReplayWindow(start=date(2026, 5, 2), end=date(2026, 5, 1))
    assert raised.value.errors == [
        {"field": "to", "message": "to must be on or after from", "type": "value_error"}
    ]


# Over stored referrals ---------------------------------------------------------------------------


async def test_replaying_the_active_ruleset_reproduces_every_stored_decision(app, session, clock):
    """Fresh referrals of every kind, replayed under the ruleset that decided them: nothing
    changes, and the re-evaluation equals each stored decision exactly."""
    ruleset = app.state.ruleset
    now = clock.now()
    variants: list[dict[str, Any]] = [
        {"age": 15},
        {"age": 25, "amhs_threshold": "not_met"},
        {"age": 19, "camhs": {"status": "discharged", "transition_planned": False}},
        {"age": 17, "camhs": {"status": "open", "transition_planned": True}},
        {"age": 14, "preferences": {"setting": "one_stop_shop"}},
        {"age": 30},
        {"age": 12, "person": {"postcode": "SW1A 1AA"}},
        {"age": 12, "person": {"postcode": None}},
        {"age": 10, "person": {"date_of_birth": None}},
        {"age": 16, "request": "advice"},
        {"age": 13, "person": {"looked_after": True}},
        {"age": 15, "risk": {"suicidal": "intent"}},
        {"age": 15, "risk": {"immediate_danger": True}},
        {"age": 15, "risk": {"self_harm": "recent", "supported": False}},
        {"age": 15, "risk": {"suicidal": None, "self_harm": None, "immediate_danger": None}},
        {"age": 15, "channel": "drop_in"},
    ]
    for index, overrides in enumerate(variants):
        await refer(session, ruleset, now - timedelta(days=index * 40, hours=index), **overrides)
    report = await replay(session, active=ruleset, candidate=ruleset, window=ReplayWindow())
    summary = report.to_dict()
    assert summary["referrals"] == len(variants)
    assert summary["changed"] == {"eligibility": 0, "urgency": 0, "thrive": 0, "route": 0}
    assert summary["stored_under_active"] == len(variants)
    assert summary["stored_disagreements"] == 0
    assert all(t["from"] == t["to"] for cells in summary["transitions"].values() for t in cells)
    assert all(not cells for cells in summary["examples"].values())
    # Each dimension's matrix accounts for every referral; so do the queue rows.
    for cells in summary["transitions"].values():
        assert sum(t["count"] for t in cells) == len(variants)
    assert sum(q["active"] for q in summary["queues"]) == len(variants)
    assert {r["route_kind"] for r in await _stored(session)} >= {"crisis", "signpost", "duty"}


async def _stored(session: Any) -> list[dict[str, Any]]:
    rows = await session.execute(select(TriageDecision.route_kind, TriageDecision.urgency_code))
    return [{"route_kind": r[0], "urgency_code": r[1]} for r in rows]


def test_a_stored_decision_the_engine_no_longer_makes_is_counted():
    """If a stored decision (made under the active version) disagrees with what the active
    ruleset decides now, the engine has changed since: the report says so, rather than passing
    the difference off as none. Decisions are append-only, so the stored one is given here."""
    active = load_ruleset()
    received = datetime(2026, 5, 1, 9, tzinfo=UTC)
    facts = ReferralFacts(
        received_at=received,
        channel=Channel.PHONE,
        referrer_type=ReferrerType.GP,
        date_of_birth=date(2011, 1, 1),
        postcode="NR1 3AB",
    )
    snapshot = facts_snapshot(facts)
    decided = outcome_of(evaluate(facts, active)).as_tuple()
    replayer = Replayer(active, active, ReplayWindow())
    replayer.add(uuid.uuid4(), received, active.version, decided, snapshot)
    replayer.add(uuid.uuid4(), received, active.version, ("eligible", "A", *decided[2:]), snapshot)
    replayer.add(
        uuid.uuid4(), received, "older+000000000000", ("eligible", "A", *decided[2:]), snapshot
    )
    report = replayer.report
    assert (report.stored_under_active, report.stored_disagreements) == (2, 1)
    assert report.referrals == 3


async def test_lowering_the_upper_age_changes_exactly_the_25_year_olds(app, session, clock):
    """Aged 25 on their own received date, whatever their age today: only they change."""
    active = app.state.ruleset
    candidate = candidate_from(active, "younger", lower_upper_age)
    now = clock.now()
    two_years_ago = now - timedelta(days=730)
    expected = set()
    # 25 when received two years ago (27 now), and 25 when received today.
    for received in (two_years_ago, now):
        on = received.date()
        referral = await refer(session, active, received, **person(dob_aged(25, on)))
        expected.add(str(referral.id))
    # 24 when received two years ago (26 now: the candidate would still take them then), 26
    # when received (the active ruleset already turned them away), and younger people.
    await refer(session, active, two_years_ago, **person(dob_aged(24, two_years_ago.date())))
    await refer(session, active, now, **person(dob_aged(26, now.date())))
    await refer(session, active, now, **person(dob_aged(24, now.date(), days_past_birthday=300)))
    await refer(session, active, now, age=15)
    report = (
        await replay(session, active=active, candidate=candidate, window=ReplayWindow())
    ).to_dict()
    assert report["referrals"] == 6
    assert report["changed"]["eligibility"] == 2
    # Aged 18-25 with the adult threshold unknown is reviewed now; the candidate turns them away.
    [example] = report["examples"]["eligibility"]
    assert (example["from"], example["to"]) == ("clinical_review", "ineligible")
    assert set(example["referral_ids"]) == expected
    # Everything that changed changed for those two (duty → signposted), no other referral.
    assert report["changed"]["route"] == 2
    for dimension in ("urgency", "thrive", "route"):
        for cell in report["examples"][dimension]:
            assert set(cell["referral_ids"]) <= expected


async def test_shortening_a_respond_within_window_changes_no_route(app, session, clock):
    active = app.state.ruleset
    candidate = candidate_from(active, "sooner", shorten_windows)
    assert candidate.version != active.version
    now = clock.now()
    for index, risk in enumerate(
        [{"suicidal": "intent"}, {"self_harm": "recent"}, {"suicidal": "thoughts"}, {}]
    ):
        await refer(session, active, now - timedelta(days=index), age=15, risk=risk)
    report = await replay(session, active=active, candidate=candidate, window=ReplayWindow())
    assert report.referrals == 4
    assert report.changed["route"] == 0
    assert dict(report.changed) == {}


async def test_only_referrals_received_in_the_window_are_replayed(app, session, clock):
    """Dates are England's: 23:30 UTC on 30 June (summer time) was received on 1 July."""
    ruleset = app.state.ruleset
    inside = [
        datetime(2026, 6, 30, 23, 30, tzinfo=UTC),  # 1 July 00:30 in London
        datetime(2026, 7, 15, 12, 0, tzinfo=UTC),
        datetime(2026, 7, 31, 22, 59, tzinfo=UTC),  # 31 July 23:59 in London
    ]
    outside = [
        datetime(2026, 6, 30, 22, 59, tzinfo=UTC),  # 30 June 23:59 in London
        datetime(2026, 7, 31, 23, 0, tzinfo=UTC),  # 1 August 00:00 in London
        datetime(2025, 7, 15, 12, 0, tzinfo=UTC),
    ]
    ids = set()
    for received in inside:
        ids.add(str((await refer(session, ruleset, received, age=15)).id))
    for received in outside:
        await refer(session, ruleset, received, age=15)
    younger = candidate_from(ruleset, "no-teens", _no_teenagers)
    window = ReplayWindow(start=date(2026, 7, 1), end=date(2026, 7, 31))
    # A small batch size: the window is found across several batches.
    report = await replay(session, active=ruleset, candidate=younger, window=window, batch_size=2)
    summary = report.to_dict()
    assert summary["referrals"] == 3
    assert set(summary["examples"]["eligibility"][0]["referral_ids"]) == ids
    assert {q["month"] for q in summary["queues"]} == {"2026-07"}
    assert (summary["from"], summary["to"]) == ("2026-07-01", "2026-07-31")
    # Open-ended on either side.
    later = await replay(
        session, active=ruleset, candidate=ruleset, window=ReplayWindow(start=date(2026, 7, 1))
    )
    assert later.referrals == 4
    earlier = await replay(
        session, active=ruleset, candidate=ruleset, window=ReplayWindow(end=date(2026, 6, 30))
    )
    assert earlier.referrals == 2


def _no_teenagers(content: dict[str, Any]) -> None:
    """An age cap of 12 (a candidate that changes every 15-year-old)."""
    eligibility = content["eligibility"]
    eligibility.update(
        max_age_years=12,
        adult_age_years=11,
        transition_min_age_years=10,
        send_transition_max_age_years=12,
    )
    content["routing"]["one_stop_shop_min_age_years"] = 10
    content["routing"]["one_stop_shop_max_age_years"] = 12


async def test_examples_are_capped_at_20_ids_and_carry_no_personal_data(app, session, clock):
    ruleset = app.state.ruleset
    candidate = candidate_from(ruleset, "no-teens", _no_teenagers)
    now = clock.now()
    ids = set()
    for index in range(EXAMPLES_PER_CHANGE + 5):
        referral = await refer(session, ruleset, now - timedelta(hours=index), age=15)
        ids.add(str(referral.id))
    summary = (
        await replay(session, active=ruleset, candidate=candidate, window=ReplayWindow())
    ).to_dict()
    assert summary["changed"]["eligibility"] == EXAMPLES_PER_CHANGE + 5
    [cell] = summary["examples"]["eligibility"]
    assert len(cell["referral_ids"]) == EXAMPLES_PER_CHANGE
    assert set(cell["referral_ids"]) <= ids
    text = orjson.dumps(summary).decode()
    for personal in ("Alex", "Testperson", "NR1 3AB", "01603", "Pat Example", "date_of_birth"):
        assert personal not in text


def test_an_invalid_candidate_is_refused_naming_the_key():
    content = copy.deepcopy(load_ruleset().content)
    content["eligibility"]["max_age_years"] = "twenty-five"
    with pytest.raises(RulesetError) as raised:
        ruleset_from_content(content)
    assert any(p.startswith("eligibility.max_age_years") for p in raised.value.problems)


async def test_the_audit_is_left_to_the_caller(app, session, clock):
    """The service only reads: it writes nothing (the router audits the run)."""
    ruleset = app.state.ruleset
    await refer(session, ruleset, clock.now(), age=15)
    before = len((await session.scalars(select(AuditEvent))).all())
    await replay(session, active=ruleset, candidate=ruleset, window=ReplayWindow())
    await session.flush()
    assert len((await session.scalars(select(AuditEvent))).all()) == before


# The API -----------------------------------------------------------------------------------------


def _yaml(ruleset: Ruleset) -> str:
    import yaml

    return yaml.safe_dump(ruleset.content, sort_keys=False)


async def _publish(session: Any, candidate: Ruleset) -> str:
    from app.services import rulesets

    stored, _ = await rulesets.publish_ruleset(
        session, _yaml(candidate), label=None, actor_id="user-rules-admin", now=datetime.now(UTC)
    )
    await session.flush()
    return stored.version


@pytest.fixture
def admin(staff_headers: Any) -> dict[str, str]:
    return staff_headers("admin", subject="user-rules-admin")


async def test_the_api_reports_the_change_and_audits_the_run(app, client, session, clock, admin):
    active = app.state.ruleset
    version = await _publish(session, candidate_from(active, "younger", lower_upper_age))
    now = clock.now()
    older = await refer(
        session, active, now - timedelta(days=3), **person(dob_aged(25, now.date()))
    )
    await refer(session, active, now - timedelta(days=3), age=15)
    await session.commit()
    on = (now - timedelta(days=3)).astimezone(UTC).date()
    body = {
        "candidate_version": version,
        "from": (on - timedelta(days=1)).isoformat(),
        "to": (on + timedelta(days=1)).isoformat(),
    }
    response = await client.post("/v1/rulesets/replay", json=body, headers=admin)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["referrals"] == 2
    # Turned away, their urgency becomes F (referred elsewhere), and so their THRIVE proposal.
    assert report["changed"] == {"eligibility": 1, "urgency": 1, "thrive": 1, "route": 1}
    assert (report["candidate_version"], report["from"], report["to"]) == (
        version,
        body["from"],
        body["to"],
    )
    assert report["examples"]["eligibility"][0]["referral_ids"] == [str(older.id)]
    assert {"from", "to", "count"} == set(report["transitions"]["route"][0])
    assert {"queue_id", "month", "active", "candidate", "difference"} == set(report["queues"][0])
    assert report["stored_disagreements"] == 0
    [event] = (
        await session.scalars(select(AuditEvent).where(AuditEvent.action == "ruleset.replay"))
    ).all()
    assert (event.actor_id, event.resource_type, event.resource_id) == (
        "user-rules-admin",
        "ruleset",
        version,
    )
    assert event.details == {
        "active_version": active.version,
        "from": body["from"],
        "to": body["to"],
        "referrals": 2,
    }


async def test_an_unknown_candidate_version_is_404_naming_it(client, admin):
    response = await client.post(
        "/v1/rulesets/replay",
        json={"candidate_version": "never-stored+000000000000"},
        headers=admin,
    )
    assert response.status_code == 404
    assert [e["field"] for e in response.json()["errors"]] == ["candidate_version"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"from": "2026-13-01"}, "from"),
        ({"to": "yesterday"}, "to"),
        ({"from": "2026-05-02", "to": "2026-05-01"}, "to"),
        ({"candidate_version": ""}, "candidate_version"),
        ({"window": "all"}, "window"),
    ],
)
async def test_bad_input_is_422_naming_the_field(client, admin, app, body, field):
    payload = {"candidate_version": app.state.ruleset.version, **body}
    response = await client.post("/v1/rulesets/replay", json=payload, headers=admin)
    assert response.status_code == 422, response.text
    assert field in [e["field"] for e in response.json()["errors"]]


async def test_only_admins_may_replay(client, staff_headers, app):
    body = {"candidate_version": app.state.ruleset.version}
    for role in ("call_handler", "team_lead", "duty_clinician", "commissioner"):
        response = await client.post("/v1/rulesets/replay", json=body, headers=staff_headers(role))
        assert response.status_code == 403, role


# The CLI -----------------------------------------------------------------------------------------


def test_the_cli_refuses_an_invalid_candidate_naming_the_key(tmp_path, capsys):
    from app.cli import main as cli_main

    content = copy.deepcopy(load_ruleset().content)
    content["urgency"]["windows"]["D"]["respond_within_hours"] = -1
    bad = tmp_path / "bad.yaml"
    import yaml

    bad.write_text(yaml.safe_dump(content))
    assert cli_main(["rules", "replay", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "urgency.windows.D.respond_within_hours" in err
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(load_ruleset().content))
    assert cli_main(["rules", "replay", str(good), "--from", "1 May"]) == 2
    assert "--from must be a date" in capsys.readouterr().err
    assert (
        cli_main(["rules", "replay", str(good), "--from", "2026-05-02", "--to", "2026-05-01"]) == 2
    )
    assert "--to must be on or after --from" in capsys.readouterr().err


def test_the_cli_replays_a_candidate_file_over_the_database(
    scratch_database_url, tmp_path, capsys, monkeypatch
):
    """End to end on a database of its own: migrated, started once (the default stored and
    active), one referral aged 25; the candidate file turns them away."""
    import asyncio

    from app.cli import main as cli_main
    from app.config import Settings, get_settings
    from app.db import create_engine, create_session_factory
    from app.migrate import upgrade
    from app.services import rulesets
    from app.triage.ruleset import DEFAULT_RULESET_PATH

    settings = Settings(database_url=scratch_database_url)
    upgrade(settings)
    now = datetime.now(UTC)

    async def prepare() -> None:
        engine = create_engine(settings)
        try:
            async with create_session_factory(engine)() as session:
                from app.services.directory import sync_directory

                default = load_ruleset()
                await sync_directory(session, default, now)
                await rulesets.bootstrap(
                    session, default, DEFAULT_RULESET_PATH.read_text(encoding="utf-8"), now
                )
                await refer(session, default, now, **person(dob_aged(25, now.date())))
                await session.commit()
        finally:
            await engine.dispose()

    asyncio.run(prepare())
    candidate = tmp_path / "younger.yaml"
    candidate.write_text(_yaml(candidate_from(load_ruleset(), "younger", lower_upper_age)))
    monkeypatch.setenv("FRONTDOOR_DATABASE_URL", scratch_database_url)
    get_settings.cache_clear()
    try:
        assert cli_main(["rules", "replay", str(candidate)]) == 0
        out = capsys.readouterr().out
        assert "referrals  1" in out
        assert "clinical_review -> ineligible: 1" in out
        assert cli_main(["rules", "replay", str(candidate), "--json"]) == 0
        report = orjson.loads(capsys.readouterr().out)
        assert report["changed"]["eligibility"] == 1
    finally:
        get_settings.cache_clear()
